/*
 * fuzz_config.c - libFuzzer target: the configuration loader (src/config.c
 * over iniparser).
 *
 * Each input is written as it is to one temporary INI file, loaded with
 * cfg_load and freed. The loader must never crash or leak, whatever the
 * bytes. Either it refuses with a message that names the file, or it
 * returns a configuration that is whole: every string set, every number
 * within the range the sample documents, at least one API key, every key's
 * plan a real plan, the endpoint http(s) without a trailing '/', the
 * resized and originals prefixes apart while the derivative cache is on,
 * no control character in Cache-Control, the state file absolute or empty,
 * and every plan admits and refuses as its numbers say (check_plan).
 * Loading the same bytes twice gives the same answer.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static char path[64];

static void remove_file(void)
{
	if (path[0])
		unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *tmp = getenv("TMPDIR");
	snprintf(path, sizeof path, "%s/imgsvc-fuzz-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0) {
		perror(path);
		abort();
	}
	close(fd);
	atexit(remove_file);
	return 0;
}

static bool prefixed(const char *a, const char *b)
{
	return strncmp(a, b, strlen(b)) == 0;
}

/*
 * A loaded plan works: 60 requests in the same millisecond from a fresh
 * state admit exactly min(burst, quota, 60), every refusal names a
 * Retry-After of at least a second, and after a rate refusal's
 * Retry-After the throttle lets a request through.
 */
static void check_plan(const struct plan *p)
{
	struct plan_bucket b = {0, 0};
	struct plan_quota q = {0, 0};
	const int64_t now = 1764000000000LL;
	int64_t retry = -1, allowed = 0, want = 60;
	enum plan_verdict v = PLAN_ALLOW;

	if (p->rate > 0 && p->burst < want)
		want = p->burst;
	if (p->quota > 0 && p->quota < want)
		want = p->quota;
	for (int i = 0; i < 60; i++) {
		v = plan_admit(p, &b, &q, now, &retry);
		if (v == PLAN_ALLOW)
			allowed++;
		FUZZ_CHECK(v == PLAN_ALLOW ? retry == 0 : retry >= 1,
			   "verdict %d, Retry-After %lld", v, (long long)retry);
	}
	FUZZ_CHECK(allowed == want, "plan '%s' (rate %g burst %lld quota %lld) admitted %lld of 60",
		   p->name, p->rate, (long long)p->burst, (long long)p->quota, (long long)allowed);
	if (v == PLAN_RATE_LIMITED) {
		int64_t r = retry;
		v = plan_admit(p, &b, &q, now + r * 1000, &retry);
		FUZZ_CHECK(v != PLAN_RATE_LIMITED,
			   "plan '%s' (rate %g): still limited %lld s later", p->name, p->rate,
			   (long long)r);
	}
}

