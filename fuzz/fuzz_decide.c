/*
 * fuzz_decide.c - libFuzzer target for decide() (src/decide.c): what a
 * request's image calls for, from the client's conditions, the probe of
 * the first bytes, the limits and S3's metadata.
 *
 * Input: 12 bytes of settings (flags; max_width, 2 bytes; max_source_pixels
 * and max_source_bytes, 4 bytes each; the allowed formats), then
 * If-None-Match, If-Modified-Since, ETag and Last-Modified, each ended by
 * a NUL, then the original's first bytes, which probe_image reads.
 *
 * Invariants: a recognised image wider than max_width (> 0) is never
 * passed; nothing over the pixel or byte limits, or of a format not
 * allowed, is downscaled or transformed; a derivative's source is never
 * passed; a 304 is sent only when S3 judged the condition or the client's
 * condition matches the ETag (or date) of what would be served; a cached
 * derivative only when there is one; an error is 413, 415 or 500 with a
 * reason; the ETag served is a header-safe string; and the same input
 * gives the same answer.
 */
#include "decide.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *field(const uint8_t **p, size_t *left, char *out, size_t outlen)
{
	size_t n = 0;
	while (n < *left && (*p)[n] != 0)
		n++;
	size_t k = n < outlen - 1 ? n : outlen - 1;
	memcpy(out, *p, k);
	out[k] = '\0';
	size_t used = n < *left ? n + 1 : n;
	*p += used;
	*left -= used;
	return out;
}

static uint32_t be(const uint8_t *p, int n)
{
	uint32_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char inm[256], ims[64], etag[200], lm[64];
	struct decide_in in = {0};
	struct decide_out out, again;

	if (size < 12)
		return 0;
	uint8_t flags = data[0];
	in.derivative = flags & 1;
	in.judge_here = flags & 2;
	in.s3_not_modified = flags & 4;
	in.complete = flags & 8;
	in.cached = in.derivative && (flags & 16);
	in.strip = !in.derivative && (flags & 16);
	in.max_width = be(data + 1, 2) & 0x1fff;
	in.max_source_pixels = be(data + 3, 4);
	in.max_source_bytes = be(data + 7, 4);
	in.formats = data[11];
	in.canonical = "w-400";
	in.budget = (struct budget_limits){419430400, 8294400};
	struct params w400 = {.w = 400, .any = true};
	in.params = &w400;
	in.now = 1796256000; /* Thu, 03 Dec 2026 00:00:00 GMT: later dates are ignored */
	in.variant = "v1-q82";
	const uint8_t *p = data + 12;
	size_t left = size - 12;
	in.if_none_match = field(&p, &left, inm, sizeof inm);
	in.if_modified_since = field(&p, &left, ims, sizeof ims);
	in.etag = field(&p, &left, etag, sizeof etag);
	in.last_modified = field(&p, &left, lm, sizeof lm);
	/* S3's values reach decide() free of control bytes (s3_parse_header drops them). */
	for (char *c = etag; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '_';
	if (!*inm || (flags & 32))
		in.if_none_match = NULL;
	if (!*ims)
		in.if_modified_since = NULL;
	in.probed = probe_image(p, left, &in.info);
	in.have = flags & 64 && in.max_source_bytes > 0 ? (size_t)in.max_source_bytes : left;
	in.length = flags & 128 ? -1 : (long long)left;

	enum action a = decide(&in, &out);
	const char *name = decide_name(a);

	FUZZ_CHECK(decide(&in, &again) == a && strcmp(again.etag, out.etag) == 0,
		   "not the same answer twice (%s)", name);
	FUZZ_CHECK(strlen(out.etag) < HTTP_ETAG_LEN, "ETag unterminated");
	for (const char *c = out.etag; *c; c++)
		FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f, "control byte in the ETag");

	bool wide = in.probed == PROBE_OK && in.max_width > 0 &&
		    in.info.width > (unsigned long)in.max_width;
	const char *why = NULL;
	bool admissible = probe_admit(in.probed, &in.info, in.formats, in.max_source_pixels,
				      in.length, in.max_source_bytes, &why) == ST_OK &&
			  (long long)in.have <= in.max_source_bytes;
	switch (a) {
	case ACT_PASS:
		FUZZ_CHECK(!in.derivative, "a derivative's source passed");
		FUZZ_CHECK(!wide, "passed %lu wide over max_width %lld", in.info.width,
			   in.max_width);
		FUZZ_CHECK(!in.strip || in.probed != PROBE_OK, "passed an image unstripped");
		break;
	case ACT_CLAMP:
		FUZZ_CHECK(!in.derivative && wide, "downscaled what is not too wide");
		FUZZ_CHECK(admissible, "downscaled over the limits or of a format not allowed");
		break;
	case ACT_STRIP:
		FUZZ_CHECK(!in.derivative && in.strip && in.probed == PROBE_OK && !wide,
			   "stripped what is not an image to pass");
		FUZZ_CHECK((long long)in.have <= in.max_source_bytes &&
			       in.length <= in.max_source_bytes,
			   "collected over max_source_bytes to strip");
		break;
	case ACT_TRANSFORM:
		FUZZ_CHECK(in.derivative && !in.cached, "transformed an original or a cached one");
		FUZZ_CHECK(admissible, "transformed over the limits or of a format not allowed");
		break;
	case ACT_NOT_MODIFIED:
		if (in.s3_not_modified && !in.derivative)
			break; /* S3 matched its own ETag */
		FUZZ_CHECK(in.if_none_match || in.if_modified_since, "304 without a condition");
		FUZZ_CHECK(in.if_none_match
			       ? http_etag_matches(in.if_none_match, out.etag)
			       : http_not_modified_since(in.if_modified_since, in.last_modified,
							 in.now),
			   "304 though the condition does not match %s", out.etag);
		if (!in.derivative && !wide)
			FUZZ_CHECK(in.judge_here, "304 for a pass S3 was to judge");
		break;
	case ACT_SERVE_CACHED:
		FUZZ_CHECK(in.cached, "served a cached derivative there is not");
		break;
	case ACT_KEEP_READING:
		FUZZ_CHECK(in.probed == PROBE_NEED_MORE && !in.complete &&
			       (long long)in.have < in.max_source_bytes,
			   "kept reading with the probe decided");
		FUZZ_CHECK(!in.cached && !in.s3_not_modified, "kept reading with nothing to read");
		break;
	case ACT_ERROR: {
		int code = status_http(out.st);
		FUZZ_CHECK(code == 400 || code == 413 || code == 415 || code == 500, "error %d", code);
		FUZZ_CHECK(out.detail && *out.detail, "error without a reason");
		break;
	}
	}
	return 0;
}
