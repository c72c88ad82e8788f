/*
 * config.c - load and validate the INI configuration (README "Configuration").
 *
 * One table lists every key of the fixed sections with its type, range,
 * default and where it lands in struct cfg. Loading walks the dictionary
 * iniparser built, so an entry the table does not know (a typo, a key
 * outside any section, an unknown section) is an error rather than silently
 * ignored. [key NAME] sections build the API key table. Cross-key rules
 * (credentials given in pairs, timeouts ordered) are checked last.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <iniparser.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "probe.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

enum opt_type { OPT_STRING, OPT_LONG, OPT_BOOL, OPT_CHOICE, OPT_FORMATS };

struct opt {
	const char *section;
	const char *name;
	enum opt_type type;
	const char *def;
	long long min, max;  /* OPT_LONG */
	size_t offset;       /* into struct cfg */
	const char *choices; /* OPT_CHOICE: "a|b|c", stored as the index (an enum) */
};

#define OFF(field) offsetof(struct cfg, field)

static const struct opt options[] = {
    {"server", "max_width", OPT_LONG, "2000", 0, 100000, OFF(server.max_width), NULL},
    {"server", "max_source_bytes", OPT_LONG, "52428800", 1, 1LL << 40, OFF(server.max_source_bytes),
     NULL},
    {"server", "max_source_pixels", OPT_LONG, "24000000", 1, 1LL << 40,
     OFF(server.max_source_pixels), NULL},
    {"server", "max_image_memory", OPT_LONG, "419430400", 16777216, 1LL << 40,
     OFF(server.max_image_memory), NULL},
    {"server", "max_output_pixels", OPT_LONG, "8294400", 1, 1LL << 40,
     OFF(server.max_output_pixels), NULL},
    {"server", "max_output_dimension", OPT_LONG, "4000", 1, 100000,
     OFF(server.max_output_dimension), NULL},
    {"server", "quality", OPT_LONG, "82", 1, 100, OFF(server.quality), NULL},
    {"server", "formats", OPT_FORMATS, "jpeg png gif webp", 0, 0, OFF(server.formats), NULL},
    {"server", "derivative_cache", OPT_BOOL, "yes", 0, 0, OFF(server.derivative_cache), NULL},
    {"server", "strip_originals", OPT_BOOL, "no", 0, 0, OFF(server.strip_originals), NULL},
    {"server", "cache_control", OPT_STRING, "public, max-age=86400", 0, 0,
     OFF(server.cache_control), NULL},
    {"server", "heap_log_every", OPT_LONG, "0", 0, 1000000000, OFF(server.heap_log_every), NULL},
    {"server", "threads", OPT_LONG, "16", 1, 256, OFF(server.threads), NULL},
    {"server", "image_workers", OPT_LONG, "0", 0, 1024, OFF(server.image_workers), NULL},
    {"s3", "bucket", OPT_STRING, NULL, 0, 0, OFF(s3.bucket), NULL},
    {"s3", "region", OPT_STRING, "us-east-1", 0, 0, OFF(s3.region), NULL},
    {"s3", "endpoint", OPT_STRING, "", 0, 0, OFF(s3.endpoint), NULL},
    {"s3", "addressing", OPT_CHOICE, "auto", 0, 0, OFF(s3.addressing), "auto|virtual|path"},
    {"s3", "originals_prefix", OPT_STRING, "original-images/", 0, 0, OFF(s3.originals_prefix),
     NULL},
    {"s3", "resized_prefix", OPT_STRING, "resized/", 0, 0, OFF(s3.resized_prefix), NULL},
    {"s3", "access_key_id", OPT_STRING, "", 0, 0, OFF(s3.access_key_id), NULL},
    {"s3", "secret_access_key", OPT_STRING, "", 0, 0, OFF(s3.secret_access_key), NULL},
    {"s3", "session_token", OPT_STRING, "", 0, 0, OFF(s3.session_token), NULL},
    {"s3", "imds", OPT_BOOL, "yes", 0, 0, OFF(s3.imds), NULL},
    {"s3", "connect_timeout_ms", OPT_LONG, "2000", 1, 600000, OFF(s3.connect_timeout_ms), NULL},
    {"s3", "timeout_ms", OPT_LONG, "10000", 1, 3600000, OFF(s3.timeout_ms), NULL},
    {"s3", "retries", OPT_LONG, "2", 0, 10, OFF(s3.retries), NULL},
    {"s3", "verify_tls", OPT_BOOL, "yes", 0, 0, OFF(s3.verify_tls), NULL},
    {"s3", "ca_file", OPT_STRING, "", 0, 0, OFF(s3.ca_file), NULL},
    {"limits", "state_file", OPT_STRING, LOCALSTATEDIR "/lib/imgsvc/state", 0, 0,
     OFF(limits.state_file), NULL},
    {"limits", "backend", OPT_CHOICE, "local", 0, 0, OFF(limits.backend), "local|redis"},
    {"limits", "redis_host", OPT_STRING, "127.0.0.1", 0, 0, OFF(limits.redis_host), NULL},
    {"limits", "redis_port", OPT_LONG, "6379", 1, 65535, OFF(limits.redis_port), NULL},
    {"limits", "redis_password", OPT_STRING, "", 0, 0, OFF(limits.redis_password), NULL},
    {"limits", "redis_prefix", OPT_STRING, "imgsvc:", 0, 0, OFF(limits.redis_prefix), NULL},
    {"limits", "redis_timeout_ms", OPT_LONG, "100", 1, 60000, OFF(limits.redis_timeout_ms), NULL},
    {"limits", "redis_failure", OPT_CHOICE, "open", 0, 0, OFF(limits.redis_fail_open),
     "closed|open"},
};

