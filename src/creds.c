/*
 * creds.c - the S3 credential chain of SPEC §5 (see creds.h for the order).
 *
 * Each source is a function that answers FOUND (with credentials), ABSENT
 * (not configured here: try the next one) or FAILED (configured but
 * broken: stop, rather than silently run as another identity, as the AWS
 * SDKs do). Every answer leaves a short reason, and the reasons of all
 * sources tried make up the error message. The provider remembers which
 * source answered; temporary credentials are re-fetched from that same
 * source once inside the refresh margin, and kept while a refresh fails
 * but they are still valid.
 *
 * The two network sources use one libcurl easy handle per request: they
 * are asked once an hour or so. Requests never go through a proxy (the
 * endpoints are link-local or loopback), never follow redirects, and their
 * answers are capped in size. Secrets are never put in an error message,
 * and their memory is wiped before it is freed.
 *
 * Not thread-safe: one provider per process (or per thread).
 */
#include "creds.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "buf.h"
#include "clock.h"
#include "json.h"

#define DEFAULT_TIMEOUT_MS 1000
#define DEFAULT_MARGIN_S 300
/* While still valid, a failed or too-short refresh is retried this often. */
#define RETRY_S 30
/* Credential documents are a few KiB; anything much bigger is not one. */
#define MAX_BODY (64 * 1024)
#define MAX_FILE (1024 * 1024)
#define ECS_HOST "http://169.254.170.2"
#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_DEFAULT_V6 "http://[fd00:ec2::254]"
#define IMDS_TOKEN_TTL "21600"

enum got { FOUND, ABSENT, FAILED };

struct creds_provider {
	char *cfg_key, *cfg_secret, *cfg_token;
	bool imds_enabled;
	long timeout_ms;
	int margin_s;

	struct creds cur;
	bool have;
	enum got (*source)(struct creds_provider *, struct creds *, time_t, struct buf *);
	time_t next_try;  /* no refresh attempt before this while cur is valid */
	int64_t deadline; /* of the creds_get in progress (monotonic ms), 0: none */
	pthread_mutex_t lock; /* creds_take and creds_invalidate */
};

/* Frees a string that may hold a secret, wiping it first. */
static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void wipe_buf(struct buf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap);
	buf_free(b);
}

static void creds_clear(struct creds *c)
{
	free(c->access_key_id);
	free_secret(c->secret_access_key);
	free_secret(c->session_token);
	memset(c, 0, sizeof *c);
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static bool is_set(const char *s)
{
	return s && *s;
}

/*
 * The values end up in HTTP headers: printable ASCII only, no spaces, so a
 * stray newline cannot inject a header. Names the offending field, never
 * its value.
 */
static bool check_value(const char *what, const char *s, size_t len, struct buf *why)
{
	if (!len) {
		buf_printf(why, "%s is empty", what);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch >= 0x7f) {
			buf_printf(why, "%s holds a character not allowed in a header", what);
			return false;
		}
	}
	return true;
}

/* Fills c from three C strings (token may be NULL); false with a reason. */
static bool set_static(struct creds *c, const char *source, const char *key, const char *secret,
		       const char *token, struct buf *why)
{
	if (!check_value("access key id", key, strlen(key), why) ||
	    !check_value("secret access key", secret, strlen(secret), why) ||
	    (is_set(token) && !check_value("session token", token, strlen(token), why)))
		return false;
	c->access_key_id = xstrdup(key);
	c->secret_access_key = xstrdup(secret);
	c->session_token = is_set(token) ? xstrdup(token) : NULL;
	c->expiration = 0;
	c->source = source;
	return true;
}

/* ---- config and environment ---- */

static enum got from_config(struct creds_provider *p, struct creds *c, time_t now, struct buf *why)
{
	(void)now;
	if (!p->cfg_key) {
		buf_puts(why, "not set");
		return ABSENT;
	}
	/* Both halves were checked in creds_provider_new. */
	return set_static(c, "config", p->cfg_key, p->cfg_secret, p->cfg_token, why) ? FOUND
										     : FAILED;
}

