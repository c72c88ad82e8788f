/*
 * unit_params.c - the parameter rules (README "Transformations"), the canonical form that
 * makes equivalent requests share a derivative, and the Accept header test
 * behind fm=auto. Inputs are copied into exactly-sized heap blocks so that
 * valgrind would catch a read past the terminating NUL.
 */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "params.h"

static const struct params_limits lim = {4000, 82};

static bool parse(const char *query, struct params *p, char *err, size_t errlen)
{
	char *copy = xstrdup(query);
	bool ok = params_parse(copy, &lim, p, err, errlen);
	free(copy);
	return ok;
}

/* The canonical form of query, or NULL when it does not parse; caller frees. */
static char *canon(const char *query)
{
	struct params p;
	struct buf out = BUF_INIT;
	char err[200];
	if (!parse(query, &p, err, sizeof err))
		return NULL;
	params_canonical(&p, &lim, &out);
	return buf_detach(&out);
}

static void expect_canon(const char *query, const char *want)
{
	char *got = canon(query);
	CHECK(got && strcmp(got, want) == 0, "\"%s\" -> \"%s\" (got \"%s\")", query, want,
	      got ? got : "parse error");
	free(got);
}

static void expect_same(const char *a, const char *b)
{
	char *ca = canon(a), *cb = canon(b);
	CHECK(ca && cb && strcmp(ca, cb) == 0, "\"%s\" and \"%s\" share \"%s\"", a, b,
	      ca ? ca : "?");
	free(ca);
	free(cb);
}

static void expect_differ(const char *a, const char *b)
{
	char *ca = canon(a), *cb = canon(b);
	CHECK(ca && cb && strcmp(ca, cb) != 0, "\"%s\" and \"%s\" differ (\"%s\", \"%s\")", a, b,
	      ca ? ca : "?", cb ? cb : "?");
	free(ca);
	free(cb);
}

static void expect_bad(const char *label, const char *query, const char *want)
{
	struct params p;
	char err[200] = "unset";
	bool ok = parse(query, &p, err, sizeof err);
	CHECK(!ok && strcmp(err, want) == 0 && !p.any, "400 for %s: \"%s\" (got \"%s\")", label,
	      want, ok ? "accepted" : err);
}

static void expect_webp(const char *accept, bool want)
{
	char *copy = xstrdup(accept);
	CHECK(params_accepts_webp(copy) == want, "Accept \"%s\" %s WebP", accept,
	      want ? "admits" : "does not admit");
	free(copy);
}

static bool only_unreserved(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("_.~-", *s)))
			return false;
	return true;
}