#define KEY_SECTION "key "
#define PLAN_SECTION "plan "

/* Sections with a name ([key NAME], [plan NAME]) and [metrics], and their keys. */
static const struct {
	const char *prefix; /* "key " matches "[key NAME]"; "metrics" only itself */
	bool named;
	const char *keys; /* "a|b|c" */
} open_sections[] = {
    {KEY_SECTION, true, "key|sha256|enabled|plan"},
    {PLAN_SECTION, true, "rate|burst|quota|period"},
    {"metrics", false, "key|sha256"},
};

struct loader {
	const char *file;
	char *err;
	size_t errlen;
	bool failed;
};

__attribute__((format(printf, 4, 5))) static bool fail(struct loader *ld, const char *section,
						       const char *key, const char *fmt, ...)
{
	if (ld->failed)
		return false;
	ld->failed = true;
	struct buf b = BUF_INIT;
	buf_puts(&b, ld->file);
	if (section)
		buf_printf(&b, ": [%s]", section);
	if (key)
		buf_printf(&b, " %s", key);
	buf_puts(&b, ": ");
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	snprintf(ld->err, ld->errlen, "%s", b.data);
	buf_free(&b);
	return false;
}

static bool parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = true, true;
		if (strcasecmp(v, no[i]) == 0)
			return *out = false, true;
	}
	return false;
}

static bool parse_integer(const char *v, long long min, long long max, long long *out)
{
	char *end;
	if (!*v || isspace((unsigned char)*v))
		return false;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || *end || n < min || n > max)
		return false;
	*out = n;
	return true;
}

/* v among "a|b|c" -> its index. */
static bool parse_choice(const char *choices, const char *v, long long *index)
{
	size_t vlen = strlen(v);
	long long i = 0;
	for (const char *c = choices; *c; i++) {
		size_t n = strcspn(c, "|");
		if (n == vlen && strncmp(c, v, n) == 0) {
			*index = i;
			return true;
		}
		c += n + (c[n] == '|');
	}
	return false;
}

/* "jpeg png, webp" -> a bit per format; false on an unknown word or none. */
static bool parse_formats(const char *v, unsigned *out)
{
	static const struct {
		const char *name;
		enum img_format f;
	} names[] = {{"jpeg", IMG_JPEG},
		     {"jpg", IMG_JPEG},
		     {"png", IMG_PNG},
		     {"gif", IMG_GIF},
		     {"webp", IMG_WEBP}};
	unsigned set = 0;

	while (*v) {
		size_t n = strcspn(v, " \t,");
		if (n > 0) {
			bool known = false;
			for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
				if (strlen(names[i].name) == n &&
				    strncasecmp(v, names[i].name, n) == 0) {
					set |= 1u << names[i].f;
					known = true;
				}
			}
			if (!known)
				return false;
		}
		v += n;
		v += strspn(v, " \t,");
	}
	*out = set;
	return set != 0;
}

