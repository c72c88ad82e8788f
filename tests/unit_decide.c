/*
 * unit_decide.c - what decide() makes of a request's image: each action,
 * and the boundaries (max_width, the sniff limit, the pixel and byte
 * limits, the ETags a client's conditions are matched against).
 */
#include <string.h>

#include "decide.h"
#include "unit.h"

#define ETAG "\"abc\""
#define LM "Tue, 01 Dec 2026 10:00:00 GMT"
#define VAR "v1-q82"
#define NOW 1796256000LL /* Thu, 03 Dec 2026 00:00:00 GMT: after LM */

/* An original JPEG of w x h, probed, with the default limits and max_width 1000. */
static struct decide_in jpeg(unsigned long w, unsigned long h)
{
	return (struct decide_in){.probed = PROBE_OK,
				  .info = {IMG_JPEG, w, h, 1},
				  .have = 4096,
				  .variant = VAR,
				  .max_width = 1000,
				  .max_source_pixels = 100000000,
				  .max_source_bytes = 50000000,
				  .formats = 1u << IMG_JPEG | 1u << IMG_PNG,
				  .budget = {419430400, 8294400},
				  .etag = ETAG,
				  .last_modified = LM,
				  .now = NOW,
				  .length = 100000};
}

static void originals(void)
{
	struct decide_in in = jpeg(800, 600);
	struct decide_out out;
	char clamp[HTTP_ETAG_LEN];
	http_derived_etag(ETAG, "w-1000", VAR, clamp);

	CHECK(decide(&in, &out) == ACT_PASS && strcmp(out.etag, ETAG) == 0,
	      "an original narrower than max_width passes under its own ETag");
	in = jpeg(1000, 600);
	CHECK(decide(&in, &out) == ACT_PASS, "width == max_width passes");
	in = jpeg(1001, 600);
	CHECK(decide(&in, &out) == ACT_CLAMP && strcmp(out.etag, clamp) == 0,
	      "width == max_width + 1 is downscaled, under the ETag of ?w=max_width");
	in.max_width = 0;
	CHECK(decide(&in, &out) == ACT_PASS, "max_width 0: any width passes");
	in = jpeg(5000, 600);
	in.probed = PROBE_NEED_MORE;
	in.have = 0;
	in.max_width = 0;
	CHECK(decide(&in, &out) == ACT_PASS, "max_width 0: passes before any byte is probed");

	in = jpeg(5000, 600);
	in.probed = PROBE_NEED_MORE;
	in.have = 600 * 1024;
	CHECK(decide(&in, &out) == ACT_KEEP_READING,
	      "the probe needs more past 512 KiB (a JPEG's large APPn segments): keep reading");
	in.have = (size_t)in.max_source_bytes - 1;
	CHECK(decide(&in, &out) == ACT_KEEP_READING, "the probe needs more: keep reading");
	in.have = (size_t)in.max_source_bytes;
	CHECK(decide(&in, &out) == ACT_PASS,
	      "PROBE_NEED_MORE at max_source_bytes: passes as not a recognised image");
	in.have = 10;
	in.complete = true;
	CHECK(decide(&in, &out) == ACT_PASS, "PROBE_NEED_MORE when the object ended: passes");

	in = jpeg(5000, 600);
	in.probed = PROBE_UNKNOWN;
	CHECK(decide(&in, &out) == ACT_PASS, "an unknown format passes through, whatever it says");
	in = jpeg(5000, 600);
	in.info.format = IMG_GIF;
	CHECK(decide(&in, &out) == ACT_ERROR && out.st == ST_UNSUPPORTED,
	      "a wide image of a format not allowed is refused (415), not passed");
	in = jpeg(20000, 20000);
	CHECK(decide(&in, &out) == ACT_ERROR && out.st == ST_TOO_LARGE && out.detail,
	      "a wide image over max_source_pixels is refused (413) with a reason");
	in = jpeg(10000, 10000);
	CHECK(decide(&in, &out) == ACT_CLAMP, "exactly max_source_pixels is downscaled");
	in.length = 50000001;
	CHECK(decide(&in, &out) == ACT_ERROR && out.st == ST_TOO_LARGE,
	      "a wide image over max_source_bytes (Content-Length) is refused");
	in = jpeg(5000, 600);
	in.length = -1;
	in.have = 50000001;
	CHECK(decide(&in, &out) == ACT_ERROR && out.st == ST_TOO_LARGE,
	      "a downscale stops once more than max_source_bytes is held");
	in = jpeg(800, 600);
	in.length = 60000000;
	CHECK(decide(&in, &out) == ACT_PASS, "a narrow original passes whatever its size");
}