static void test_parse(void)
{
	struct params p;
	char err[200];

	CHECK(params_parse(NULL, &lim, &p, err, sizeof err) && !p.any && p.w == 0 && p.h == 0 &&
		  p.fit == FIT_INSIDE && p.rotate == 0 && p.q == 0 && p.fm == FM_SOURCE,
	      "NULL query: no parameters, all defaults");
	CHECK(parse("", &p, err, sizeof err) && !p.any, "empty query: no parameters");
	CHECK(parse("w=400&h=300&fit=cover&rotate=90&q=75&fm=webp", &p, err, sizeof err) && p.any &&
		  p.w == 400 && p.h == 300 && p.fit == FIT_COVER && p.rotate == 90 && p.q == 75 &&
		  p.fm == FM_WEBP,
	      "all six parameters parse into the struct");
	CHECK(parse("fit=inside", &p, err, sizeof err) && p.any, "a default value still sets any");
	CHECK(parse("w=1", &p, err, sizeof err) && p.w == 1, "w=1 is the smallest size");
	CHECK(parse("h=4000", &p, err, sizeof err) && p.h == 4000, "h=max_dimension is allowed");
	CHECK(parse("w=000000400", &p, err, sizeof err) && p.w == 400,
	      "leading zeros are allowed (9 digits)");
	CHECK(parse("q=1", &p, err, sizeof err) && p.q == 1, "q=1");
	CHECK(parse("q=100", &p, err, sizeof err) && p.q == 100, "q=100");
	CHECK(parse("fit=fill", &p, err, sizeof err) && p.fit == FIT_FILL, "fit=fill");
	CHECK(parse("fit=inside", &p, err, sizeof err) && p.fit == FIT_INSIDE, "fit=inside");
	CHECK(parse("rotate=0", &p, err, sizeof err) && p.rotate == 0, "rotate=0");
	CHECK(parse("rotate=180", &p, err, sizeof err) && p.rotate == 180, "rotate=180");
	CHECK(parse("rotate=270", &p, err, sizeof err) && p.rotate == 270, "rotate=270");
	CHECK(parse("fm=jpeg", &p, err, sizeof err) && p.fm == FM_JPEG, "fm=jpeg");
	CHECK(parse("fm=jpg", &p, err, sizeof err) && p.fm == FM_JPEG, "fm=jpg is jpeg");
	CHECK(parse("fm=png", &p, err, sizeof err) && p.fm == FM_PNG, "fm=png");
	CHECK(parse("fm=auto", &p, err, sizeof err) && p.fm == FM_AUTO, "fm=auto");
	CHECK(parse("%77=%34%30%30&%66%49%74=x", &p, err, sizeof err) == false,
	      "percent-decoding applies to names (fIt is not fit)");
	CHECK(parse("%77=%34%30%30&fit=%63%4F%56%65%72", &p, err, sizeof err) == false,
	      "values are case-sensitive after decoding");
	CHECK(parse("%77=%34%30%30&%66%69%74=%63%6f%76%65%72", &p, err, sizeof err) && p.w == 400 &&
		  p.fit == FIT_COVER,
	      "percent-encoded names and values, either hex case");
	CHECK(params_parse("w=x", &lim, &p, NULL, 0) == false, "a NULL err buffer is tolerated");
	CHECK(params_parse("w=x", &lim, &p, err, 1) == false && err[0] == '\0',
	      "a one-byte err buffer gets an empty string");

	expect_bad("empty item", "w=1&&h=2", "Empty parameter");
	expect_bad("trailing '&'", "w=1&", "Empty parameter");
	expect_bad("leading '&'", "&w=1", "Empty parameter");
	expect_bad("lone '&'", "&", "Empty parameter");
	expect_bad("no '='", "w", "Parameter 'w' needs a value");
	expect_bad("empty value", "w=1&h=", "Parameter 'h' needs a value");
	expect_bad("encoded name, no value", "%66m", "Parameter 'fm' needs a value");
	expect_bad("unknown name", "width=400", "Unknown parameter 'width'");
	expect_bad("unknown name without value", "x", "Unknown parameter 'x'");
	expect_bad("empty name", "=5", "Unknown parameter ''");
	expect_bad("upper-case name", "W=400", "Unknown parameter 'W'");
	expect_bad("name with a space", "w =400", "Unknown parameter 'w '");
	expect_bad("'+' in a name", "w+=400", "Unknown parameter 'w+'");
	expect_bad("control bytes echoed as '?'", "%0a%1b%7f=1",
		   "Unknown parameter '??"
		   "?'" /* no trigraph */);
	expect_bad("quotes echoed as '?'", "a\"b\\c'd=1", "Unknown parameter 'a?b?c?d'");
	expect_bad("high bytes echoed as '?'", "\xc3\xa9t\xff=1", "Unknown parameter '??t?'");
	expect_bad("NUL byte in a name", "w%00=1", "Unknown parameter 'w?'");
	expect_bad("long name cut to 32", "abcdefghijklmnopqrstuvwxyz0123456789=1",
		   "Unknown parameter 'abcdefghijklmnopqrstuvwxyz012345'");
	expect_bad("repeated", "w=1&h=2&w=1", "Parameter 'w' given more than once");
	expect_bad("repeated via encoding", "fm=png&%66m=png",
		   "Parameter 'fm' given more than once");
	expect_bad("bad '%' in a name", "w%4=1",
		   "Malformed percent-encoding in parameter name 'w%4'");
	expect_bad("bad '%' in a value", "w=%4g0", "Malformed percent-encoding in parameter 'w'");
	expect_bad("'%' at the end", "q=7%", "Malformed percent-encoding in parameter 'q'");

	const char *wmsg = "Parameter 'w' must be a whole number from 1 to 4000";
	expect_bad("w=0", "w=0", wmsg);
	expect_bad("w past the limit", "w=4001", wmsg);
	expect_bad("h past the limit", "h=4001",
		   "Parameter 'h' must be a whole number from 1 to 4000");
	expect_bad("negative", "w=-1", wmsg);
	expect_bad("plus sign", "w=+1", wmsg);
	expect_bad("'+' is not a space", "w=4+00", wmsg);
	expect_bad("encoded '+'", "w=%2B400", wmsg);
	expect_bad("decimal point", "w=400.0", wmsg);
	expect_bad("space", "w=%20400", wmsg);
	expect_bad("letters", "w=abc", wmsg);
	expect_bad("hex", "w=0x10", wmsg);
	expect_bad("NUL byte in a value", "w=4%000", wmsg);
	expect_bad("10 digits", "w=0000000400", wmsg);
	expect_bad("overflowing number", "w=99999999999999999999999", wmsg);
	expect_bad("q=0", "q=0", "Parameter 'q' must be a whole number from 1 to 100");
	expect_bad("q=101", "q=101", "Parameter 'q' must be a whole number from 1 to 100");
	expect_bad("fit", "fit=contain", "Parameter 'fit' must be one of inside, cover, fill");
	expect_bad("fit case", "fit=Cover", "Parameter 'fit' must be one of inside, cover, fill");
	expect_bad("rotate=45", "rotate=45", "Parameter 'rotate' must be one of 0, 90, 180, 270");
	expect_bad("rotate=090", "rotate=090", "Parameter 'rotate' must be one of 0, 90, 180, 270");
	expect_bad("rotate=-90", "rotate=-90", "Parameter 'rotate' must be one of 0, 90, 180, 270");
	expect_bad("rotate=360", "rotate=360", "Parameter 'rotate' must be one of 0, 90, 180, 270");
	expect_bad("fm=gif", "fm=gif", "Parameter 'fm' must be one of jpeg, png, webp, auto");
	expect_bad("fm=JPEG", "fm=JPEG", "Parameter 'fm' must be one of jpeg, png, webp, auto");
	expect_bad("long value", "fm=webpwebpwebpwebpwebpwebpwebp",
		   "Parameter 'fm' must be one of jpeg, png, webp, auto");
	expect_bad("error after good items", "w=400&h=300&zoom=2", "Unknown parameter 'zoom'");
}