/* Sets one option from its text; reports a bad value. */
static void set_option(struct loader *ld, struct cfg *cfg, const struct opt *o, const char *v)
{
	char *field = (char *)cfg + o->offset;
	long long n;
	bool b;

	switch (o->type) {
	case OPT_STRING:
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		break;
	case OPT_LONG:
		if (!parse_integer(v, o->min, o->max, &n)) {
			fail(ld, o->section, o->name,
			     "expected a whole number from %lld to %lld, got '%s'", o->min, o->max,
			     v);
			return;
		}
		*(long long *)field = n;
		break;
	case OPT_BOOL:
		if (!parse_bool(v, &b)) {
			fail(ld, o->section, o->name, "expected yes or no, got '%s'", v);
			return;
		}
		*(bool *)field = b;
		break;
	case OPT_FORMATS:
		if (!parse_formats(v, (unsigned *)field))
			fail(ld, o->section, o->name,
			     "expected a list of jpeg, png, gif and webp, got '%s'", v);
		break;
	case OPT_CHOICE:
		if (!parse_choice(o->choices, v, &n))
			fail(ld, o->section, o->name, "expected one of %s, got '%s'", o->choices,
			     v);
		else if (o->offset == OFF(limits.redis_fail_open))
			*(bool *)field = n == 1;
		else
			*(int *)field = (int)n;
		break;
	}
}

static const struct opt *find_option(const char *section, const char *name)
{
	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
		if (strcmp(options[i].section, section) == 0 && strcmp(options[i].name, name) == 0)
			return &options[i];
	return NULL;
}