static enum got from_env(struct creds_provider *p, struct creds *c, time_t now, struct buf *why)
{
	(void)p, (void)now;
	const char *key = env("AWS_ACCESS_KEY_ID");
	const char *secret = env("AWS_SECRET_ACCESS_KEY");
	if (!key && !secret) {
		buf_puts(why, "AWS_ACCESS_KEY_ID not set");
		return ABSENT;
	}
	if (!key || !secret) {
		buf_printf(why, "%s set without %s",
			   key ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			   key ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return FAILED;
	}
	return set_static(c, "environment", key, secret, env("AWS_SESSION_TOKEN"), why) ? FOUND
											: FAILED;
}

/* ---- shared credentials file ---- */

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/*
 * Reads the INI file of the AWS CLI: "[name]" sections, "key = value"
 * lines, whole-line comments with # or ;. A # or ; after whitespace also
 * starts a comment (as in the AWS SDKs for Go and Java); secrets never
 * hold whitespace, so this cannot cut one. Key names are matched ignoring
 * case, as Python's configparser (the AWS CLI) does; section names and
 * values are kept exactly. Later lines win over earlier ones.
 */
static void parse_shared(char *text, const char *profile, char **key, char **secret, char **token,
			 bool *in_file)
{
	bool in_profile = false;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line = trim(line);
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (*line == '[') {
			char *close = strchr(line, ']');
			in_profile = false;
			if (close) {
				*close = '\0';
				in_profile = strcmp(trim(line + 1), profile) == 0;
				*in_file |= in_profile;
			}
			continue;
		}
		if (!in_profile)
			continue;
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		char *name = trim(line), *value = eq + 1;
		for (char *q = value; *q; q++) {
			if ((*q == '#' || *q == ';') && q > value &&
			    (q[-1] == ' ' || q[-1] == '\t')) {
				*q = '\0';
				break;
			}
		}
		value = trim(value);
		char **slot = !strcasecmp(name, "aws_access_key_id")       ? key
			      : !strcasecmp(name, "aws_secret_access_key") ? secret
			      : !strcasecmp(name, "aws_session_token")     ? token
									   : NULL;
		if (slot)
			*slot = value;
	}
}

/* The whole file in b, or -1 with errno set. */
static int read_file(const char *path, size_t max, struct buf *b)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (b->len + n > max) {
			fclose(f);
			explicit_bzero(chunk, sizeof chunk);
			errno = EFBIG;
			return -1;
		}
		buf_append(b, chunk, n);
	}
	explicit_bzero(chunk, sizeof chunk);
	int failed = ferror(f);
	fclose(f);
	if (failed) {
		errno = EIO;
		return -1;
	}
	return 0;
}

static enum got from_shared_file(struct creds_provider *p, struct creds *c, time_t now,
				 struct buf *why)
{
	(void)p, (void)now;
	struct buf path = BUF_INIT, text = BUF_INIT;
	const char *file = env("AWS_SHARED_CREDENTIALS_FILE");
	const char *home = env("HOME");
	const char *profile = env("AWS_PROFILE");
	enum got rc = FAILED;

	if (!profile)
		profile = "default";
	if (file && file[0] == '~' && file[1] == '/' && home)
		buf_printf(&path, "%s%s", home, file + 1);
	else if (file)
		buf_puts(&path, file);
	else if (home)
		buf_printf(&path, "%s/.aws/credentials", home);
	else {
		buf_puts(why, "neither AWS_SHARED_CREDENTIALS_FILE nor HOME set");
		return ABSENT;
	}