static void test_hostile(void)
{
	struct params p;
	char err[200];
	size_t n = 100000;
	char *big = xmalloc(n + 1);

	memset(big, '&', n);
	big[n] = '\0';
	CHECK(!params_parse(big, &lim, &p, err, sizeof err) && strcmp(err, "Empty parameter") == 0,
	      "100000 '&' are one empty parameter");
	memset(big, 'w', n);
	CHECK(!params_parse(big, &lim, &p, err, sizeof err) &&
		  strcmp(err, "Unknown parameter 'wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww'") == 0,
	      "a 100000-byte name is unknown, echoed in 32");
	memcpy(big, "w=", 2);
	memset(big + 2, '0', n - 3);
	big[n - 1] = '7';
	CHECK(!params_parse(big, &lim, &p, err, sizeof err) && strstr(err, "'w' must be"),
	      "a 100000-byte number is refused");
	for (size_t i = 0; i < n; i++)
		big[i] = (char)(0x80 | (i & 0x7f));
	CHECK(!params_parse(big, &lim, &p, err, sizeof err) && strncmp(err, "Unknown", 7) == 0,
	      "100000 high bytes are an unknown parameter");
	for (size_t i = 0; i + 3 <= n; i += 3)
		memcpy(big + i, "%25", 3);
	big[n - n % 3] = '\0';
	CHECK(!params_parse(big, &lim, &p, err, sizeof err) &&
		  strcmp(err, "Unknown parameter '%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%'") == 0,
	      "a long run of %%25 decodes to '%%' and is unknown");
	free(big);
}