static void check_whole(const struct cfg *c)
{
	const struct cfg_server *sv = &c->server;
	const struct cfg_s3 *s3 = &c->s3;
	const struct cfg_limits *l = &c->limits;

	FUZZ_CHECK(c->path && strcmp(c->path, path) == 0, "path '%s'", c->path);
	FUZZ_CHECK(sv->cache_control && s3->bucket && s3->region && s3->endpoint &&
		       s3->originals_prefix && s3->resized_prefix && s3->access_key_id &&
		       s3->secret_access_key && s3->session_token && s3->ca_file && l->state_file &&
		       l->redis_host && l->redis_password && l->redis_prefix,
		   "a string setting is NULL");
	FUZZ_CHECK(sv->max_width >= 0 && sv->max_width <= 100000, "max_width %lld", sv->max_width);
	FUZZ_CHECK(sv->max_source_bytes >= 1 && sv->max_source_bytes <= 1LL << 40,
		   "max_source_bytes %lld", sv->max_source_bytes);
	FUZZ_CHECK(sv->max_source_pixels >= 1 && sv->max_source_pixels <= 1LL << 40,
		   "max_source_pixels %lld", sv->max_source_pixels);
	FUZZ_CHECK(sv->max_output_dimension >= 1 && sv->max_output_dimension <= 100000,
		   "max_output_dimension %lld", sv->max_output_dimension);
	FUZZ_CHECK(sv->quality >= 1 && sv->quality <= 100, "quality %lld", sv->quality);
	FUZZ_CHECK(sv->formats != 0 && (sv->formats & ~0x1Eu) == 0, "formats 0x%x", sv->formats);
	for (const char *p = sv->cache_control; *p; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7F,
			   "control byte in cache_control");

	FUZZ_CHECK(*s3->bucket && *s3->region, "empty bucket or region");
	for (const char *p = s3->bucket; *p; p++)
		FUZZ_CHECK(isalnum((unsigned char)*p) || strchr("-_.", *p), "bucket '%s'",
			   s3->bucket);
	for (const char *p = s3->region; *p; p++)
		FUZZ_CHECK(isalnum((unsigned char)*p) || *p == '-', "region '%s'", s3->region);
	if (*s3->endpoint)
		FUZZ_CHECK(
		    (prefixed(s3->endpoint, "http://") || prefixed(s3->endpoint, "https://")) &&
			s3->endpoint[strlen(s3->endpoint) - 1] != '/',
		    "endpoint '%s'", s3->endpoint);
	FUZZ_CHECK((unsigned)s3->addressing <= CFG_ADDR_PATH, "addressing %d", s3->addressing);
	FUZZ_CHECK(s3->originals_prefix[0] != '/' && s3->resized_prefix[0] != '/' &&
		       strlen(s3->originals_prefix) <= 512 && strlen(s3->resized_prefix) <= 512,
		   "prefixes '%s' '%s'", s3->originals_prefix, s3->resized_prefix);
	if (sv->derivative_cache)
		FUZZ_CHECK(!prefixed(s3->resized_prefix, s3->originals_prefix) &&
			       !prefixed(s3->originals_prefix, s3->resized_prefix),
			   "prefixes overlap: '%s' '%s'", s3->resized_prefix, s3->originals_prefix);
	FUZZ_CHECK(!*s3->access_key_id == !*s3->secret_access_key, "half a credential");
	FUZZ_CHECK(!*s3->session_token || *s3->access_key_id, "session token without key");
	FUZZ_CHECK(s3->connect_timeout_ms >= 1 && s3->connect_timeout_ms <= s3->timeout_ms &&
		       s3->timeout_ms <= 3600000 && s3->retries >= 0 && s3->retries <= 10,
		   "timeouts %lld %lld retries %lld", s3->connect_timeout_ms, s3->timeout_ms,
		   s3->retries);

	FUZZ_CHECK(!*l->state_file || l->state_file[0] == '/', "state_file '%s'", l->state_file);
	FUZZ_CHECK((unsigned)l->backend <= CFG_BACKEND_REDIS && l->redis_port >= 1 &&
		       l->redis_port <= 65535 && l->redis_timeout_ms >= 1 &&
		       l->redis_timeout_ms <= 60000,
		   "limits out of range");

	FUZZ_CHECK(c->keys.n >= 1, "no API key");
	for (size_t i = 0; i < c->keys.n; i++) {
		const struct auth_key *k = &c->keys.keys[i];
		FUZZ_CHECK(k->name && *k->name && strlen(k->name) <= 64, "key name");
		FUZZ_CHECK(k->plan >= -1 && k->plan < (int)c->n_plans, "key plan %d of %zu",
			   k->plan, c->n_plans);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(memcmp(k->digest, c->keys.keys[j].digest, SHA256_LEN) != 0,
				   "two keys with one digest");
	}
	for (size_t i = 0; i < c->n_plans; i++) {
		const struct plan *p = &c->plans[i];
		FUZZ_CHECK(p->name && *p->name, "plan name");
		FUZZ_CHECK(p->rate > 0 || p->quota > 0, "plan '%s' limits nothing", p->name);
		FUZZ_CHECK(p->rate == 0 || p->burst >= 1, "plan '%s' burst %lld", p->name,
			   (long long)p->burst);
		FUZZ_CHECK((p->quota == 0) == (p->period == PERIOD_NONE), "plan '%s' period",
			   p->name);
		check_plan(p);
	}
	FUZZ_CHECK(c->metrics_keys.n <= 1, "%zu metrics keys", c->metrics_keys.n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], err2[512];
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
		perror(path);
		abort();
	}
	err[0] = '\0';
	struct cfg *c = cfg_load(path, err, sizeof err);
	if (!c) {
		FUZZ_CHECK(prefixed(err, path) && strlen(err) > strlen(path) + 2,
			   "refusal without a message naming the file: '%s'", err);
	} else {
		check_whole(c);
	}
	/* The same bytes, the same answer. */
	struct cfg *c2 = cfg_load(path, err2, sizeof err2);
	FUZZ_CHECK(!c == !c2, "loaded once, refused once: '%s' '%s'", c ? err2 : err, c ? "" : "");
	if (!c)
		FUZZ_CHECK(strcmp(err, err2) == 0, "two messages: '%s' and '%s'", err, err2);
	cfg_free(c);
	cfg_free(c2);
	return 0;
}
