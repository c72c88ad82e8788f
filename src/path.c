/*
 * path.c - image path validation (the rules: path.h, README "Paths").
 *
 * The path is checked byte by byte in one pass: UTF-8 validity (no
 * overlongs, surrogates or code points past U+10FFFF), no control
 * characters (C0, DEL and C1), then segment by segment: no empty segment
 * (which covers "//" and a trailing '/'), no "." or "..".
 */
#include "path.h"

#include <string.h>

size_t path_utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	unsigned int cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

static enum status check_chars(const unsigned char *s, size_t len, const char **why)
{
	for (size_t i = 0; i < len;) {
		size_t n = path_utf8_len(s + i, len - i);
		if (n == 0) {
			*why = "Path is not valid UTF-8";
			return ST_BAD_REQUEST;
		}
		unsigned int c = s[i];
		/* C1 controls U+0080..U+009F are encoded as C2 80..C2 9F. */
		if (c < 0x20 || c == 0x7F || (n == 2 && c == 0xC2 && s[i + 1] < 0xA0)) {
			*why = "Path contains a control character";
			return ST_BAD_REQUEST;
		}
		i += n;
	}
	return ST_OK;
}

static enum status check_segments(const char *p, size_t len, const char **why)
{
	const char *end = p + len;
	while (p < end) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		const char *seg_end = slash ? slash : end;
		size_t n = (size_t)(seg_end - p);
		if (n == 0) {
			*why = "Path has an empty segment";
			return ST_BAD_REQUEST;
		}
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			*why = "Path has a '.' or '..' segment";
			return ST_BAD_REQUEST;
		}
		if (!slash)
			break;
		p = slash + 1;
		if (p == end) {
			*why = "Path has an empty segment";
			return ST_BAD_REQUEST;
		}
	}
	return ST_OK;
}

enum status path_to_key(const char *path_info, const char *prefix, struct buf *key,
			const char **why)
{
	if (!path_info || path_info[0] != '/' || path_info[1] == '\0') {
		*why = "Empty path";
		return ST_BAD_REQUEST;
	}
	const char *rel = path_info + 1;
	size_t len = strlen(rel), plen = strlen(prefix);
	if (len + plen > PATH_MAX_KEY) {
		*why = "Path too long";
		return ST_BAD_REQUEST;
	}
	enum status st = check_chars((const unsigned char *)rel, len, why);
	if (st == ST_OK)
		st = check_segments(rel, len, why);
	if (st != ST_OK)
		return st;
	buf_reset(key);
	buf_append(key, prefix, plen);
	buf_append(key, rel, len);
	return ST_OK;
}
