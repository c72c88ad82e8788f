/*
 * params.c - the query string into struct params, and back out as the
 * canonical form (README "Transformations").
 *
 * The query is walked once, item by item. Each name and value is
 * percent-decoded into a small fixed buffer: every valid value fits in a
 * few bytes, so anything longer is simply a bad value and no allocation is
 * needed. Names and values are exact and lowercase; '+' is not a space.
 *
 * Choices the spec leaves open:
 *  - fm=jpg is accepted as an alias of fm=jpeg (both canonicalise to
 *    "fm-jpeg"), since ".jpg" is what most people type.
 *  - rotate accepts only "0", "90", "180", "270" as written: no leading
 *    zeros, so there is one spelling per angle.
 *  - w, h and q take at most 9 digits, leading zeros included; that keeps
 *    the arithmetic far from overflow and is plenty for any real size.
 *  - In Accept, a malformed q makes that media range not acceptable, and an
 *    image/webp range with q=0 refuses WebP even if another range allows it.
 */
#include "params.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"

/* Longer than any valid value ("inside", 9 digits): longer means bad. */
#define VALUE_MAX 16
/* At most this many bytes of a name are echoed in an error message. */
#define ECHO_MAX 32

enum pname { P_W, P_H, P_FIT, P_ROTATE, P_Q, P_FM, P_COUNT };

static const char *const pnames[P_COUNT] = {"w", "h", "fit", "rotate", "q", "fm"};

/*
 * Percent-decodes s[0..len) into out (capacity cap), storing at most cap
 * bytes but counting them all in *outlen. Returns false on a '%' not
 * followed by two hex digits. A decoded "%00" is kept as a byte: callers
 * compare with lengths, never as C strings.
 */
static bool pct_decode(const char *s, size_t len, char *out, size_t cap, size_t *outlen)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			int hi, lo;
			if (len - i < 3 || (hi = crypto_hexval(s[i + 1])) < 0 ||
			    (lo = crypto_hexval(s[i + 2])) < 0)
				return false;
			c = hi << 4 | lo;
			i += 2;
		}
		if (n < cap)
			out[n] = (char)c;
		n++;
	}
	*outlen = n;
	return true;
}

/*
 * A name as it may appear in a message that ends up in JSON and in logs:
 * printable ASCII only, quotes and backslashes replaced too, at most
 * ECHO_MAX characters.
 */
static void echo_name(const char *name, size_t len, char out[ECHO_MAX + 1])
{
	size_t n = len < ECHO_MAX ? len : ECHO_MAX;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		out[i] =
		    c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '\'' ? (char)c : '?';
	}
	out[n] = '\0';
}

static bool equals(const char *s, size_t len, const char *lit)
{
	return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* Digits only, 1 to 9 of them, value in 1..max. */
static bool parse_number(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	if (len == 0 || len > 9)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < 1 || v > max)
		return false;
	*out = v;
	return true;
}

/* Sets p's field for parameter n from the decoded value; false if bad. */
static bool set_value(struct params *p, enum pname n, const char *v, size_t len,
		      const struct params_limits *lim, char *err, size_t errlen)
{
	unsigned long num;

	switch (n) {
	case P_W:
	case P_H:
		if (!parse_number(v, len, lim->max_dimension, &num)) {
			snprintf(err, errlen, "Parameter '%s' must be a whole number from 1 to %lu",
				 pnames[n], lim->max_dimension);
			return false;
		}
		if (n == P_W)
			p->w = num;
		else
			p->h = num;
		return true;
	case P_Q:
		if (!parse_number(v, len, 100, &num)) {
			snprintf(err, errlen, "Parameter 'q' must be a whole number from 1 to 100");
			return false;
		}
		p->q = (int)num;
		return true;
	case P_FIT:
		if (equals(v, len, "inside"))
			p->fit = FIT_INSIDE;
		else if (equals(v, len, "cover"))
			p->fit = FIT_COVER;
		else if (equals(v, len, "fill"))
			p->fit = FIT_FILL;
		else {
			snprintf(err, errlen, "Parameter 'fit' must be one of inside, cover, fill");
			return false;
		}
		return true;
	case P_ROTATE:
		if (equals(v, len, "0"))
			p->rotate = 0;
		else if (equals(v, len, "90"))
			p->rotate = 90;
		else if (equals(v, len, "180"))
			p->rotate = 180;
		else if (equals(v, len, "270"))
			p->rotate = 270;
		else {
			snprintf(err, errlen, "Parameter 'rotate' must be one of 0, 90, 180, 270");
			return false;
		}
		return true;
	case P_FM:
		if (equals(v, len, "jpeg") || equals(v, len, "jpg"))
			p->fm = FM_JPEG;
		else if (equals(v, len, "png"))
			p->fm = FM_PNG;
		else if (equals(v, len, "webp"))
			p->fm = FM_WEBP;
		else if (equals(v, len, "auto"))
			p->fm = FM_AUTO;
		else {
			snprintf(err, errlen,
				 "Parameter 'fm' must be one of jpeg, png, webp, auto");
			return false;
		}
		return true;
	case P_COUNT:
		break;
	}
	return false;
}

