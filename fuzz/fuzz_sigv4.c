/*
 * fuzz_sigv4.c - libFuzzer target: the SigV4 signer (src/sigv4.c) and the
 * S3 URL builder that feeds it (s3_build_url in src/s3req.c).
 *
 * Input, NUL-separated: METHOD, KEY, QUERY, REGION, SERVICE, ACCESS-KEY-ID,
 * SECRET, BUCKET, ENDPOINT, TIME (decimal seconds), then up to 8 header
 * NAME, VALUE pairs. Two signings per input: the request as s3.c makes it
 * (URL built from bucket, endpoint and key; host, date and payload-hash
 * headers added), and the raw fields as given (KEY as the path).
 * Invariants of every successful signing:
 *  - the canonical request has one line per field and one per distinct
 *    header name (values cannot break lines), starts with METHOD and the
 *    path, and SignedHeaders lists the lowercased names sorted and unique;
 *  - the string to sign carries the SHA-256 of the canonical request, and
 *    the Authorization header is exactly credential, scope, names, signature;
 *  - the signature does not depend on the order of the headers (distinct
 *    names) nor of the query items, and canonicalising the canonical query
 *    gives it back;
 * and of the encoders: sigv4_uri_encode yields only unreserved bytes and
 * %XX that decode to the input; sigv4_amz_date always gives 16 characters
 * of the form YYYYMMDDTHHMMSSZ; the canonical URI of s3_build_url decodes
 * back to the key.
 */
#include <stdbool.h>
#include <string.h>

#include "crypto.h"
#include "fuzz.h"
#include "s3req.h"
#include "sigv4.h"

#define MAX_HDRS 8
#define N_FIELDS (10 + 2 * MAX_HDRS)

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Checks an encoding of s[0..len) and returns how many bytes of enc it used. */
static size_t check_encoding(const char *enc, const char *s, size_t len, bool keep_slash)
{
	size_t j = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			FUZZ_CHECK(enc[j] == (char)c, "byte %zu: '%c' expected", i, c);
			j++;
		} else {
			static const char hex[] = "0123456789ABCDEF";
			FUZZ_CHECK(enc[j] == '%' && enc[j + 1] == hex[c >> 4] &&
				       enc[j + 2] == hex[c & 15],
				   "byte %zu (0x%02x) not encoded as %%XX", i, c);
			j += 3;
		}
	}
	return j;
}

static void check_uri_encode(const char *s)
{
	for (int keep = 0; keep < 2; keep++) {
		struct buf out = BUF_INIT;
		sigv4_uri_encode(&out, s, strlen(s), keep);
		size_t used = check_encoding(out.data, s, strlen(s), keep);
		FUZZ_CHECK(used == out.len, "encoding has %zu extra bytes", out.len - used);
		buf_free(&out);
	}
}

static void check_date(long long t, char date[17])
{
	sigv4_amz_date(t, date);
	FUZZ_CHECK(strlen(date) == 16 && date[8] == 'T' && date[15] == 'Z', "date '%s'", date);
	for (int i = 0; i < 15; i++)
		if (i != 8)
			FUZZ_CHECK(date[i] >= '0' && date[i] <= '9', "date '%s'", date);
	int mon = (date[4] - '0') * 10 + date[5] - '0', day = (date[6] - '0') * 10 + date[7] - '0';
	int hh = (date[9] - '0') * 10 + date[10] - '0', mm = (date[11] - '0') * 10 + date[12] - '0';
	int ss = (date[13] - '0') * 10 + date[14] - '0';
	FUZZ_CHECK(mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && hh < 24 && mm < 60 && ss < 60,
		   "date '%s' from %lld", date, t);
}