	buf_append(&text, "", 0);
	if (read_file(path.data, MAX_FILE, &text) < 0) {
		int e = errno;
		buf_printf(why, "%s: %s", path.data, strerror(e));
		rc = e == ENOENT ? ABSENT : FAILED;
		goto out;
	}
	char *key = NULL, *secret = NULL, *token = NULL;
	bool in_file = false;
	parse_shared(text.data, profile, &key, &secret, &token, &in_file);
	if (!in_file) {
		buf_printf(why, "%s: no profile [%s]", path.data, profile);
		rc = ABSENT;
	} else if (!is_set(key) && !is_set(secret)) {
		buf_printf(why, "%s: profile [%s] has no aws_access_key_id", path.data, profile);
		rc = ABSENT;
	} else if (!is_set(key) || !is_set(secret)) {
		buf_printf(why, "%s: profile [%s] lacks %s", path.data, profile,
			   is_set(key) ? "aws_secret_access_key" : "aws_access_key_id");
	} else if (set_static(c, "shared-file", key, secret, token, why)) {
		rc = FOUND;
	} else {
		buf_printf(why, " (%s, profile [%s])", path.data, profile);
	}
out:
	buf_free(&path);
	wipe_buf(&text);
	return rc;
}

/* ---- HTTP, for the container and instance metadata endpoints ---- */

struct fetch {
	struct buf body;
	bool too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fetch *f = arg;
	size_t n = size * nmemb;
	if (f->body.len + n > MAX_BODY) {
		f->too_big = true;
		return 0;
	}
	buf_append(&f->body, data, n);
	return n;
}

/*
 * One request; the response body lands in body (wipe it after use). Returns
 * the HTTP status, or 0 with a reason in why. headers may be NULL.
 */