static bool valid_key_name(const char *s)
{
	if (!*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return false;
	return true;
}

/*
 * The SHA-256 of a key given as "key = KEY" or "sha256 = HEX" (exactly one
 * of them): what [key NAME] and [metrics] both hold.
 */
static bool key_digest(struct loader *ld, const char *sec, const char *key, const char *sha,
		       unsigned char digest[SHA256_LEN])
{
	if ((key != NULL) == (sha != NULL))
		return fail(ld, sec, key ? "sha256" : "key", "give exactly one of key and sha256");
	if (key) {
		/* Keys shorter than this are guessable by brute force. */
		if (strlen(key) < 8)
			return fail(ld, sec, "key", "must be at least 8 characters");
		crypto_sha256(key, strlen(key), digest);
		return true;
	}
	if (!crypto_unhex(sha, digest, SHA256_LEN))
		return fail(ld, sec, "sha256", "expected 64 hex digits (echo -n KEY | sha256sum)");
	return true;
}

/* Loads one [key NAME] section. */
static void load_key(struct loader *ld, struct cfg *cfg, dictionary *d, const char *sec)
{
	const char *name = sec + strlen(KEY_SECTION);
	struct buf k = BUF_INIT;
	const char *key, *sha, *enabled;
	unsigned char digest[SHA256_LEN];
	bool on = true;

	while (*name == ' ')
		name++;
	if (!valid_key_name(name)) {
		fail(ld, sec, NULL, "key name must be 1 to 64 letters, digits, '-', '_' or '.'");
		return;
	}
	buf_printf(&k, "%s:key", sec);
	key = iniparser_getstring(d, k.data, NULL);
	buf_reset(&k);
	buf_printf(&k, "%s:sha256", sec);
	sha = iniparser_getstring(d, k.data, NULL);
	buf_reset(&k);
	buf_printf(&k, "%s:enabled", sec);
	enabled = iniparser_getstring(d, k.data, NULL);
	buf_reset(&k);
	buf_printf(&k, "%s:plan", sec);
	const char *plan = iniparser_getstring(d, k.data, NULL);
	buf_free(&k);
	int plan_index = -1;
	if (plan) {
		for (size_t i = 0; i < cfg->n_plans; i++)
			if (strcasecmp(cfg->plans[i].name, plan) == 0)
				plan_index = (int)i;
		if (plan_index < 0) {
			fail(ld, sec, "plan", "no [plan %s] section", plan);
			return;
		}
	}

	if (!key_digest(ld, sec, key, sha, digest))
		return;
	if (enabled && !parse_bool(enabled, &on)) {
		fail(ld, sec, "enabled", "expected yes or no, got '%s'", enabled);
		return;
	}
	for (size_t i = 0; i < cfg->keys.n; i++) {
		/* "[key  web]" and "[key web]" are two sections but one name. */
		if (strcmp(cfg->keys.keys[i].name, name) == 0) {
			fail(ld, sec, NULL, "same name as another [key %s] section", name);
			return;
		}
		if (crypto_equal(cfg->keys.keys[i].digest, digest, SHA256_LEN)) {
			fail(ld, sec, key ? "key" : "sha256", "same key as [key %s]",
			     cfg->keys.keys[i].name);
			return;
		}
	}
	auth_add(&cfg->keys, name, digest, on)->plan = plan_index;
}

/* Reads sec:name, or NULL. */
static const char *get(dictionary *d, const char *sec, const char *name)
{
	struct buf k = BUF_INIT;
	buf_printf(&k, "%s:%s", sec, name);
	const char *v = iniparser_getstring(d, k.data, NULL);
	buf_free(&k);
	return v;
}

static bool parse_rate(const char *v, double *out)
{
	char *end;
	errno = 0;
	double r = strtod(v, &end);
	if (errno || end == v || *end || !(r > 0) || r > 1e6)
		return false;
	*out = r;
	return true;
}

/* Loads one [plan NAME] section: a throttle, a quota, or both. */
static bool load_plan(struct loader *ld, struct cfg *cfg, dictionary *d, const char *sec)
{
	const char *name = sec + strlen(PLAN_SECTION);
	const char *rate = get(d, sec, "rate"), *burst = get(d, sec, "burst");
	const char *quota = get(d, sec, "quota"), *period = get(d, sec, "period");
	struct plan p = {0};
	long long n;

	while (*name == ' ')
		name++;
	if (!valid_key_name(name))
		return fail(ld, sec, NULL,
			    "plan name must be 1 to 64 letters, digits, '-', '_' or '.'");
	if (!rate && !quota)
		return fail(ld, sec, NULL, "a plan needs a rate, a quota, or both");
	if (rate && !parse_rate(rate, &p.rate))
		return fail(ld, sec, "rate",
			    "expected requests per second above 0, up to 1000000, got '%s'", rate);
	if (burst && !rate)
		return fail(ld, sec, "burst", "needs a rate");
	if (burst && !parse_integer(burst, 1, 1000000000, &n))
		return fail(ld, sec, "burst",
			    "expected a whole number from 1 to 1000000000, got '%s'", burst);
	/* Without a burst, the bucket holds one second of rate (at least one request). */
	p.burst = burst ? n : (rate ? (int64_t)(p.rate + 0.999999) : 0);
	if (p.burst < 1 && rate)
		p.burst = 1;
	if (quota && !parse_integer(quota, 1, 1000000000000LL, &n))
		return fail(ld, sec, "quota", "expected a whole number from 1, got '%s'", quota);
	p.quota = quota ? n : 0;
	if (quota && !period)
		return fail(ld, sec, "period", "a quota needs a period: day, week or month");
	if (period && !quota)
		return fail(ld, sec, "period", "needs a quota");
	if (period && (p.period = plan_period_parse(period)) == PERIOD_NONE)
		return fail(ld, sec, "period", "expected day, week or month, got '%s'", period);
	for (size_t i = 0; i < cfg->n_plans; i++)
		if (strcmp(cfg->plans[i].name, name) == 0)
			return fail(ld, sec, NULL, "same name as another [plan %s] section", name);
	cfg->plans = xrealloc(cfg->plans, (cfg->n_plans + 1) * sizeof *cfg->plans);
	p.name = xstrdup(name);
	cfg->plans[cfg->n_plans++] = p;
	return true;
}

/* [metrics]: the admin key that may read {mount}/_imgsvc/metrics. */
static bool load_metrics(struct loader *ld, struct cfg *cfg, dictionary *d)
{
	const char *key = get(d, "metrics", "key"), *sha = get(d, "metrics", "sha256");
	unsigned char digest[SHA256_LEN];
	if (!key && !sha)
		return true;
	if (!key_digest(ld, "metrics", key, sha, digest))
		return false;
	auth_add(&cfg->metrics_keys, "metrics", digest, true);
	return true;
}

static bool is_key_section(const char *sec)
{
	return strncmp(sec, KEY_SECTION, strlen(KEY_SECTION)) == 0;
}

static bool is_plan_section(const char *sec)
{
	return strncmp(sec, PLAN_SECTION, strlen(PLAN_SECTION)) == 0;
}

/* The open_sections entry sec belongs to, or -1. */
static int open_section(const char *sec)
{
	for (size_t i = 0; i < sizeof open_sections / sizeof open_sections[0]; i++) {
		size_t n = strlen(open_sections[i].prefix);
		if (open_sections[i].named ? strncmp(sec, open_sections[i].prefix, n) == 0
					   : strcmp(sec, open_sections[i].prefix) == 0)
			return (int)i;
	}
	return -1;
}

static bool fixed_section(const char *sec)
{
	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
		if (strcmp(options[i].section, sec) == 0)
			return true;
	return false;
}

/* Every dictionary entry must be a known section or a known key in one. */
static void check_entries(struct loader *ld, dictionary *d)
{
	for (ssize_t i = 0; i < d->size && !ld->failed; i++) {
		const char *entry = d->key[i];
		if (!entry)
			continue;
		const char *colon = strrchr(entry, ':');
		if (!colon) {
			if (!fixed_section(entry) && open_section(entry) < 0)
				fail(ld, entry, NULL,
				     "unknown section (expected [server], [s3], [limits], "
				     "[metrics], "
				     "[key NAME] or [plan NAME])");
			continue;
		}
		size_t seclen = (size_t)(colon - entry);
		char *sec = xmalloc(seclen + 1);
		memcpy(sec, entry, seclen);
		sec[seclen] = '\0';
		const char *name = colon + 1;
		int open = seclen ? open_section(sec) : -1;
		long long ignored;
		if (seclen == 0)
			fail(ld, NULL, name, "key outside any section");
		else if (open >= 0 && !parse_choice(open_sections[open].keys, name, &ignored))
			fail(ld, sec, name, "unknown key (expected one of %s)",
			     open_sections[open].keys);
		else if (open < 0 && !find_option(sec, name))
			fail(ld, sec, name, "unknown key");
		free(sec);
	}
}

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static void check_rules(struct loader *ld, struct cfg *cfg)
{
	struct cfg_s3 *s3 = &cfg->s3;

	if (!*s3->bucket)
		fail(ld, "s3", "bucket", "must not be empty");
	for (const char *p = s3->bucket; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_.", *p))
			fail(ld, "s3", "bucket", "'%s' is not a valid bucket name", s3->bucket);
	if (!*s3->region)
		fail(ld, "s3", "region", "must not be empty");
	for (const char *p = s3->region; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-')
			fail(ld, "s3", "region", "'%s' is not a valid region name", s3->region);
	if (*s3->endpoint) {
		if (!has_prefix(s3->endpoint, "http://") && !has_prefix(s3->endpoint, "https://"))
			fail(ld, "s3", "endpoint", "must start with http:// or https://");
		size_t n = strlen(s3->endpoint);
		while (n && s3->endpoint[n - 1] == '/')
			s3->endpoint[--n] = '\0';
	}
	if (s3->addressing == CFG_ADDR_VIRTUAL && strchr(s3->bucket, '.') &&
	    (!*s3->endpoint || has_prefix(s3->endpoint, "https://")))
		fail(ld, "s3", "addressing",
		     "virtual-hosted addressing with a dotted bucket name breaks TLS; use path");
	if (s3->originals_prefix[0] == '/')
		fail(ld, "s3", "originals_prefix", "must not start with '/'");
	if (strlen(s3->originals_prefix) > 512)
		fail(ld, "s3", "originals_prefix", "longer than 512 bytes");
	if (s3->resized_prefix[0] == '/' || strlen(s3->resized_prefix) > 512)
		fail(ld, "s3", "resized_prefix", "must not start with '/' nor pass 512 bytes");
	/*
	 * imgsvc writes derivatives under resized_prefix and must never write
	 * where originals live, nor read a derivative as an original.
	 */
	if (cfg->server.derivative_cache && (has_prefix(s3->resized_prefix, s3->originals_prefix) ||
					     has_prefix(s3->originals_prefix, s3->resized_prefix)))
		fail(ld, "s3", "resized_prefix",
		     "'%s' overlaps originals_prefix '%s': neither may start with the other "
		     "(or set [server] derivative_cache = no)",
		     s3->resized_prefix, s3->originals_prefix);
	if (!*s3->access_key_id != !*s3->secret_access_key)
		fail(ld, "s3", *s3->access_key_id ? "secret_access_key" : "access_key_id",
		     "access_key_id and secret_access_key go together");
	if (*s3->session_token && !*s3->access_key_id)
		fail(ld, "s3", "session_token", "needs access_key_id and secret_access_key");
	if (s3->connect_timeout_ms > s3->timeout_ms)
		fail(ld, "s3", "connect_timeout_ms", "larger than timeout_ms (%lld)",
		     s3->timeout_ms);
	for (const char *p = cfg->server.cache_control; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			fail(ld, "server", "cache_control", "contains a control character");
#ifndef HAVE_REDIS
	if (cfg->limits.backend == CFG_BACKEND_REDIS)
		fail(ld, "limits", "backend",
		     "this imgsvc was built without Redis support (configure --with-redis, "
		     "Debian package libhiredis-dev)");
#endif
	if (!*cfg->limits.state_file && cfg->n_plans && cfg->limits.backend == CFG_BACKEND_LOCAL)
		fail(ld, "limits", "state_file", "usage plans need a state file");
	if (*cfg->limits.state_file && cfg->limits.state_file[0] != '/')
		fail(ld, "limits", "state_file", "must be an absolute path");
	if (cfg->keys.n == 0)
		fail(ld, NULL, NULL, "no [key NAME] section: at least one API key is required");
}

/*
 * Repeated sections and keys. iniparser merges a second [key web] into the
 * first and lets a repeated key overwrite the earlier one, so one API key
 * would quietly disappear; its dictionary keeps no line numbers, so the file
 * is read a second time here, split into lines as iniparser 4.1 splits them:
 * a line of at most INI_LINE bytes, trailing space dropped, a final '\'
 * joining the next line (a comment too), '#' or ';' first for a comment,
 * "[NAME]" for a section (up to the first ']'), else NAME before the first
 * '=' for a key; names stripped of spaces and lowercased.
 */
#define INI_LINE 1024 /* iniparser's ASCIILINESZ */

struct seen {
	char *name; /* "section" or "section:key" as iniparser stores it */
	int line;
};

static void strip_lower(char *s)
{
	size_t n = strlen(s), i = 0;
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	while (isspace((unsigned char)s[i]))
		i++;
	memmove(s, s + i, n - i + 1);
	for (char *p = s; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

/* The line where name was first seen, or records it and returns 0. */
static int seen_before(struct seen **list, size_t *n, const char *name, int line)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*list)[i].name, name) == 0)
			return (*list)[i].line;
	*list = xrealloc(*list, (*n + 1) * sizeof **list);
	(*list)[*n].name = xstrdup(name);
	(*list)[(*n)++].line = line;
	return 0;
}

static void check_repeats(struct loader *ld)
{
	FILE *f = fopen(ld->file, "r");
	char line[INI_LINE + 1] = "", section[INI_LINE + 1] = "", entry[2 * INI_LINE + 2];
	struct seen *seen = NULL;
	size_t n_seen = 0, last = 0;
	int lineno = 0, first = 0;

	if (!f)
		return; /* iniparser has just read it; nothing new to say */
	while (!ld->failed && fgets(line + last, (int)(INI_LINE - last), f)) {
		lineno++;
		if (!last)
			first = lineno;
		size_t len = strlen(line);
		if (len <= 1) /* iniparser skips these too */
			continue;
		if (line[len - 1] != '\n' && !feof(f))
			break; /* too long: iniparser has refused the file already */
		while (len && isspace((unsigned char)line[len - 1]))
			line[--len] = '\0';
		if (len && line[len - 1] == '\\') {
			last = len - 1;
			continue;
		}
		last = 0;
		char *l = line;
		while (isspace((unsigned char)*l))
			l++;
		size_t ll = strlen(l);
		int prev;
		if (ll == 0 || l[0] == '#' || l[0] == ';') {
			/* empty or a comment */
		} else if (l[0] == '[' && l[ll - 1] == ']') {
			size_t in = strcspn(l + 1, "]");
			if (in > 0) { /* iniparser keeps the section for "[]" */
				memcpy(section, l + 1, in);
				section[in] = '\0';
				strip_lower(section);
			}
			if ((prev = seen_before(&seen, &n_seen, section, first)))
				fail(ld, section, NULL,
				     "line %d repeats the section of line %d: each section may "
				     "appear once (iniparser would merge them)",
				     first, prev);
		} else if (l[0] != '=' && strchr(l, '=')) {
			size_t kl = strcspn(l, "=");
			snprintf(entry, sizeof entry, "%s:%.*s", section, (int)kl, l);
			strip_lower(entry + strlen(section) + 1);
			if ((prev = seen_before(&seen, &n_seen, entry, first)))
				fail(ld, *section ? section : NULL, entry + strlen(section) + 1,
				     "line %d repeats line %d: each key may appear once in a "
				     "section (the later one would win)",
				     first, prev);
		}
		memset(line, 0, sizeof line);
	}
	fclose(f);
	for (size_t i = 0; i < n_seen; i++)
		free(seen[i].name);
	free(seen);
}

static struct loader *error_sink; /* iniparser reports through a global */

static int ini_error(const char *fmt, ...)
{
	if (!error_sink || error_sink->failed)
		return 0;
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	/* "iniparser: syntax error in FILE (LINE):\n-> TEXT\n" -> one line */
	for (char *p = b.data; p && *p; p++)
		if (*p == '\n')
			*p = ' ';
	fail(error_sink, NULL, NULL, "%s", b.data ? b.data : "parse error");
	buf_free(&b);
	return 0;
}

struct cfg *cfg_load(const char *path, char *err, size_t errlen)
{
	struct loader ld = {path, err, errlen, false};
	struct cfg *cfg = xcalloc(1, sizeof *cfg);
	FILE *f;

	cfg->path = xstrdup(path);
	/* Defaults first, so every field is set even if the file omits it. */
	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
		if (options[i].def)
			set_option(&ld, cfg, &options[i], options[i].def);
	cfg->s3.bucket = xstrdup("");

	f = fopen(path, "r");
	if (!f) {
		fail(&ld, NULL, NULL, "cannot open: %s", strerror(errno));
		goto out;
	}
	/* fopen takes a directory, which iniparser then reads as an empty file. */
	struct stat st;
	bool is_dir = fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode);
	fclose(f);
	if (is_dir) {
		fail(&ld, NULL, NULL, "is a directory, not a configuration file");
		goto out;
	}
	error_sink = &ld;
	iniparser_set_error_callback(ini_error);
	dictionary *d = iniparser_load(path);
	iniparser_set_error_callback(NULL);
	error_sink = NULL;
	if (!d) {
		fail(&ld, NULL, NULL, "cannot be parsed");
		goto out;
	}
	check_repeats(&ld);
	check_entries(&ld, d);
	for (size_t i = 0; i < sizeof options / sizeof options[0] && !ld.failed; i++) {
		const struct opt *o = &options[i];
		struct buf k = BUF_INIT;
		buf_printf(&k, "%s:%s", o->section, o->name);
		const char *v = iniparser_getstring(d, k.data, NULL);
		buf_free(&k);
		if (v)
			set_option(&ld, cfg, o, v);
		else if (!o->def)
			fail(&ld, o->section, o->name, "required");
	}
	/* Plans first: keys name them. */
	for (int i = 0; i < iniparser_getnsec(d) && !ld.failed; i++) {
		const char *sec = iniparser_getsecname(d, i);
		if (sec && is_plan_section(sec))
			load_plan(&ld, cfg, d, sec);
	}
	for (int i = 0; i < iniparser_getnsec(d) && !ld.failed; i++) {
		const char *sec = iniparser_getsecname(d, i);
		if (sec && is_key_section(sec))
			load_key(&ld, cfg, d, sec);
	}
	if (!ld.failed)
		load_metrics(&ld, cfg, d);
	iniparser_freedict(d);
	if (!ld.failed)
		check_rules(&ld, cfg);
out:
	if (ld.failed) {
		cfg_free(cfg);
		return NULL;
	}
	return cfg;
}

void cfg_free(struct cfg *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
		if (options[i].type == OPT_STRING)
			free(*(char **)((char *)cfg + options[i].offset));
	auth_table_free(&cfg->keys);
	auth_table_free(&cfg->metrics_keys);
	for (size_t i = 0; i < cfg->n_plans; i++)
		free(cfg->plans[i].name);
	free(cfg->plans);
	free(cfg->path);
	free(cfg);
}

const char *cfg_default_path(const char *arg)
{
	const char *env = getenv("IMGSVC_CONFIG");
	if (arg && *arg)
		return arg;
	if (env && *env)
		return env;
	return SYSCONFDIR "/imgsvc/imgsvc.ini";
}