static void test_canonical(void)
{
	expect_canon("", "");
	expect_canon("w=400&h=300&fit=cover&rotate=90&q=75&fm=webp",
		     "w-400_h-300_fit-cover_rotate-90_q-75_fm-webp");
	expect_canon("fm=webp&q=75&rotate=90&fit=cover&h=300&w=400",
		     "w-400_h-300_fit-cover_rotate-90_q-75_fm-webp");
	expect_canon("w=0400", "w-400");
	expect_canon("h=300", "h-300");
	expect_canon("w=400&h=300&fit=fill", "w-400_h-300_fit-fill");
	expect_canon("w=400&h=300&fit=inside", "w-400_h-300");
	expect_canon("w=400&fit=cover", "w-400");
	expect_canon("h=300&fit=fill", "h-300");
	expect_canon("fit=cover", "");
	expect_canon("rotate=0", "");
	expect_canon("rotate=270", "rotate-270");
	expect_canon("q=82", "");
	expect_canon("q=75", "q-75");
	expect_canon("q=75&fm=png", "fm-png");
	expect_canon("q=75&fm=jpeg", "q-75_fm-jpeg");
	expect_canon("fm=jpg", "fm-jpeg");
	expect_canon("fm=auto", "fm-auto");
	expect_canon("q=82&fm=webp", "fm-webp");

	/* Equivalent requests share one string... */
	expect_same("h=300&w=400", "w=0400&h=300&fit=inside&rotate=0");
	expect_same("w=400", "w=400&fit=cover");
	expect_same("w=400", "%77=%34%30%30&q=82");
	expect_same("fm=png", "fm=png&q=10");
	expect_same("fm=jpg&q=50", "q=050&fm=jpeg");
	expect_same("w=400&h=300&fit=cover", "fit=%63over&h=300&w=400");
	/* ...and different ones do not. */
	expect_differ("w=400", "h=400");
	expect_differ("w=400", "w=401");
	expect_differ("w=400&h=300", "w=300&h=400");
	expect_differ("w=400&h=300&fit=cover", "w=400&h=300&fit=fill");
	expect_differ("w=400&h=300&fit=cover", "w=400&h=300");
	expect_differ("rotate=90", "rotate=270");
	expect_differ("q=75", "q=76");
	expect_differ("fm=webp", "fm=jpeg");
	expect_differ("fm=auto", "fm=jpeg");
	expect_differ("w=1", "h=1");
	expect_differ("w=11", "w=1&h=1");

	struct buf out = BUF_INIT;
	struct params p = {400, 300, FIT_COVER, 90, 75, FM_WEBP, true};
	buf_puts(&out, "derivatives/photo.jpg/");
	params_canonical(&p, &lim, &out);
	CHECK(strcmp(out.data,
		     "derivatives/photo.jpg/w-400_h-300_fit-cover_rotate-90_q-75_fm-webp") == 0,
	      "params_canonical appends to what the buf holds");
	buf_free(&out);
	p = (struct params){0, 0, FIT_COVER, 0, 82, FM_SOURCE, true};
	params_canonical(&p, &lim, &out);
	CHECK(out.data && out.len == 0 && out.data[0] == '\0',
	      "nothing left: an empty, NUL-terminated string");
	buf_free(&out);
}

/* The struct that a canonical string should stand for: defaults and no-ops dropped. */
static struct params normalise(struct params p)
{
	if (!(p.w && p.h))
		p.fit = FIT_INSIDE;
	if (p.q == lim.default_quality || p.fm == FM_PNG)
		p.q = 0;
	p.any = false;
	return p;
}

/*
 * Every combination of a set of values: the canonical string is made of
 * unreserved characters, parses back (with '-' as '=' and '_' as '&') to
 * itself, and two strings are equal exactly when the requests are
 * equivalent.
 */
static void test_canonical_exhaustive(void)
{
	static const unsigned long ws[] = {0, 1, 400, 4000};
	static const unsigned long hs[] = {0, 300};
	static const int rots[] = {0, 90, 180, 270};
	static const int qs[] = {0, 1, 75, 82, 100};
	enum { N = 4 * 2 * 3 * 4 * 5 * 5 };
	struct params *all = xcalloc(N, sizeof *all);
	char **strs = xcalloc(N, sizeof *strs);
	size_t n = 0, bad_chars = 0, bad_roundtrip = 0, bad_equiv = 0;

	for (int a = 0; a < 4; a++)
		for (int b = 0; b < 2; b++)
			for (int f = 0; f < 3; f++)
				for (int r = 0; r < 4; r++)
					for (int q = 0; q < 5; q++)
						for (int m = 0; m < 5; m++)
							all[n++] = (struct params){
							    ws[a],   hs[b], (enum fit_mode)f,
							    rots[r], qs[q], (enum out_format)m,
							    true};
	for (size_t i = 0; i < n; i++) {
		struct buf out = BUF_INIT;
		params_canonical(&all[i], &lim, &out);
		strs[i] = buf_detach(&out);
		if (!only_unreserved(strs[i]))
			bad_chars++;
		char *query = xstrdup(strs[i]);
		for (char *c = query; *c; c++)
			*c = *c == '-' ? '=' : *c == '_' ? '&' : *c;
		char *again = canon(query);
		if (!again || strcmp(again, strs[i]) != 0)
			bad_roundtrip++;
		free(again);
		free(query);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			struct params x = normalise(all[i]), y = normalise(all[j]);
			bool same = x.w == y.w && x.h == y.h && x.fit == y.fit &&
				    x.rotate == y.rotate && x.q == y.q && x.fm == y.fm;
			if (same != (strcmp(strs[i], strs[j]) == 0))
				bad_equiv++;
		}
	CHECK(n == N && bad_chars == 0, "%zu canonical strings use only [A-Za-z0-9_.~-]", n);
	CHECK(bad_roundtrip == 0, "every canonical string parses back to itself (%zu failed)",
	      bad_roundtrip);
	CHECK(bad_equiv == 0,
	      "canonical strings are equal exactly for equivalent requests (%zu pairs wrong)",
	      bad_equiv);
	for (size_t i = 0; i < n; i++)
		free(strs[i]);
	free(strs);
	free(all);
}