static char *lower(const char *s)
{
	char *l = xstrdup(s);
	for (char *p = l; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return l;
}

/* Line i (0-based) of s, into out. */
static void line_of(const char *s, int i, struct buf *out)
{
	buf_reset(out);
	buf_append(out, "", 0);
	for (; i > 0 && s; i--) {
		s = strchr(s, '\n');
		if (s)
			s++;
	}
	if (!s)
		return;
	buf_append(out, s, strcspn(s, "\n"));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks a successful signing of req; returns the number of distinct names. */
static size_t check_result(const struct sigv4_request *req, const struct sigv4_credentials *cred,
			   const char *region, const char *service, const char *date,
			   const struct sigv4_result *r)
{
	char *names[MAX_HDRS + 3];
	size_t n = req->n_headers, distinct = 0;
	struct buf line = BUF_INIT, want = BUF_INIT;
	const char *creq = r->canonical_request.data;

	FUZZ_CHECK(strlen(r->signature) == 64 && strspn(r->signature, "0123456789abcdef") == 64,
		   "signature '%s'", r->signature);
	FUZZ_CHECK(r->canonical_request.len == strlen(creq), "NUL in the canonical request");
	for (size_t i = 0; i < n; i++)
		names[i] = lower(req->headers[i].name);
	qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(names[i], names[i - 1]) != 0) {
			if (distinct)
				buf_putc(&want, ';');
			buf_puts(&want, names[i]);
			distinct++;
		}
	}
	buf_append(&want, "", 0);
	size_t lines = 0;
	for (const char *p = creq; *p; p++)
		lines += *p == '\n';
	FUZZ_CHECK(lines == 5 + distinct, "%zu newlines for %zu distinct headers", lines, distinct);
	line_of(creq, 0, &line);
	FUZZ_CHECK(strcmp(line.data, req->method) == 0, "line 1 '%s'", line.data);
	line_of(creq, 1, &line);
	FUZZ_CHECK(strcmp(line.data, req->path) == 0, "line 2 '%s'", line.data);
	line_of(creq, (int)(4 + distinct), &line);
	FUZZ_CHECK(strcmp(line.data, want.data) == 0, "SignedHeaders '%s', expected '%s'",
		   line.data, want.data);

	unsigned char d[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	crypto_sha256(creq, r->canonical_request.len, d);
	crypto_hex(d, SHA256_LEN, hex);
	struct buf sts = BUF_INIT, auth = BUF_INIT;
	buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", date, date, region,
		   service, hex);
	FUZZ_CHECK(strcmp(sts.data, r->string_to_sign.data) == 0, "string to sign '%s'",
		   r->string_to_sign.data);
	buf_printf(&auth,
		   "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, "
		   "Signature=%s",
		   cred->access_key_id, date, region, service, want.data, r->signature);
	FUZZ_CHECK(strcmp(auth.data, r->authorization.data) == 0, "Authorization '%s'",
		   r->authorization.data);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	buf_free(&line);
	buf_free(&want);
	buf_free(&sts);
	buf_free(&auth);
	return distinct;
}

/* Signs req, checks the result, then the order and idempotence rules. */
static void sign_and_check(struct sigv4_request *req, const struct sigv4_credentials *cred,
			   const char *region, const char *service, const char *date)
{
	struct sigv4_result r, r2;
	if (sigv4_sign(req, cred, region, service, date, &r) != 0) {
		FUZZ_CHECK(r.canonical_request.len == 0 && r.authorization.len == 0 &&
			       !r.signature[0],
			   "a refused signing left a result");
		sigv4_result_free(&r);
		return;
	}
	size_t distinct = check_result(req, cred, region, service, date, &r);

	/* Header order does not matter when every name is distinct. */
	if (distinct == req->n_headers && req->n_headers > 1) {
		struct sigv4_header rev[MAX_HDRS + 3];
		const struct sigv4_header *orig = req->headers;
		for (size_t i = 0; i < req->n_headers; i++)
			rev[i] = orig[req->n_headers - 1 - i];
		req->headers = rev;
		FUZZ_CHECK(sigv4_sign(req, cred, region, service, date, &r2) == 0 &&
			       strcmp(r.signature, r2.signature) == 0,
			   "reversed headers sign differently");
		sigv4_result_free(&r2);
		req->headers = orig;
	}

	/* Query items in reverse order: the same canonical request. */
	const char *orig_query = req->query;
	struct buf rq = BUF_INIT;
	buf_append(&rq, "", 0);
	const char *q = orig_query ? orig_query : "";
	for (const char *end = q + strlen(q);;) {
		const char *amp = end;
		while (amp > q && amp[-1] != '&')
			amp--;
		buf_append(&rq, amp, (size_t)(end - amp));
		if (amp == q)
			break;
		buf_putc(&rq, '&');
		end = amp - 1;
	}
	req->query = rq.data;
	FUZZ_CHECK(sigv4_sign(req, cred, region, service, date, &r2) == 0 &&
		       strcmp(r.canonical_request.data, r2.canonical_request.data) == 0,
		   "reversed query '%s' signs differently", rq.data);
	sigv4_result_free(&r2);

	/* The canonical query is its own canonical form. */
	struct buf cq = BUF_INIT;
	line_of(r.canonical_request.data, 2, &cq);
	req->query = cq.data;
	FUZZ_CHECK(sigv4_sign(req, cred, region, service, date, &r2) == 0 &&
		       strcmp(r.canonical_request.data, r2.canonical_request.data) == 0,
		   "canonical query '%s' is not canonical", cq.data);
	sigv4_result_free(&r2);
	req->query = orig_query;
	buf_free(&rq);
	buf_free(&cq);
	sigv4_result_free(&r);
}

