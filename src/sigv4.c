/*
 * sigv4.c - AWS Signature Version 4 header signing, S3 flavour.
 *
 * Four steps, each building on the last: the canonical request (method,
 * path, sorted query, sorted headers, payload hash), the string to sign
 * (algorithm, time, scope, hash of the canonical request), the signing key
 * (an HMAC chain from "AWS4"+secret over date, region, service and
 * "aws4_request") and the Authorization header. The S3 twist: the path is
 * signed exactly as it goes on the wire, never normalised or re-encoded.
 */
#include "sigv4.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

void sigv4_uri_encode(struct buf *out, const char *s, size_t len, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	if (len < (size_t)-1 / 3)
		buf_reserve(out, len * 3);
	buf_append(out, "", 0); /* NUL-terminated even when s is empty */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c) || (keep_slash && c == '/')) {
			buf_putc(out, (char)c);
		} else {
			char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
			buf_append(out, esc, 3);
		}
	}
}

/*
 * Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm): pure
 * arithmetic, so the result depends on neither TZ nor the width of time_t.
 */
static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
	z += 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (long long)yoe + era * 400 + (*m <= 2);
}

void sigv4_amz_date(long long t, char out[17])
{
	/* Clamp to years 0000..9999 so the result is always 16 characters. */
	const long long lo = -62167219200LL, hi = 253402300799LL;
	if (t < lo)
		t = lo;
	if (t > hi)
		t = hi;
	long long days = t / 86400, secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	long long y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	unsigned hh = (unsigned)(secs / 3600), mm = (unsigned)(secs / 60 % 60),
		 ss = (unsigned)(secs % 60);
	/* Every field is range-bound above, so exactly 16 bytes plus NUL. */
	static const char digits[] = "0123456789";
	unsigned yy = (unsigned)y;
	char *p = out;
	*p++ = digits[yy / 1000];
	*p++ = digits[yy / 100 % 10];
	*p++ = digits[yy / 10 % 10];
	*p++ = digits[yy % 10];
	*p++ = digits[m / 10];
	*p++ = digits[m % 10];
	*p++ = digits[d / 10];
	*p++ = digits[d % 10];
	*p++ = 'T';
	*p++ = digits[hh / 10];
	*p++ = digits[hh % 10];
	*p++ = digits[mm / 10];
	*p++ = digits[mm % 10];
	*p++ = digits[ss / 10];
	*p++ = digits[ss % 10];
	*p++ = 'Z';
	*p = '\0';
}

static int two_digits(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/* "YYYYMMDDTHHMMSSZ" and nothing else: the date prefix becomes the scope. */
static bool valid_amz_date(const char *s)
{
	if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
		return false;
	if (two_digits(s) < 0 || two_digits(s + 2) < 0)
		return false;
	int mon = two_digits(s + 4), day = two_digits(s + 6);
	int hh = two_digits(s + 9), mm = two_digits(s + 11), ss = two_digits(s + 13);
	return mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && hh >= 0 && hh <= 23 && mm >= 0 &&
	       mm <= 59 && ss >= 0 && ss <= 60;
}

/* Control characters or spaces would break the line structure of the
 * canonical request, so the one-line fields may not hold them. */
static bool valid_line(const char *s, bool allow_space)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f || (c == ' ' && !allow_space))
			return false;
	}
	return true;
}

/* Scope parts are joined with '/', so they may not contain one. */
static bool valid_scope_part(const char *s)
{
	return s && *s && !strchr(s, '/') && valid_line(s, false);
}

static bool valid_header_name(const char *s)
{
	if (!s || !*s)
		return false;
	return valid_line(s, false) && !strchr(s, ':');
}

