/*
 * http.c - entity tags and conditional requests (see http.h).
 */
#include "http.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "crypto.h"

void http_unquote_etag(const char *etag, char *out, size_t outlen)
{
	size_t n = strlen(etag);
	if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
		etag++;
		n -= 2;
	}
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, etag, n);
	out[n] = '\0';
}

/* 16 hex digits of sha256(canonical "\n" variant). */
static void params_digest(const char *canonical, const char *variant, char hex16[17])
{
	unsigned char d[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	struct buf b = BUF_INIT;

	buf_printf(&b, "%s\n%s", canonical, variant);
	crypto_sha256(b.data, b.len, d);
	crypto_hex(d, SHA256_LEN, hex);
	memcpy(hex16, hex, 16);
	hex16[16] = '\0';
	buf_free(&b);
}

void http_derived_etag(const char *source_etag, const char *canonical, const char *variant,
		       char out[HTTP_ETAG_LEN])
{
	char bare[161], hex16[17];

	http_unquote_etag(source_etag, bare, sizeof bare);
	/* Only characters an entity tag may hold (RFC 9110 etagc). */
	for (char *p = bare; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == '"' || *p == 0x7F)
			*p = '_';
	params_digest(canonical, variant, hex16);
	snprintf(out, HTTP_ETAG_LEN, "\"%s:%s\"", bare, hex16);
}

bool http_derived_source(const char *inm, const char *canonical, const char *variant, char *src,
			 size_t srclen)
{
	char hex16[17];

	if (!http_single_strong_etag(inm))
		return false;
	size_t n = strlen(inm);
	const char *colon = memrchr(inm, ':', n);
	if (!colon || colon == inm + 1 || (size_t)(inm + n - 1 - (colon + 1)) != 16)
		return false;
	params_digest(canonical, variant, hex16);
	if (memcmp(colon + 1, hex16, 16) != 0)
		return false;
	int len = (int)(colon - (inm + 1));
	if ((size_t)len + 3 > srclen)
		return false;
	snprintf(src, srclen, "\"%.*s\"", len, inm + 1);
	return true;
}

/* The opaque part of a tag: without W/ and quotes. */
static void opaque(const char *tag, size_t len, const char **start, size_t *n)
{
	if (len >= 2 && tag[0] == 'W' && tag[1] == '/')
		tag += 2, len -= 2;
	if (len >= 2 && tag[0] == '"' && tag[len - 1] == '"')
		tag++, len -= 2;
	*start = tag;
	*n = len;
}

bool http_etag_matches(const char *inm, const char *etag)
{
	const char *want;
	size_t want_len;

	if (!inm || !etag || !*etag)
		return false;
	opaque(etag, strlen(etag), &want, &want_len);
	for (const char *p = inm; *p;) {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, ",");
		size_t len = n;
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 1 && p[0] == '*')
			return true;
		const char *got;
		size_t got_len;
		opaque(p, len, &got, &got_len);
		if (len && got_len == want_len && memcmp(got, want, want_len) == 0)
			return true;
		p += n;
	}
	return false;
}

static bool parse_http_date(const char *s, time_t *t)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = s ? strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm) : NULL;
	if (!end || *end)
		return false;
	*t = timegm(&tm);
	return true;
}

bool http_not_modified_since(const char *ims, const char *last_modified, long long now)
{
	time_t since, modified;
	return parse_http_date(ims, &since) && parse_http_date(last_modified, &modified) &&
	       modified <= since && (long long)since <= now;
}

bool http_single_strong_etag(const char *v)
{
	size_t n = v ? strlen(v) : 0;
	if (n < 2 || v[0] != '"' || v[n - 1] != '"')
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (v[i] == '"' || v[i] == ',')
			return false;
	return true;
}

bool http_value_safe(const char *v, size_t max)
{
	size_t n = v ? strlen(v) : 0;
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7E)
			return false;
	return true;
}
