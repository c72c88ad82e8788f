/*
 * s3req.c - the pure parts of talking to S3: where an object lives (URL,
 * Host header and the canonical URI that SigV4 signs, for virtual-hosted
 * and path-style addressing), what a response header line says, and what
 * an XML error body says.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "s3req.h"
#include "sigv4.h"

void s3_build_url(const struct cfg_s3 *cfg, const char *key, struct buf *url, struct buf *host,
		  struct buf *canonical_uri)
{
	const char *scheme = "https://", *hostport, *base = "";
	size_t hostlen, baselen = 0;
	struct buf aws_host = BUF_INIT;
	bool virtual_host;

	if (*cfg->endpoint) {
		const char *sep = strstr(cfg->endpoint, "://");
		scheme = strncmp(cfg->endpoint, "http://", 7) == 0 ? "http://" : "https://";
		hostport = sep ? sep + 3 : cfg->endpoint;
		const char *slash = strchr(hostport, '/');
		hostlen = slash ? (size_t)(slash - hostport) : strlen(hostport);
		if (slash) {
			base = slash;
			baselen = strlen(slash);
		}
		virtual_host = cfg->addressing == CFG_ADDR_VIRTUAL;
	} else {
		buf_printf(&aws_host, "s3.%s.amazonaws.com", cfg->region);
		hostport = aws_host.data;
		hostlen = aws_host.len;
		virtual_host = cfg->addressing != CFG_ADDR_PATH;
	}

	buf_reset(host);
	if (virtual_host)
		buf_printf(host, "%s.", cfg->bucket);
	buf_append(host, hostport, hostlen);

	buf_reset(canonical_uri);
	buf_append(canonical_uri, base, baselen);
	if (!virtual_host) {
		buf_putc(canonical_uri, '/');
		sigv4_uri_encode(canonical_uri, cfg->bucket, strlen(cfg->bucket), false);
	}
	buf_putc(canonical_uri, '/');
	sigv4_uri_encode(canonical_uri, key, strlen(key), true);

	buf_reset(url);
	buf_printf(url, "%s%s%s", scheme, host->data, canonical_uri->data);
	buf_free(&aws_host);
}

void s3_error_code(const char *body, size_t len, char *code, size_t codelen)
{
	static const char open[] = "<Code>", close[] = "</Code>";
	const char *start = body ? memmem(body, len, open, sizeof open - 1) : NULL;

	code[0] = '\0';
	if (!start)
		return;
	start += sizeof open - 1;
	const char *end = memmem(start, len - (size_t)(start - body), close, sizeof close - 1);
	if (!end)
		return;
	size_t n = (size_t)(end - start);
	if (n >= codelen)
		n = codelen - 1;
	/* Keep it printable: it goes into the log. */
	for (size_t i = 0; i < n; i++)
		code[i] = (start[i] > 0x20 && start[i] < 0x7F) ? start[i] : '?';
	code[n] = '\0';
}

/*
 * Trims a header value: blanks before, blanks and the line end after. The
 * value is not NUL-terminated; *len shrinks and the start is returned.
 */
static const char *trim(const char *v, size_t *len)
{
	while (*len && (*v == ' ' || *v == '\t'))
		v++, (*len)--;
	while (*len && (v[*len - 1] == '\r' || v[*len - 1] == '\n' || v[*len - 1] == ' ' ||
			v[*len - 1] == '\t'))
		(*len)--;
	return v;
}

/*
 * Copies a header value, trimmed, into dst (truncating, always terminated).
 * A value holding a control character (a NUL, a bare CR, ...) is dropped
 * as if absent: these values are repeated in imgsvc's own response headers,
 * where such a byte would cut the value short or split the header.
 */
static void copy_value(char *dst, size_t dstlen, const char *v, size_t len)
{
	v = trim(v, &len);
	if (len >= dstlen) {
		/* Cut, then trim again: a cut can end on a blank. */
		len = dstlen - 1;
		v = trim(v, &len);
	}
	for (size_t i = 0; i < len; i++) {
		if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7F) {
			len = 0;
			break;
		}
	}
	memcpy(dst, v, len);
	dst[len] = '\0';
}

/* Content-Length: digits only, no overflow; -1 for anything else. */
static long long parse_length(const char *v, size_t len)
{
	long long n = 0;

	v = trim(v, &len);
	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9' || n > (LLONG_MAX - (v[i] - '0')) / 10)
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	return n;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value,
		      size_t *vlen)
{
	size_t n = strlen(name);
	if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
		return false;
	*value = line + n + 1;
	*vlen = len - n - 1;
	return true;
}

/*
 * The code of "HTTP/1.1 200 OK": three digits after the first space, or 0.
 * The line is not NUL-terminated, so nothing may read past len.
 */
static long status_code(const char *line, size_t len)
{
	const char *sp = memchr(line, ' ', len), *end = line + len;
	long code = 0;
	int digits = 0;

	if (!sp)
		return 0;
	for (const char *p = sp + 1; p < end && *p >= '0' && *p <= '9'; p++) {
		if (++digits > 3)
			return 0;
		code = code * 10 + (*p - '0');
	}
	return digits == 3 ? code : 0;
}

void s3_parse_header(const char *line, size_t len, long *status, struct s3_object *obj)
{
	const char *v;
	size_t vlen;

	if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue, say): start over. */
		*status = status_code(line, len);
		memset(obj, 0, sizeof *obj);
		obj->content_length = -1;
	} else if (header_is(line, len, "content-length", &v, &vlen)) {
		obj->content_length = parse_length(v, vlen);
	} else if (header_is(line, len, "content-type", &v, &vlen)) {
		copy_value(obj->content_type, sizeof obj->content_type, v, vlen);
	} else if (header_is(line, len, "etag", &v, &vlen)) {
		copy_value(obj->etag, sizeof obj->etag, v, vlen);
	} else if (header_is(line, len, "last-modified", &v, &vlen)) {
		copy_value(obj->last_modified, sizeof obj->last_modified, v, vlen);
	} else if (header_is(line, len, "x-amz-meta-source-etag", &v, &vlen)) {
		copy_value(obj->source_etag, sizeof obj->source_etag, v, vlen);
	} else if (header_is(line, len, "x-amz-meta-imgsvc-variant", &v, &vlen)) {
		copy_value(obj->variant, sizeof obj->variant, v, vlen);
	} else if (header_is(line, len, "x-amz-meta-source-last-modified", &v, &vlen)) {
		copy_value(obj->source_last_modified, sizeof obj->source_last_modified, v, vlen);
	}
}