static bool valid_request(const struct sigv4_request *req, const struct sigv4_credentials *cred,
			  const char *region, const char *service, const char *amz_date)
{
	if (!req || !cred || !amz_date || !valid_amz_date(amz_date))
		return false;
	if (!valid_scope_part(region) || !valid_scope_part(service))
		return false;
	if (!valid_scope_part(cred->access_key_id) || !cred->secret_access_key ||
	    !*cred->secret_access_key)
		return false;
	if (!req->method || !*req->method || !valid_line(req->method, false))
		return false;
	if (!req->path || req->path[0] != '/' || !valid_line(req->path, false))
		return false;
	if (req->query && !valid_line(req->query, true))
		return false;
	if (!req->payload_hash || !*req->payload_hash || !valid_line(req->payload_hash, false))
		return false;
	if (req->n_headers && !req->headers)
		return false;
	for (size_t i = 0; i < req->n_headers; i++)
		if (!valid_header_name(req->headers[i].name) || !req->headers[i].value)
			return false;
	return true;
}

/*
 * Decodes %XX in s[0..len) and encodes the result again, so a parameter
 * reaches the canonical form whether the caller escaped it or not. A '%'
 * not followed by two hex digits is taken literally. '+' is a literal plus
 * (RFC 3986), not a space as in HTML forms.
 */
static void reencode(struct buf *out, const char *s, size_t len)
{
	struct buf raw = BUF_INIT;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < len && (hi = crypto_hexval(s[i + 1])) >= 0 &&
		    (lo = crypto_hexval(s[i + 2])) >= 0) {
			buf_putc(&raw, (char)(hi << 4 | lo));
			i += 2;
		} else {
			buf_putc(&raw, s[i]);
		}
	}
	sigv4_uri_encode(out, raw.data ? raw.data : "", raw.len, false);
	buf_free(&raw);
}

struct param {
	size_t name_off, value_off; /* into the strings buffer, while it grows */
	const char *name, *value;   /* set once it stops growing */
};

static int param_cmp(const void *a, const void *b)
{
	const struct param *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

/* Appends the canonical query string: encoded pairs sorted by name, then value. */
static void canonical_query(struct buf *out, const char *query)
{
	if (!query || !*query)
		return;
	size_t n = 1;
	for (const char *p = query; *p; p++)
		n += *p == '&';
	struct param *params = xcalloc(n, sizeof *params);
	struct buf strings = BUF_INIT;
	size_t count = 0;
	for (const char *p = query; *p;) {
		size_t seglen = strcspn(p, "&");
		if (seglen) {
			const char *eq = memchr(p, '=', seglen);
			size_t namelen = eq ? (size_t)(eq - p) : seglen;
			params[count].name_off = strings.len;
			reencode(&strings, p, namelen);
			buf_putc(&strings, '\0');
			params[count].value_off = strings.len;
			if (eq)
				reencode(&strings, eq + 1, seglen - namelen - 1);
			buf_putc(&strings, '\0');
			count++;
		}
		p += seglen;
		if (*p == '&')
			p++;
	}
	for (size_t i = 0; i < count; i++) {
		params[i].name = strings.data + params[i].name_off;
		params[i].value = strings.data + params[i].value_off;
	}
	qsort(params, count, sizeof *params, param_cmp);
	for (size_t i = 0; i < count; i++) {
		if (i)
			buf_putc(out, '&');
		buf_printf(out, "%s=%s", params[i].name, params[i].value);
	}
	buf_free(&strings);
	free(params);
}

/*
 * Trimall: drops leading and trailing whitespace and folds every inner run
 * to one space. CR, LF and tab count as whitespace so that an obsolete
 * multi-line (folded) header value becomes one line, as AWS expects.
 */
static void append_trimmed(struct buf *out, const char *s)
{
	bool pending = false, started = false;
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
			pending = started;
			continue;
		}
		if (pending)
			buf_putc(out, ' ');
		buf_putc(out, *s);
		pending = false;
		started = true;
	}
}

struct hdr {
	size_t name_off;
	const char *name; /* lowercased */
	size_t index;     /* position in the request: repeated names keep it */
};