/* One "name[=value]" item, s[0..len), len > 0. */
static bool parse_item(const char *s, size_t len, const struct params_limits *lim, struct params *p,
		       bool seen[P_COUNT], char *err, size_t errlen)
{
	const char *eq = memchr(s, '=', len);
	size_t rawname = eq ? (size_t)(eq - s) : len;
	char name[ECHO_MAX], value[VALUE_MAX], shown[ECHO_MAX + 1];
	size_t namelen, valuelen;
	int n;

	if (!pct_decode(s, rawname, name, sizeof name, &namelen)) {
		echo_name(s, rawname, shown);
		snprintf(err, errlen, "Malformed percent-encoding in parameter name '%s'", shown);
		return false;
	}
	for (n = 0; n < P_COUNT; n++)
		if (equals(name, namelen, pnames[n]))
			break;
	if (n == P_COUNT) {
		echo_name(name, namelen, shown);
		snprintf(err, errlen, "Unknown parameter '%s'", shown);
		return false;
	}
	if (!eq || eq + 1 == s + len) {
		snprintf(err, errlen, "Parameter '%s' needs a value", pnames[n]);
		return false;
	}
	if (seen[n]) {
		snprintf(err, errlen, "Parameter '%s' given more than once", pnames[n]);
		return false;
	}
	seen[n] = true;
	if (!pct_decode(eq + 1, len - rawname - 1, value, sizeof value, &valuelen)) {
		snprintf(err, errlen, "Malformed percent-encoding in parameter '%s'", pnames[n]);
		return false;
	}
	/* Too long for the buffer: make it fail validation with the usual message. */
	if (valuelen > sizeof value)
		valuelen = sizeof value;
	return set_value(p, (enum pname)n, value, valuelen, lim, err, errlen);
}

static const struct params defaults = {0, 0, FIT_INSIDE, 0, 0, FM_SOURCE, false};

bool params_parse(const char *query, const struct params_limits *lim, struct params *p, char *err,
		  size_t errlen)
{
	bool seen[P_COUNT] = {false};
	char scratch[1];

	/* snprintf with a NULL buffer needs a zero size; keep calls simple below. */
	if (!err || errlen == 0) {
		err = scratch;
		errlen = sizeof scratch;
	}
	err[0] = '\0';
	*p = defaults;
	if (!query || !*query)
		return true;
	for (const char *s = query;;) {
		const char *amp = strchr(s, '&');
		size_t len = amp ? (size_t)(amp - s) : strlen(s);
		if (len == 0) {
			snprintf(err, errlen, "Empty parameter");
			*p = defaults;
			return false;
		}
		if (!parse_item(s, len, lim, p, seen, err, errlen)) {
			*p = defaults;
			return false;
		}
		p->any = true;
		if (!amp)
			break;
		s = amp + 1;
	}
	return true;
}

bool params_is_identity(const struct params *p, const struct params_limits *lim)
{
	return p->w == 0 && p->h == 0 && p->rotate == 0 && p->fm == FM_SOURCE &&
	       (p->q == 0 || p->q == lim->default_quality);
}

static void put_item(struct buf *out, bool *first, const char *name, const char *value)
{
	buf_printf(out, "%s%s-%s", *first ? "" : "_", name, value);
	*first = false;
}