static void conditions(void)
{
	struct decide_in in = jpeg(800, 600);
	struct decide_out out;
	char clamp[HTTP_ETAG_LEN];
	http_derived_etag(ETAG, "w-1000", VAR, clamp);

	in.if_none_match = ETAG;
	CHECK(decide(&in, &out) == ACT_PASS,
	      "a matching If-None-Match S3 was given (not judged here): pass");
	in.judge_here = true;
	CHECK(decide(&in, &out) == ACT_NOT_MODIFIED && strcmp(out.etag, ETAG) == 0,
	      "judged here and matching: 304 with the original's ETag");
	in.if_none_match = "\"other\", W/\"abc\"";
	CHECK(decide(&in, &out) == ACT_NOT_MODIFIED,
	      "a list with the weak tag matches (weak compare)");
	in.if_none_match = "\"other\"";
	CHECK(decide(&in, &out) == ACT_PASS, "judged here, not matching: pass");
	in.if_none_match = NULL;
	in.if_modified_since = LM;
	CHECK(decide(&in, &out) == ACT_NOT_MODIFIED,
	      "If-Modified-Since equal to Last-Modified: 304");
	in.if_modified_since = "Mon, 30 Nov 2026 10:00:00 GMT";
	CHECK(decide(&in, &out) == ACT_PASS, "If-Modified-Since before Last-Modified: pass");
	in.if_modified_since = "Thu, 03 Dec 2026 00:00:00 GMT";
	CHECK(decide(&in, &out) == ACT_NOT_MODIFIED, "If-Modified-Since now, after Last-Modified: 304");
	in.if_modified_since = "Thu, 03 Dec 2026 00:00:01 GMT";
	CHECK(decide(&in, &out) == ACT_PASS,
	      "If-Modified-Since later than now is ignored: the original, not 304");

	in = jpeg(800, 600);
	in.if_none_match = ETAG;
	in.s3_not_modified = true;
	CHECK(decide(&in, &out) == ACT_NOT_MODIFIED && strcmp(out.etag, ETAG) == 0,
	      "S3 judged the condition (304): 304 with its ETag");

	in = jpeg(4000, 600);
	in.if_none_match = clamp;
	CHECK(decide(&in, &out) == ACT_NOT_MODIFIED && strcmp(out.etag, clamp) == 0,
	      "a condition matching the downscaled copy's ETag: 304, judged here or not");
	in.if_none_match = ETAG;
	in.judge_here = true;
	CHECK(decide(&in, &out) == ACT_CLAMP,
	      "the original's own ETag does not match its downscaled copy");
	in = jpeg(20000, 20000);
	in.if_none_match = clamp;
	CHECK(decide(&in, &out) == ACT_ERROR,
	      "over the limits the refusal comes first, whatever the condition");
}

