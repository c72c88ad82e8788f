/*
 * json.c - the strict JSON reader of json.h.
 *
 * A cursor walks the bytes once. Every read goes through peek()/more(),
 * which check the end first, so malformed input can only make a function
 * return -1, never step outside [p, end). Values that are not wanted are
 * validated and skipped by a recursive descent bounded by JSON_MAX_DEPTH.
 * The only allocation is the buffer for member names, reused across them.
 */
#include "json.h"

#include "crypto.h"
#include "path.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct cursor {
	const unsigned char *p;
	const unsigned char *end;
};

static bool more(const struct cursor *c)
{
	return c->p < c->end;
}

/* The next byte, or -1 at the end. */
static int peek(const struct cursor *c)
{
	return more(c) ? *c->p : -1;
}

static void skip_ws(struct cursor *c)
{
	while (more(c) && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static bool eat(struct cursor *c, int ch)
{
	if (peek(c) != ch)
		return false;
	c->p++;
	return true;
}

/* Reads the XXXX of \uXXXX. */
static long read_hex4(struct cursor *c)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int h = crypto_hexval(peek(c));
		if (h < 0)
			return -1;
		c->p++;
		v = v * 16 + h;
	}
	return v;
}

static void put_utf8(struct buf *out, uint32_t cp)
{
	char s[4];
	size_t n;
	if (cp < 0x80) {
		s[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (char)(0xc0 | cp >> 6);
		s[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = (char)(0xe0 | cp >> 12);
		s[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		s[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		s[0] = (char)(0xf0 | cp >> 18);
		s[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		s[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		s[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(out, s, n);
}

/*
 * Length of the well-formed UTF-8 sequence at c->p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0.
 */
static size_t utf8_len(const struct cursor *c)
{
	const unsigned char *s = c->p;
	size_t avail = (size_t)(c->end - s);
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (avail < n)
		return 0;
	/* The second byte's range is what rules out overlongs and surrogates. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * Reads a string whose opening quote is at the cursor, unescaping into out
 * when out is not NULL (appending). Returns 0 or -1.
 */
static int read_string(struct cursor *c, struct buf *out)
{
	if (!eat(c, '"'))
		return -1;
	for (;;) {
		int ch = peek(c);
		if (ch < 0x20) /* the end (-1), or a raw control character */
			return -1;
		if (ch == '"') {
			c->p++;
			return 0;
		}
		if (ch != '\\') {
			size_t n = utf8_len(c);
			if (!n)
				return -1;
			if (out)
				buf_append(out, c->p, n);
			c->p += n;
			continue;
		}
		c->p++;
		ch = peek(c);
		if (ch < 0)
			return -1;
		c->p++;
		char simple;
		switch (ch) {
		case '"':
			simple = '"';
			break;
		case '\\':
			simple = '\\';
			break;
		case '/':
			simple = '/';
			break;
		case 'b':
			simple = '\b';
			break;
		case 'f':
			simple = '\f';
			break;
		case 'n':
			simple = '\n';
			break;
		case 'r':
			simple = '\r';
			break;
		case 't':
			simple = '\t';
			break;
		case 'u':
			simple = 0;
			break;
		default:
			return -1;
		}
		if (ch != 'u') {
			if (out)
				buf_putc(out, simple);
			continue;
		}
		long cp = read_hex4(c);
		if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff))
			return -1;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			/* A high surrogate must be followed by an escaped low one. */
			if (!eat(c, '\\') || !eat(c, 'u'))
				return -1;
			long low = read_hex4(c);
			if (low < 0xdc00 || low > 0xdfff)
				return -1;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
		}
		if (out)
			put_utf8(out, (uint32_t)cp);
	}
}

static bool is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int skip_number(struct cursor *c)
{
	eat(c, '-');
	if (eat(c, '0')) {
		/* no leading zeros */
	} else if (is_digit(peek(c))) {
		while (is_digit(peek(c)))
			c->p++;
	} else {
		return -1;
	}
	if (eat(c, '.')) {
		if (!is_digit(peek(c)))
			return -1;
		while (is_digit(peek(c)))
			c->p++;
	}
	if (eat(c, 'e') || eat(c, 'E')) {
		if (!eat(c, '+'))
			eat(c, '-');
		if (!is_digit(peek(c)))
			return -1;
		while (is_digit(peek(c)))
			c->p++;
	}
	return 0;
}

static int skip_literal(struct cursor *c, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return -1;
	c->p += n;
	return 0;
}

static int skip_value(struct cursor *c, int depth);

/* Skips the elements of an array or members of an object after its opener. */
static int skip_container(struct cursor *c, int close, int depth)
{
	if (depth > JSON_MAX_DEPTH)
		return -1;
	skip_ws(c);
	if (eat(c, close))
		return 0;
	for (;;) {
		if (close == '}') {
			if (read_string(c, NULL) < 0)
				return -1;
			skip_ws(c);
			if (!eat(c, ':'))
				return -1;
			skip_ws(c);
		}
		if (skip_value(c, depth) < 0)
			return -1;
		skip_ws(c);
		if (eat(c, close))
			return 0;
		if (!eat(c, ','))
			return -1;
		skip_ws(c);
	}
}

/* depth: that of the container holding this value. */
static int skip_value(struct cursor *c, int depth)
{
	switch (peek(c)) {
	case '"':
		return read_string(c, NULL);
	case '{':
		c->p++;
		return skip_container(c, '}', depth + 1);
	case '[':
		c->p++;
		return skip_container(c, ']', depth + 1);
	case 't':
		return skip_literal(c, "true");
	case 'f':
		return skip_literal(c, "false");
	case 'n':
		return skip_literal(c, "null");
	default:
		return skip_number(c);
	}
}

int json_get_string(const char *json, size_t len, const char *field, struct buf *out)
{
	struct cursor c = {(const unsigned char *)json, NULL};
	struct buf name = BUF_INIT;
	size_t flen = strlen(field);
	bool seen = false, is_string = false;
	int rc = JSON_MALFORMED;

	buf_reset(out);
	if (!json)
		goto done;
	/* Only now: NULL + 0 is undefined behaviour (UBSan: pointer-overflow). */
	c.end = c.p + len;
	skip_ws(&c);
	if (!eat(&c, '{'))
		goto done;
	skip_ws(&c);
	if (!eat(&c, '}')) {
		for (;;) {
			buf_reset(&name);
			if (read_string(&c, &name) < 0)
				goto done;
			skip_ws(&c);
			if (!eat(&c, ':'))
				goto done;
			skip_ws(&c);
			bool wanted =
			    name.len == flen && (!flen || memcmp(name.data, field, flen) == 0);
			if (wanted) {
				/* Two values for one name: which did the sender mean? */
				if (seen)
					goto done;
				seen = true;
				is_string = peek(&c) == '"';
			}
			if (wanted && is_string) {
				if (read_string(&c, out) < 0)
					goto done;
			} else if (skip_value(&c, 1) < 0) {
				goto done;
			}
			skip_ws(&c);
			if (eat(&c, '}'))
				break;
			if (!eat(&c, ','))
				goto done;
			skip_ws(&c);
		}
	}
	skip_ws(&c);
	if (more(&c))
		goto done;
	rc = seen && is_string ? JSON_OK : JSON_NOT_FOUND;
	if (rc == JSON_OK)
		buf_append(out, "", 0); /* an empty value is still a C string */
done:
	buf_free(&name);
	if (rc != JSON_OK)
		buf_reset(out);
	return rc;
}

void json_append_string(struct buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);

	buf_putc(out, '"');
	while (left) {
		size_t n = path_utf8_len(p, left);
		if (n == 0) {
			buf_puts(out, "\\ufffd");
			n = 1;
		} else if (*p == '"' || *p == '\\') {
			buf_printf(out, "\\%c", *p);
		} else if (*p < 0x20) {
			buf_printf(out, "\\u%04x", *p);
		} else {
			buf_append(out, p, n);
		}
		p += n;
		left -= n;
	}
	buf_putc(out, '"');
}