void params_canonical(const struct params *p, const struct params_limits *lim, struct buf *out)
{
	static const char *const fits[] = {"inside", "cover", "fill"};
	static const char *const fms[] = {"", "jpeg", "png", "webp", "auto"};
	char num[24];
	bool first = true;

	/* Leave a valid, NUL-terminated (possibly empty) string even if nothing is added. */
	buf_append(out, "", 0);
	if (p->w) {
		snprintf(num, sizeof num, "%lu", p->w);
		put_item(out, &first, "w", num);
	}
	if (p->h) {
		snprintf(num, sizeof num, "%lu", p->h);
		put_item(out, &first, "h", num);
	}
	/*
	 * With one dimension or none, every fit keeps the aspect ratio inside
	 * the box, so the results are identical and fit must not split the cache.
	 */
	if (p->w && p->h && p->fit != FIT_INSIDE && (unsigned)p->fit < 3)
		put_item(out, &first, "fit", fits[p->fit]);
	if (p->rotate) {
		snprintf(num, sizeof num, "%d", p->rotate);
		put_item(out, &first, "rotate", num);
	}
	/* PNG is lossless: a quality would only split the cache. */
	if (p->q && p->q != lim->default_quality && p->fm != FM_PNG) {
		snprintf(num, sizeof num, "%d", p->q);
		put_item(out, &first, "q", num);
	}
	if (p->fm != FM_SOURCE && (unsigned)p->fm < 5)
		put_item(out, &first, "fm", fms[p->fm]);
}

/* Accept header parsing (RFC 9110 §12.5.1, §5.6). */

static const char *skip_ows(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Past a quoted-string starting at s ('"'); at the NUL if unterminated. */
static const char *skip_quoted(const char *s)
{
	for (s++; *s && *s != '"'; s++)
		if (*s == '\\' && s[1])
			s++;
	return *s ? s + 1 : s;
}

/*
 * To the next ',' that separates media ranges (or the NUL), stepping over
 * quoted strings so a comma inside one does not start a range.
 */
static const char *skip_range(const char *s)
{
	while (*s && *s != ',')
		s = *s == '"' ? skip_quoted(s) : s + 1;
	return s;
}

/*
 * qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ).
 * Returns 1 for q > 0, 0 for q = 0, -1 when malformed.
 */
static int qvalue_positive(const char *s, size_t len)
{
	size_t i;
	int positive;

	if (len == 0 || (s[0] != '0' && s[0] != '1'))
		return -1;
	positive = s[0] == '1';
	if (len == 1)
		return positive;
	if (s[1] != '.' || len > 5)
		return -1;
	for (i = 2; i < len; i++) {
		if (s[i] < '0' || s[i] > (positive ? '0' : '9'))
			return -1;
		if (s[i] != '0')
			positive = 1;
	}
	return positive;
}

static bool is_delim(char c)
{
	return c == '\0' || c == ',' || c == ';' || c == ' ' || c == '\t';
}

bool params_accepts_webp(const char *accept)
{
	bool allowed = false, refused = false;
	const char *s = accept;

	if (!s)
		return false;
	while (*s) {
		const char *type, *name, *val;
		size_t typelen, namelen, vallen;
		int weight = 1; /* 1: acceptable, 0: q=0, -1: malformed */

		s = skip_ows(s);
		if (*s == ',') {
			s++;
			continue;
		}
		if (!*s)
			break;
		type = s;
		while (!is_delim(*s))
			s++;
		typelen = (size_t)(s - type);
		s = skip_ows(s);
		while (*s == ';') {
			s = skip_ows(s + 1);
			name = s;
			while (!is_delim(*s) && *s != '=')
				s++;
			namelen = (size_t)(s - name);
			s = skip_ows(s);
			if (*s != '=') {
				/* "type;" or "type; ;" is harmless; a bare name is not a parameter.
				 */
				if (namelen)
					weight = -1;
				continue;
			}
			s = skip_ows(s + 1);
			val = s;
			if (*s == '"')
				s = skip_quoted(s);
			else
				while (!is_delim(*s))
					s++;
			vallen = (size_t)(s - val);
			s = skip_ows(s);
			if (namelen == 1 && (*name == 'q' || *name == 'Q') && weight != -1) {
				int q = qvalue_positive(val, vallen);
				if (q < 1)
					weight = q;
			}
		}
		if (*s != ',' && *s) {
			/* Trailing junk after the range: the whole range is malformed. */
			weight = -1;
			s = skip_range(s);
		}
		if (typelen == 10 && strncasecmp(type, "image/webp", 10) == 0) {
			if (weight == 1)
				allowed = true;
			else if (weight == 0)
				refused = true;
		}
	}
	return allowed && !refused;
}