static int hdr_cmp(const void *a, const void *b)
{
	const struct hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Appends the canonical header lines to creq and the ';'-list to signed_headers. */
static void canonical_headers(struct buf *creq, struct buf *signed_headers,
			      const struct sigv4_request *req)
{
	size_t n = req->n_headers;
	struct hdr *h = xcalloc(n, sizeof *h);
	struct buf names = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		h[i].name_off = names.len;
		h[i].index = i;
		for (const char *p = req->headers[i].name; *p; p++)
			buf_putc(&names, (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p);
		buf_putc(&names, '\0');
	}
	for (size_t i = 0; i < n; i++)
		h[i].name = names.data + h[i].name_off;
	qsort(h, n, sizeof *h, hdr_cmp);
	for (size_t i = 0; i < n; i++) {
		bool same = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;
		if (same) {
			buf_putc(creq, ',');
		} else {
			if (i > 0) {
				buf_putc(creq, '\n');
				buf_putc(signed_headers, ';');
			}
			buf_printf(creq, "%s:", h[i].name);
			buf_puts(signed_headers, h[i].name);
		}
		append_trimmed(creq, req->headers[h[i].index].value);
	}
	if (n)
		buf_putc(creq, '\n');
	buf_free(&names);
	free(h);
}

static void hmac_str(const unsigned char *key, size_t keylen, const char *msg,
		     unsigned char out[SHA256_LEN])
{
	crypto_hmac_sha256(key, keylen, msg, strlen(msg), out);
}

int sigv4_sign(const struct sigv4_request *req, const struct sigv4_credentials *cred,
	       const char *region, const char *service, const char *amz_date,
	       struct sigv4_result *result)
{
	if (!result)
		return -1;
	memset(result, 0, sizeof *result);
	if (!valid_request(req, cred, region, service, amz_date))
		return -1;

	struct buf *creq = &result->canonical_request;
	struct buf signed_headers = BUF_INIT;
	buf_printf(creq, "%s\n%s\n", req->method, req->path);
	canonical_query(creq, req->query);
	buf_putc(creq, '\n');
	canonical_headers(creq, &signed_headers, req);
	buf_printf(creq, "\n%s\n%s", signed_headers.data ? signed_headers.data : "",
		   req->payload_hash);

	unsigned char digest[SHA256_LEN];
	char creq_hex[SHA256_HEX_LEN + 1];
	crypto_sha256(creq->data, creq->len, digest);
	crypto_hex(digest, SHA256_LEN, creq_hex);

	char date[9];
	memcpy(date, amz_date, 8);
	date[8] = '\0';
	struct buf scope = BUF_INIT;
	buf_printf(&scope, "%s/%s/%s/aws4_request", date, region, service);
	buf_printf(&result->string_to_sign, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope.data,
		   creq_hex);

	/* Derived keys are as good as the secret for a day: wipe them after use. */
	struct buf secret = BUF_INIT;
	unsigned char k1[SHA256_LEN], k2[SHA256_LEN], sig[SHA256_LEN];
	buf_printf(&secret, "AWS4%s", cred->secret_access_key);
	hmac_str((const unsigned char *)secret.data, secret.len, date, k1);
	hmac_str(k1, SHA256_LEN, region, k2);
	hmac_str(k2, SHA256_LEN, service, k1);
	hmac_str(k1, SHA256_LEN, "aws4_request", k2);
	crypto_hmac_sha256(k2, SHA256_LEN, result->string_to_sign.data, result->string_to_sign.len,
			   sig);
	crypto_hex(sig, SHA256_LEN, result->signature);
	explicit_bzero(secret.data, secret.len);
	explicit_bzero(k1, sizeof k1);
	explicit_bzero(k2, sizeof k2);

	buf_printf(&result->authorization,
		   "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		   cred->access_key_id, scope.data, signed_headers.data ? signed_headers.data : "",
		   result->signature);
	buf_free(&secret);
	buf_free(&scope);
	buf_free(&signed_headers);
	return 0;
}

void sigv4_result_free(struct sigv4_result *result)
{
	if (!result)
		return;
	buf_free(&result->canonical_request);
	buf_free(&result->string_to_sign);
	buf_free(&result->authorization);
	memset(result->signature, 0, sizeof result->signature);
}