static void derivatives(void)
{
	struct decide_in in = jpeg(4000, 3000);
	struct decide_out out;
	char derived[HTTP_ETAG_LEN];
	http_derived_etag(ETAG, "w-400", VAR, derived);

	in.derivative = true;
	in.canonical = "w-400";
	in.max_width = 0;
	CHECK(decide(&in, &out) == ACT_TRANSFORM && strcmp(out.etag, derived) == 0,
	      "a derivative's source is collected to transform, under the derived ETag");
	in.complete = true;
	CHECK(decide(&in, &out) == ACT_TRANSFORM, "and transformed once it has ended");
	in.if_none_match = derived;
	CHECK(decide(&in, &out) == ACT_NOT_MODIFIED,
	      "the whole source read and the client's tag its derived one: 304");
	in.complete = false;
	CHECK(decide(&in, &out) == ACT_TRANSFORM, "the 304 waits for the whole source");
	in.if_none_match = NULL;
	in.cached = true;
	in.if_modified_since = "Wed, 02 Dec 2026 00:00:00 GMT";
	CHECK(decide(&in, &out) == ACT_NOT_MODIFIED,
	      "a cached derivative, If-Modified-Since after its source's date: 304");
	in.if_modified_since = "Fri, 01 Jan 2100 00:00:00 GMT";
	CHECK(decide(&in, &out) == ACT_SERVE_CACHED,
	      "a cached derivative, If-Modified-Since in the future: served, not 304");

	in = jpeg(4000, 3000);
	in.derivative = true;
	in.canonical = "w-400";
	in.probed = PROBE_UNKNOWN;
	CHECK(decide(&in, &out) == ACT_ERROR && out.st == ST_UNSUPPORTED,
	      "a derivative of a non-image: 415, never passed");
	in.probed = PROBE_NEED_MORE;
	in.have = 600 * 1024;
	CHECK(decide(&in, &out) == ACT_KEEP_READING,
	      "a derivative whose probe needs more past 512 KiB: keep reading");
	in.have = (size_t)in.max_source_bytes;
	CHECK(decide(&in, &out) == ACT_ERROR && out.st == ST_UNSUPPORTED,
	      "PROBE_NEED_MORE at max_source_bytes: 415");
	in.have = 0;
	in.length = 50000001;
	CHECK(decide(&in, &out) == ACT_ERROR && out.st == ST_TOO_LARGE &&
		  strstr(out.detail, "Content-Length"),
	      "over max_source_bytes by Content-Length: 413 before any byte is read");
	in.length = 50000000;
	CHECK(decide(&in, &out) == ACT_KEEP_READING, "exactly max_source_bytes: read on");

	in = jpeg(4000, 3000);
	in.derivative = true;
	in.canonical = "w-400";
	in.cached = true;
	CHECK(decide(&in, &out) == ACT_SERVE_CACHED && strcmp(out.etag, derived) == 0,
	      "a cached derivative of the current original is served");
	in.if_none_match = derived;
	CHECK(decide(&in, &out) == ACT_NOT_MODIFIED, "and its holder gets a 304");

	in = jpeg(4000, 3000);
	in.derivative = true;
	in.canonical = "w-400";
	in.s3_not_modified = true;
	in.if_none_match = derived;
	CHECK(decide(&in, &out) == ACT_NOT_MODIFIED && strcmp(out.etag, derived) == 0,
	      "a revalidation S3 confirmed: 304 with the derived ETag");
	in.if_none_match = "\"other\"";
	CHECK(decide(&in, &out) == ACT_ERROR && out.st == ST_INTERNAL,
	      "S3's 304 to a condition not the client's is never passed on as a 304");
}

/* What the work will take is judged from the header, before the source is read. */
static void budgets(void)
{
	struct params turn = {.rotate = 90, .any = true};
	struct params fill = {.w = 4000, .h = 4000, .fit = FIT_FILL, .any = true};
	struct decide_in in = jpeg(6000, 4000);
	struct decide_out out;

	in.derivative = true;
	in.canonical = "rotate-90";
	in.params = &turn;
	CHECK(decide(&in, &out) == ACT_ERROR && out.st == ST_TOO_LARGE && out.message,
	      "a full-size rotation of 24 MP: over max_image_memory, 413 with a message");
	in = jpeg(3000, 2000);
	in.derivative = true;
	in.canonical = "rotate-90";
	in.params = &turn;
	CHECK(decide(&in, &out) == ACT_TRANSFORM, "of 6 MP: within it");
	in = jpeg(1, 1);
	in.derivative = true;
	in.canonical = "w-4000_h-4000_fit-fill";
	in.params = &fill;
	CHECK(decide(&in, &out) == ACT_ERROR && out.st == ST_BAD_REQUEST && out.message,
	      "1x1 filled to 4000x4000: past max_output_pixels, 400 with a message");
	in = jpeg(6000, 4000);
	in.max_width = 2000;
	CHECK(decide(&in, &out) == ACT_CLAMP, "the clamp of a 24 MP JPEG: within the budget");
	in.budget.max_image_memory = 16 * 1000 * 1000;
	CHECK(decide(&in, &out) == ACT_ERROR && out.st == ST_TOO_LARGE,
	      "the clamp is judged by the budget too");
}

void unit_decide(void)
{
	originals();
	conditions();
	derivatives();
	budgets();
	CHECK(strcmp(decide_name(ACT_CLAMP), "CLAMP") == 0, "actions have names");
}
