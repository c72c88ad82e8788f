/*
 * fuzz_params.c - libFuzzer target: the request's path, query string and
 * Accept header (src/path.c, src/params.c).
 *
 * Input: QUERY \0 PATH \0 ACCEPT \0 "WIDTH HEIGHT". Invariants checked:
 *  - a query that parses has values within their ranges, and its canonical
 *    form uses only [a-z0-9_-], is empty exactly when the request is the
 *    original, and read back as a query string ("w-400_fm-webp" ->
 *    "w=400&fm=webp") parses to the same canonical form; percent-encoding
 *    every byte of a query without '%' changes nothing;
 *  - a query that fails leaves the defaults and a message that is safe in
 *    JSON and logs (printable ASCII, no '"' or '\');
 *  - path_to_key agrees with an independent implementation of the README's
 *    path rules (valid UTF-8, no control character, no empty, "." or ".."
 *    segment, key at most 1024 bytes), an accepted key is the prefix plus
 *    the path, and checking that key's path again accepts it unchanged;
 *  - path_utf8_len agrees with the Unicode well-formed byte sequence table;
 *  - params_accepts_webp only says yes when "image/webp" is in the header;
 *  - the output geometry (geom_plan) for the parsed parameters and a source
 *    of WIDTH x HEIGHT: fill gives exactly w x h; otherwise the scaled size
 *    is never more than the source, at least 1x1, and inside the box (or,
 *    for cover, covering it where the source allows), and the crop is
 *    within both the scaled size and the box.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "geom.h"
#include "params.h"
#include "path.h"

#define PREFIX "original-images/"

static const struct params_limits lim = {4000, 82};

/* Well-formed UTF-8 (Unicode 15, table 3-7): length of the sequence at s, or 0. */
static size_t ref_utf8(const unsigned char *s, size_t avail, unsigned *cp)
{
	unsigned char b = s[0];
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n;

	if (b <= 0x7F) {
		*cp = b;
		return 1;
	} else if (b >= 0xC2 && b <= 0xDF) {
		n = 2;
	} else if (b >= 0xE0 && b <= 0xEF) {
		n = 3;
		if (b == 0xE0)
			lo = 0xA0;
		if (b == 0xED)
			hi = 0x9F;
	} else if (b >= 0xF0 && b <= 0xF4) {
		n = 4;
		if (b == 0xF0)
			lo = 0x90;
		if (b == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	*cp = b & (0xFF >> (n + 1));
	for (size_t i = 1; i < n; i++)
		*cp = *cp << 6 | (s[i] & 0x3F);
	return n;
}

/* The README's rules for the part of PATH_INFO after the leading '/'. */
static bool ref_path_ok(const char *rel, size_t plen)
{
	size_t len = strlen(rel);
	const unsigned char *u = (const unsigned char *)rel;

	if (len == 0 || len + plen > PATH_MAX_KEY)
		return false;
	for (size_t i = 0; i < len;) {
		unsigned cp;
		size_t n = ref_utf8(u + i, len - i, &cp);
		if (n == 0 || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
			return false;
		i += n;
	}
	/* Segments: split at every '/', including a leading or trailing one. */
	const char *seg = rel;
	for (;;) {
		const char *slash = strchr(seg, '/');
		size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (!slash)
			return true;
		seg = slash + 1;
	}
}

static void check_path(const char *path_info)
{
	struct buf key = BUF_INIT, again = BUF_INIT, p2 = BUF_INIT;
	const char *why = NULL;
	enum status st = path_to_key(path_info, PREFIX, &key, &why);
	bool want = path_info[0] == '/' && ref_path_ok(path_info + 1, strlen(PREFIX));

	FUZZ_CHECK((st == ST_OK) == want, "path_to_key says %d, the rules say %s", st,
		   want ? "valid" : "invalid");
	if (st != ST_OK) {
		FUZZ_CHECK(st == ST_BAD_REQUEST && why && *why,
			   "refusal without a 400 and a reason");
	} else {
		FUZZ_CHECK(key.len == strlen(key.data), "key holds a NUL");
		FUZZ_CHECK(key.len <= PATH_MAX_KEY, "key of %zu bytes", key.len);
		FUZZ_CHECK(strncmp(key.data, PREFIX, strlen(PREFIX)) == 0 &&
			       strcmp(key.data + strlen(PREFIX), path_info + 1) == 0,
			   "key is not prefix + path");
		FUZZ_CHECK(!strstr(key.data, "/../") && !strstr(key.data, "//") &&
			       strcmp(key.data + key.len - 3, "/..") != 0,
			   "key has a '..' or empty segment");
		buf_printf(&p2, "/%s", key.data + strlen(PREFIX));
		FUZZ_CHECK(path_to_key(p2.data, PREFIX, &again, &why) == ST_OK &&
			       strcmp(again.data, key.data) == 0,
			   "the key's own path is not accepted unchanged");
	}
	buf_free(&key);
	buf_free(&again);
	buf_free(&p2);
}

static void check_utf8(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned cp;
		size_t want = ref_utf8(s + i, len - i, &cp), got = path_utf8_len(s + i, len - i);
		FUZZ_CHECK(got == want, "path_utf8_len %zu, table says %zu at byte %zu", got, want,
			   i);
		i += got ? got : 1;
	}
}

static bool defaults(const struct params *p)
{
	return p->w == 0 && p->h == 0 && p->fit == FIT_INSIDE && p->rotate == 0 && p->q == 0 &&
	       p->fm == FM_SOURCE && !p->any;
}

/* "w-400_fit-cover" -> "w=400&fit=cover": the canonical form as a query. */
static void canonical_to_query(const char *c, struct buf *q)
{
	bool in_value = false;
	buf_append(q, "", 0);
	for (; *c; c++) {
		if (*c == '_') {
			buf_putc(q, '&');
			in_value = false;
		} else if (*c == '-' && !in_value) {
			buf_putc(q, '=');
			in_value = true;
		} else {
			buf_putc(q, *c);
		}
	}
}

static void check_geom(const struct params *p, const char *size)
{
	char *end;
	unsigned long W = strtoul(size, &end, 10), H = strtoul(end, NULL, 10);
	struct geom g;

	/* probe_image never reports more than 2^31 - 1 (PNG) nor 0. */
	if (W == 0 || H == 0 || W > 0x7FFFFFFF || H > 0x7FFFFFFF)
		return;
	geom_plan(W, H, p, &g);
	FUZZ_CHECK(g.crop_w >= 1 && g.crop_h >= 1 && g.crop_w <= g.scale_w && g.crop_h <= g.scale_h,
		   "%lux%lu: scale %lux%lu crop %lux%lu", W, H, g.scale_w, g.scale_h, g.crop_w,
		   g.crop_h);
	if (p->w && p->h && p->fit == FIT_FILL) {
		FUZZ_CHECK(
		    g.scale_w == p->w && g.scale_h == p->h && g.crop_w == p->w && g.crop_h == p->h,
		    "fill %lux%lu of %lux%lu gave %lux%lu", p->w, p->h, W, H, g.crop_w, g.crop_h);
		return;
	}
	FUZZ_CHECK(g.scale_w <= W && g.scale_h <= H, "%lux%lu enlarged to %lux%lu", W, H, g.scale_w,
		   g.scale_h);
	if (p->w && p->h && p->fit == FIT_COVER) {
		FUZZ_CHECK(g.crop_w == (g.scale_w < p->w ? g.scale_w : p->w) &&
			       g.crop_h == (g.scale_h < p->h ? g.scale_h : p->h),
			   "cover %lux%lu of %lux%lu: scale %lux%lu crop %lux%lu", p->w, p->h, W, H,
			   g.scale_w, g.scale_h, g.crop_w, g.crop_h);
		/* Covering: one side fits the box exactly, unless the source is smaller. */
		FUZZ_CHECK((g.scale_w == W && g.scale_h == H) || g.scale_w >= p->w ||
			       g.scale_h >= p->h,
			   "cover %lux%lu of %lux%lu scaled to %lux%lu covers neither side", p->w,
			   p->h, W, H, g.scale_w, g.scale_h);
	} else {
		FUZZ_CHECK(g.crop_w == g.scale_w && g.crop_h == g.scale_h, "a crop without cover");
		FUZZ_CHECK(!p->w || g.scale_w <= p->w || g.scale_w == 1,
			   "w %lu of %lux%lu gave width %lu", p->w, W, H, g.scale_w);
		FUZZ_CHECK(!p->h || g.scale_h <= p->h || g.scale_h == 1,
			   "h %lu of %lux%lu gave height %lu", p->h, W, H, g.scale_h);
	}
}

static void check_query(const char *query, const char *size)
{
	struct params p, p2;
	struct buf canon = BUF_INIT, q2 = BUF_INIT, canon2 = BUF_INIT;
	char err[256], err2[256];

	if (!params_parse(query, &lim, &p, err, sizeof err)) {
		FUZZ_CHECK(defaults(&p), "a failed parse left parameters set");
		FUZZ_CHECK(err[0], "a failed parse without a message");
		for (const char *e = err; *e; e++)
			FUZZ_CHECK(*e >= 0x20 && *e < 0x7F && *e != '"' && *e != '\\',
				   "message byte 0x%02x is not safe in JSON", (unsigned char)*e);
		return;
	}
	FUZZ_CHECK(p.w <= lim.max_dimension && p.h <= lim.max_dimension, "w %lu h %lu", p.w, p.h);
	FUZZ_CHECK(p.q >= 0 && p.q <= 100, "q %d", p.q);
	FUZZ_CHECK(p.rotate == 0 || p.rotate == 90 || p.rotate == 180 || p.rotate == 270,
		   "rotate %d", p.rotate);
	FUZZ_CHECK((unsigned)p.fit <= FIT_FILL && (unsigned)p.fm <= FM_AUTO, "enum out of range");
	FUZZ_CHECK(p.any == (query[0] != '\0'), "any is %d", p.any);
	check_geom(&p, size);

	params_canonical(&p, &lim, &canon);
	for (const char *c = canon.data; *c; c++)
		FUZZ_CHECK((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' ||
			       *c == '-',
			   "canonical form '%s' has byte 0x%02x", canon.data, (unsigned char)*c);
	FUZZ_CHECK((canon.len == 0) == params_is_identity(&p, &lim),
		   "canonical '%s' but identity %d", canon.data, params_is_identity(&p, &lim));

	canonical_to_query(canon.data, &q2);
	FUZZ_CHECK(params_parse(q2.data, &lim, &p2, err2, sizeof err2),
		   "canonical '%s' as a query fails: %s", canon.data, err2);
	params_canonical(&p2, &lim, &canon2);
	FUZZ_CHECK(strcmp(canon.data, canon2.data) == 0, "canonical '%s' reparses as '%s'",
		   canon.data, canon2.data);

	/* Percent-encoding is transparent (names and values alike). */
	if (!strchr(query, '%')) {
		buf_reset(&q2);
		buf_reset(&canon2);
		for (const char *c = query; *c; c++) {
			if (*c == '&' || *c == '=')
				buf_putc(&q2, *c);
			else
				buf_printf(&q2, "%%%02X", (unsigned char)*c);
		}
		FUZZ_CHECK(params_parse(q2.data, &lim, &p2, err2, sizeof err2),
			   "the percent-encoded query fails: %s", err2);
		params_canonical(&p2, &lim, &canon2);
		FUZZ_CHECK(strcmp(canon.data, canon2.data) == 0,
			   "percent-encoded: '%s' against '%s'", canon2.data, canon.data);
	}
	buf_free(&canon);
	buf_free(&canon2);
	buf_free(&q2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[4], *mem;

	fuzz_fields(data, size, f, 4, &mem);
	check_query(f[0], f[3]);
	check_path(f[1]);
	check_utf8((const unsigned char *)f[1], strlen(f[1]));
	if (params_accepts_webp(f[2]))
		FUZZ_CHECK(strcasestr(f[2], "image/webp"), "WebP accepted from '%s'", f[2]);
	free(mem);
	return 0;
}