static void test_identity(void)
{
	struct params p;
	char err[200];
	static const struct {
		const char *query;
		bool identity;
	} cases[] = {
	    {"", true},
	    {"fit=cover", true},
	    {"rotate=0", true},
	    {"q=82", true},
	    {"fit=fill&rotate=0&q=82", true},
	    {"w=400", false},
	    {"h=300", false},
	    {"rotate=90", false},
	    {"q=75", false},
	    {"fm=jpeg", false},
	    {"fm=png", false},
	    {"fm=auto", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		CHECK(parse(cases[i].query, &p, err, sizeof err) &&
			  params_is_identity(&p, &lim) == cases[i].identity,
		      "\"%s\" is %san identity", cases[i].query, cases[i].identity ? "" : "not ");
}

static void test_accept(void)
{
	CHECK(!params_accepts_webp(NULL), "no Accept header: no WebP");
	expect_webp("", false);
	expect_webp("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", true);
	expect_webp("image/avif,image/webp,*/*", true);
	expect_webp("image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5", true);
	expect_webp("image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", false);
	expect_webp("image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,"
		    "image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
		    true);
	expect_webp("*/*", false);
	expect_webp("image/*", false);
	expect_webp("image/webp", true);
	expect_webp("IMAGE/WEBP", true);
	expect_webp("Image/WebP;Q=0.5", true);
	expect_webp("image/webp;q=0", false);
	expect_webp("image/webp;q=0.0", false);
	expect_webp("image/webp;q=0.000", false);
	expect_webp("image/webp;q=0.001", true);
	expect_webp("image/webp;q=1", true);
	expect_webp("image/webp;q=1.000", true);
	expect_webp("image/webp;q=1.", true);
	expect_webp("image/webp;q=0.", false);
	expect_webp("image/webp;q=1.001", false);
	expect_webp("image/webp;q=0.0001", false);
	expect_webp("image/webp;q=2", false);
	expect_webp("image/webp;q=", false);
	expect_webp("image/webp;q=.5", false);
	expect_webp("image/webp;q=0.5x", false);
	expect_webp("image/webp;q=-1", false);
	expect_webp("image/webp;q=\"0.5\"", false);
	expect_webp("image/webp;q", false);
	expect_webp("image/webp;q=0;q=1", false);
	expect_webp("  image/webp  ;  q=0.9  ,  */*", true);
	expect_webp("\timage/webp\t;\tq=0.9", true);
	expect_webp("text/html , image/webp", true);
	expect_webp("image/webp;", true);
	expect_webp(",,image/webp,,", true);
	expect_webp("image/webp;codecs=\"vp8, vp9\";q=0.7", true);
	expect_webp("image/png;note=\"image/webp, x\"", false);
	expect_webp("image/png;note=\"a\\\"image/webp\"", false);
	expect_webp("image/png;note=\"unterminated, image/webp", false);
	expect_webp("image/webp;q=0, image/webp", false);
	expect_webp("image/webp, image/webp;q=0", false);
	expect_webp("image/webp;q=0.8, image/webp;q=abc", true);
	expect_webp("image/webpx", false);
	expect_webp("image/web", false);
	expect_webp("image/webp x", false);
	expect_webp("image / webp", false);
	expect_webp("xmage/webp", false);
	expect_webp("image/webp\xff", false);

	/* Hostile sizes: linear time, no reads past the end. */
	size_t n = 200000;
	char *big = xmalloc(n + 1);
	memset(big, ',', n);
	big[n] = '\0';
	CHECK(!params_accepts_webp(big), "200000 commas");
	memset(big, ';', n);
	CHECK(!params_accepts_webp(big), "200000 semicolons");
	memset(big, '"', n);
	CHECK(!params_accepts_webp(big), "200000 quotes");
	for (size_t i = 0; i + 11 <= n; i += 11)
		memcpy(big + i, "image/png;\"", 11);
	CHECK(!params_accepts_webp(big), "many unterminated quoted strings");
	for (size_t i = 0; i + 11 <= n; i += 11)
		memcpy(big + i, "image/webp,", 11);
	big[n - n % 11] = '\0';
	CHECK(params_accepts_webp(big), "image/webp repeated 18181 times");
	memset(big, 'x', n);
	memcpy(big + n - 12, ",image/webp", 11);
	big[n - 1] = '\0';
	CHECK(params_accepts_webp(big), "image/webp after a 200000-byte range");
	free(big);
}

void unit_params(void)
{
	test_parse();
	test_hostile();
	test_canonical();
	test_canonical_exhaustive();
	test_identity();
	test_accept();
}