static long http(const char *method, const char *url, struct curl_slist *headers, long timeout_ms,
		 struct buf *body, struct buf *why)
{
	struct fetch f = {BUF_INIT, false};
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURL *h = curl_easy_init();
	if (!h) {
		buf_puts(why, "cannot create a libcurl handle");
		return 0;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	/* A proxy from http_proxy would see the tokens, and cannot reach link-local. */
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_USERAGENT, "imgsvc");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
	if (headers)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
	CURLcode rc = curl_easy_perform(h);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	} else if (f.too_big) {
		buf_printf(why, "%s %s: answer larger than %d bytes", method, url, MAX_BODY);
	} else {
		buf_printf(why, "%s %s: %s", method, url,
			   errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	curl_easy_cleanup(h);
	if (status) {
		buf_append(body, f.body.data ? f.body.data : "", f.body.len);
	}
	wipe_buf(&f.body);
	return status;
}

/*
 * The timeout of one request to a credential endpoint: the configured one,
 * cut to what is left of the caller's budget, so a slow or silent endpoint
 * cannot hold a request past its deadline (IMDS takes three requests).
 */
static long request_timeout(const struct creds_provider *p)
{
	long t = p->timeout_ms;
	if (p->deadline) {
		int64_t left = p->deadline - clock_mono_ms();
		if (left < t)
			t = left > 1 ? (long)left : 1;
	}
	return t;
}

/* Adds "Name: value" to a header list; the value was checked for CR/LF. */
static struct curl_slist *add_header(struct curl_slist *list, const char *name, const char *value)
{
	struct buf line = BUF_INIT;
	buf_printf(&line, "%s: %s", name, value);
	struct curl_slist *l = curl_slist_append(list, line.data);
	wipe_buf(&line);
	if (!l) {
		fputs("imgsvc: out of memory\n", stderr);
		abort();
	}
	return l;
}

static void free_headers(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

/*
 * "2026-11-25T01:02:03Z", optionally with fractional seconds and with
 * "+00:00" for Z: the forms ECS and IMDS send.
 */
static bool parse_time(const char *s, time_t *out)
{
	int v[6];
	static const char seps[] = "--T::";
	const char *p = s;
	for (int i = 0; i < 6; i++) {
		int width = i == 0 ? 4 : 2, n = 0;
		for (int d = 0; d < width; d++, p++) {
			if (*p < '0' || *p > '9')
				return false;
			n = n * 10 + (*p - '0');
		}
		v[i] = n;
		if (i < 5 && *p++ != seps[i])
			return false;
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return false;
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
		return false;
	struct tm tm = {0};
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*out = t;
	return true;
}

/* Copies a JSON string member into *dst after checking it; false with a reason. */
static bool json_field(const struct buf *doc, const char *name, bool header_safe, char **dst,
		       struct buf *why)
{
	struct buf v = BUF_INIT;
	int rc = json_get_string(doc->data, doc->len, name, &v);
	bool ok = false;
	if (rc != JSON_OK) {
		if (rc == JSON_MALFORMED)
			buf_puts(why, "answer is not a valid JSON object");
		else
			buf_printf(why, "answer has no string %s", name);
		goto out;
	}
	if (strlen(v.data) != v.len) {
		buf_printf(why, "%s holds a NUL", name);
		goto out;
	}
	if (header_safe && !check_value(name, v.data, v.len, why))
		goto out;
	*dst = xstrdup(v.data);
	ok = true;
out:
	wipe_buf(&v);
	return ok;
}

/*
 * Reads the credential document shared by ECS and IMDS: AccessKeyId,
 * SecretAccessKey, Token, Expiration. Refuses credentials that have
 * already expired by now: using them would only earn 403s.
 */
static bool parse_document(const struct buf *doc, const char *source, time_t now, struct creds *c,
			   struct buf *why)
{
	struct creds n = {0};
	char *expiration = NULL;
	bool ok = false;
	if (!json_field(doc, "AccessKeyId", true, &n.access_key_id, why) ||
	    !json_field(doc, "SecretAccessKey", true, &n.secret_access_key, why) ||
	    !json_field(doc, "Token", true, &n.session_token, why) ||
	    !json_field(doc, "Expiration", false, &expiration, why))
		goto out;
	if (!parse_time(expiration, &n.expiration)) {
		buf_puts(why, "Expiration is not an ISO 8601 UTC time");
		goto out;
	}
	if (n.expiration <= now) {
		buf_printf(why, "credentials for %s had already expired (%s)", n.access_key_id,
			   expiration);
		goto out;
	}
	n.source = source;
	*c = n;
	ok = true;
out:
	free(expiration);
	if (!ok)
		creds_clear(&n);
	return ok;
}

/* ---- container credentials (ECS, EKS Pod Identity) ---- */

/*
 * Over plain http a bearer token and the credentials would cross a network:
 * allow only loopback and the link-local addresses that ECS and EKS Pod
 * Identity use, the same list as the AWS SDKs; anything else needs https.
 * The host is taken from curl's own URL parser, so what is checked is what
 * curl will connect to. "localhost" is resolved by libcurl itself (>= 7.78)
 * to loopback, never through DNS.
 */
static bool full_uri_allowed(const char *uri, struct buf *why)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	bool ok = false;
	if (!u || curl_url_set(u, CURLUPART_URL, uri, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		buf_printf(why, "AWS_CONTAINER_CREDENTIALS_FULL_URI %s is not a URL", uri);
		goto out;
	}
	if (strcasecmp(scheme, "https") == 0) {
		ok = true;
	} else if (strcasecmp(scheme, "http") == 0) {
		struct in_addr a4;
		ok = strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
		     strcmp(host, "169.254.170.2") == 0 || strcmp(host, "169.254.170.23") == 0 ||
		     strcasecmp(host, "[fd00:ec2::23]") == 0 ||
		     (inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127);
	}
	if (!ok)
		buf_printf(why,
			   "AWS_CONTAINER_CREDENTIALS_FULL_URI %s: only https, or http to a "
			   "loopback or the ECS/EKS address, is allowed",
			   uri);
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

/* The Authorization value: the token file (re-read each time, EKS rotates it) or variable. */
static int container_auth(struct buf *auth, struct buf *why)
{
	const char *file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	if (file) {
		if (read_file(file, 16384, auth) < 0) {
			buf_printf(why, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s", file,
				   strerror(errno));
			return -1;
		}
		while (auth->len && isspace((unsigned char)auth->data[auth->len - 1]))
			auth->data[--auth->len] = '\0';
	} else if (token) {
		buf_puts(auth, token);
	} else {
		return 0;
	}
	for (size_t i = 0; i < auth->len; i++) {
		unsigned char ch = (unsigned char)auth->data[i];
		if (ch < 0x20 || ch == 0x7f) {
			buf_printf(why,
				   "the container authorization token holds a control character");
			return -1;
		}
	}
	return 0;
}

static enum got from_container(struct creds_provider *p, struct creds *c, time_t now,
			       struct buf *why)
{
	const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	struct buf url = BUF_INIT, auth = BUF_INIT, body = BUF_INIT;
	struct curl_slist *headers = NULL;
	enum got rc = FAILED;

	if (rel) {
		/*
		 * The relative form always goes to the ECS agent, without a
		 * token. The leading '/' keeps a crafted value such as
		 * "@host/x" from becoming the URL's authority.
		 */
		buf_printf(&url, "%s%s%s", ECS_HOST, rel[0] == '/' ? "" : "/", rel);
	} else if (full) {
		if (!full_uri_allowed(full, why))
			goto out;
		buf_puts(&url, full);
		if (container_auth(&auth, why) < 0)
			goto out;
		if (auth.len)
			headers = add_header(headers, "Authorization", auth.data);
	} else {
		buf_puts(why, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI not set");
		rc = ABSENT;
		goto out;
	}
	headers = add_header(headers, "Accept", "application/json");
	long status = http("GET", url.data, headers, request_timeout(p), &body, why);
	if (!status)
		goto out;
	if (status != 200) {
		buf_printf(why, "GET %s: HTTP %ld", url.data, status);
		goto out;
	}
	if (!parse_document(&body, "container", now, c, why)) {
		buf_printf(why, " (GET %s)", url.data);
		goto out;
	}
	rc = FOUND;
out:
	free_headers(headers);
	buf_free(&url);
	wipe_buf(&auth);
	wipe_buf(&body);
	return rc;
}

/* ---- EC2 instance metadata, IMDSv2 ---- */

static bool imds_disabled_by_env(void)
{
	const char *v = env("AWS_EC2_METADATA_DISABLED");
	return v && strcasecmp(v, "true") == 0;
}

/* IAM role names: [\w+=,.@-], so one is safe to put in a URL path. */
static bool role_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_+=,.@-", *s))
			return false;
	return true;
}

/*
 * Only IMDSv2: the session token PUT is required and there is no fallback
 * to v1, which instances are increasingly configured to refuse anyway and
 * which is what SSRF attacks on metadata exploit.
 */
static enum got from_imds(struct creds_provider *p, struct creds *c, time_t now, struct buf *why)
{
	struct buf base = BUF_INIT, url = BUF_INIT, token = BUF_INIT, body = BUF_INIT;
	struct curl_slist *headers = NULL;
	enum got rc = FAILED;
	long status;

	if (!p->imds_enabled) {
		buf_puts(why, "disabled in the configuration");
		rc = ABSENT;
		goto out;
	}
	if (imds_disabled_by_env()) {
		buf_puts(why, "disabled by AWS_EC2_METADATA_DISABLED");
		rc = ABSENT;
		goto out;
	}
	const char *ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode = env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	if (!ep)
		ep = mode && strcasecmp(mode, "IPv6") == 0 ? IMDS_DEFAULT_V6 : IMDS_DEFAULT;
	buf_puts(&base, ep);
	while (base.len && base.data[base.len - 1] == '/')
		base.data[--base.len] = '\0';

	buf_printf(&url, "%s/latest/api/token", base.data);
	headers = add_header(NULL, "X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL);
	status = http("PUT", url.data, headers, request_timeout(p), &token, why);
	free_headers(headers);
	headers = NULL;
	if (!status)
		goto out;
	if (status != 200) {
		buf_printf(why, "PUT %s: HTTP %ld (IMDSv2 session token refused)", url.data,
			   status);
		goto out;
	}
	while (token.len && isspace((unsigned char)token.data[token.len - 1]))
		token.data[--token.len] = '\0';
	struct buf tokwhy = BUF_INIT;
	if (!check_value("IMDS session token", token.data, token.len, &tokwhy)) {
		buf_printf(why, "PUT %s: %s", url.data, tokwhy.data);
		buf_free(&tokwhy);
		goto out;
	}
	buf_free(&tokwhy);
	headers = add_header(NULL, "X-aws-ec2-metadata-token", token.data);

	buf_reset(&url);
	buf_printf(&url, "%s/latest/meta-data/iam/security-credentials/", base.data);
	status = http("GET", url.data, headers, request_timeout(p), &body, why);
	if (!status)
		goto out;
	if (status == 404) {
		buf_printf(why, "GET %s: HTTP 404 (no IAM role attached to the instance)",
			   url.data);
		goto out;
	}
	if (status != 200) {
		buf_printf(why, "GET %s: HTTP %ld", url.data, status);
		goto out;
	}
	/* One role per instance profile: the first line. */
	char *nl = memchr(body.data ? body.data : "", '\n', body.len);
	if (nl)
		*nl = '\0';
	char *role = body.data ? trim(body.data) : "";
	if (!role_name_ok(role)) {
		buf_printf(why, "GET %s: answer is not an IAM role name", url.data);
		goto out;
	}
	buf_puts(&url, role);
	buf_reset(&body);
	status = http("GET", url.data, headers, request_timeout(p), &body, why);
	if (!status)
		goto out;
	if (status != 200) {
		buf_printf(why, "GET %s: HTTP %ld", url.data, status);
		goto out;
	}
	struct buf code = BUF_INIT;
	int crc = json_get_string(body.data, body.len, "Code", &code);
	if (crc == JSON_OK && strcmp(code.data, "Success") != 0) {
		buf_printf(why, "GET %s: Code is not Success", url.data);
		buf_free(&code);
		goto out;
	}
	buf_free(&code);
	if (!parse_document(&body, "imds", now, c, why)) {
		buf_printf(why, " (GET %s)", url.data);
		goto out;
	}
	rc = FOUND;
out:
	free_headers(headers);
	buf_free(&base);
	buf_free(&url);
	wipe_buf(&token);
	wipe_buf(&body);
	return rc;
}

/* ---- the chain ---- */

static const struct {
	const char *name;
	enum got (*fn)(struct creds_provider *, struct creds *, time_t, struct buf *);
} chain[] = {
    {"config", from_config},       {"environment", from_env}, {"shared-file", from_shared_file},
    {"container", from_container}, {"imds", from_imds},
};

static void set_err(char *err, size_t errlen, const struct buf *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg->data ? msg->data : "");
}

/* Walks the chain; on success p->cur and p->source are set. */
static bool resolve(struct creds_provider *p, time_t now, struct buf *msg)
{
	struct buf why = BUF_INIT;
	bool found = false;
	buf_puts(msg, "no S3 credentials:");
	for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
		struct creds c = {0};
		buf_reset(&why);
		enum got g = chain[i].fn(p, &c, now, &why);
		if (g == FOUND) {
			p->cur = c;
			p->have = true;
			p->source = chain[i].fn;
			p->next_try = 0;
			found = true;
			break;
		}
		buf_printf(msg, "%s %s: %s", i ? ";" : "", chain[i].name, why.data ? why.data : "");
		if (g == FAILED) {
			buf_puts(msg, " (so no later source was tried)");
			break;
		}
	}
	buf_free(&why);
	return found;
}

struct creds_provider *creds_provider_new(const struct creds_options *opt, char *err, size_t errlen)
{
	const char *bad = NULL;
	if (is_set(opt->access_key_id) != is_set(opt->secret_access_key))
		bad = "config sets only one of access_key_id and secret_access_key";
	else if (is_set(opt->session_token) && !is_set(opt->access_key_id))
		bad = "config sets session_token without access_key_id";
	else if (opt->timeout_ms < 0)
		bad = "credential endpoint timeout is negative";
	else if (opt->refresh_margin_s < 0)
		bad = "credential refresh margin is negative";
	if (bad) {
		if (err && errlen)
			snprintf(err, errlen, "%s", bad);
		return NULL;
	}
	struct creds_provider *p = xcalloc(1, sizeof *p);
	if (is_set(opt->access_key_id)) {
		p->cfg_key = xstrdup(opt->access_key_id);
		p->cfg_secret = xstrdup(opt->secret_access_key);
		p->cfg_token = is_set(opt->session_token) ? xstrdup(opt->session_token) : NULL;
	}
	p->imds_enabled = opt->imds_enabled;
	p->timeout_ms = opt->timeout_ms ? opt->timeout_ms : DEFAULT_TIMEOUT_MS;
	p->margin_s = opt->refresh_margin_s ? opt->refresh_margin_s : DEFAULT_MARGIN_S;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

const struct creds *creds_get(struct creds_provider *p, time_t now, long budget_ms, char *err,
			      size_t errlen)
{
	struct buf msg = BUF_INIT, why = BUF_INIT;
	const struct creds *ret = NULL;

	p->deadline = budget_ms > 0 ? clock_mono_ms() + budget_ms : 0;

	if (p->have && p->cur.expiration) {
		bool expired = now >= p->cur.expiration;
		bool due = now >= p->cur.expiration - p->margin_s;
		if (expired || (due && now >= p->next_try)) {
			struct creds c = {0};
			p->next_try = now + RETRY_S;
			if (p->source(p, &c, now, &why) == FOUND) {
				creds_clear(&p->cur);
				p->cur = c;
			} else if (expired) {
				buf_printf(&msg, "refreshing S3 credentials from %s failed: %s",
					   p->cur.source, why.data ? why.data : "");
				/* Start over from the whole chain next time. */
				creds_clear(&p->cur);
				p->have = false;
				goto out;
			}
			/* else: keep the old ones, still valid, and try again later. */
		}
	}
	if (!p->have && !resolve(p, now, &msg))
		goto out;
	ret = &p->cur;
out:
	p->deadline = 0;
	if (!ret)
		set_err(err, errlen, &msg);
	buf_free(&msg);
	buf_free(&why);
	return ret;
}

static char *copy_secret(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

bool creds_take(struct creds_provider *p, time_t now, long budget_ms, struct creds *out,
		char *err, size_t errlen)
{
	pthread_mutex_lock(&p->lock);
	const struct creds *c = creds_get(p, now, budget_ms, err, errlen);
	if (c) {
		*out = (struct creds){xstrdup(c->access_key_id), copy_secret(c->secret_access_key),
				      copy_secret(c->session_token), c->expiration, c->source};
	}
	pthread_mutex_unlock(&p->lock);
	return c != NULL;
}

void creds_release(struct creds *c)
{
	creds_clear(c);
}

void creds_invalidate(struct creds_provider *p)
{
	pthread_mutex_lock(&p->lock);
	creds_clear(&p->cur);
	p->have = false;
	pthread_mutex_unlock(&p->lock);
}

void creds_provider_free(struct creds_provider *p)
{
	if (!p)
		return;
	creds_clear(&p->cur);
	pthread_mutex_destroy(&p->lock);
	free(p->cfg_key);
	free_secret(p->cfg_secret);
	free_secret(p->cfg_token);
	free(p);
}