/* The canonical URI of s3_build_url decodes to [base]/[bucket/]key. */
static void check_url(const struct cfg_s3 *cfg, const char *key, const struct buf *url,
		      const struct buf *host, const struct buf *uri)
{
	bool base = false;
	if (*cfg->endpoint) {
		const char *sep = strstr(cfg->endpoint, "://");
		base = strchr(sep ? sep + 3 : cfg->endpoint, '/') != NULL;
	}
	FUZZ_CHECK(strstr(url->data, host->data) && strstr(url->data, uri->data),
		   "url '%s' lacks host or path", url->data);
	if (base)
		return; /* the endpoint's own path is used as the operator wrote it */
	FUZZ_CHECK(uri->data[0] == '/', "canonical URI '%s'", uri->data);
	const char *p = uri->data + 1;
	bool virtual_host =
	    *cfg->endpoint ? cfg->addressing == CFG_ADDR_VIRTUAL : cfg->addressing != CFG_ADDR_PATH;
	if (virtual_host) {
		FUZZ_CHECK(strncmp(host->data, cfg->bucket, strlen(cfg->bucket)) == 0 &&
			       host->data[strlen(cfg->bucket)] == '.',
			   "virtual host '%s' does not start with the bucket", host->data);
	} else {
		p += check_encoding(p, cfg->bucket, strlen(cfg->bucket), false);
		FUZZ_CHECK(*p == '/', "no '/' after the bucket in '%s'", uri->data);
		p++;
	}
	size_t used = check_encoding(p, key, strlen(key), true);
	FUZZ_CHECK(p[used] == '\0', "canonical URI '%s' has more than the key", uri->data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[N_FIELDS], *mem, date[17];
	struct sigv4_header hdrs[MAX_HDRS + 3];
	size_t n = 0;

	fuzz_fields(data, size, f, N_FIELDS, &mem);
	const char *method = f[0], *key = f[1], *query = f[2], *region = f[3], *service = f[4];
	struct sigv4_credentials cred = {f[5], f[6], NULL};
	long long t = strtoll(f[9], NULL, 10);

	check_uri_encode(key);
	check_date(t, date);
	for (size_t i = 0; i < MAX_HDRS; i++) {
		const char *name = f[10 + 2 * i], *value = f[11 + 2 * i];
		if (*name)
			hdrs[n++] = (struct sigv4_header){name, value};
	}

	/* The raw fields as given. */
	struct sigv4_request raw = {method, key, query, hdrs, n, SIGV4_EMPTY_SHA256};
	sign_and_check(&raw, &cred, region, service, date);

	/* As s3.c signs a request: URL from the configuration and the key. */
	struct cfg_s3 cfg = {0};
	cfg.bucket = f[7];
	cfg.region = f[3];
	cfg.endpoint = f[8];
	cfg.addressing = (enum cfg_addressing)((unsigned long long)t % 3);
	struct buf url = BUF_INIT, host = BUF_INIT, uri = BUF_INIT;
	s3_build_url(&cfg, key, &url, &host, &uri);
	check_url(&cfg, key, &url, &host, &uri);
	struct sigv4_header s3h[MAX_HDRS + 3];
	size_t m = 0;
	s3h[m++] = (struct sigv4_header){"host", host.data};
	s3h[m++] = (struct sigv4_header){"x-amz-content-sha256", SIGV4_EMPTY_SHA256};
	s3h[m++] = (struct sigv4_header){"x-amz-date", date};
	for (size_t i = 0; i < n; i++)
		s3h[m++] = hdrs[i];
	struct sigv4_request s3req = {method, uri.data, "", s3h, m, SIGV4_EMPTY_SHA256};
	sign_and_check(&s3req, &cred, region, "s3", date);

	buf_free(&url);
	buf_free(&host);
	buf_free(&uri);
	free(mem);
	return 0;
}
