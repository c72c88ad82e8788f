/*
 * unit_budget.c - the memory estimate against what was measured, the
 * JPEG decoder's scale, and the two refusals: a fit=fill enlargement past
 * max_output_pixels (400) and work past max_image_memory (413).
 */
#include "budget.h"
#include "unit.h"

#define MB (1000LL * 1000)
#define DEFAULT_MEMORY 419430400LL /* max_image_memory's default */

static const struct budget_limits defaults = {DEFAULT_MEMORY, 8294400};

static long long cost(enum img_format f, unsigned long w, unsigned long h, int orientation,
		      struct params p)
{
	struct probe_info info = {f, w, h, orientation};
	p.any = true;
	return budget_bytes(&info, &p, 0);
}

/* The estimate is at least what a worker was measured to take, and not wildly more. */
static void near_measured(const char *label, long long est, long long measured)
{
	CHECK(est >= measured && est <= measured * 2,
	      "%s: estimate %lld MB, measured %lld MB", label, est / MB, measured / MB);
}

static void decoded(void)
{
	struct probe_info info = {IMG_JPEG, 6000, 4000, 1};
	struct params p = {.w = 2000, .any = true};
	unsigned long w, h;
	budget_decoded(&info, &p, &w, &h);
	/* As gm identify -size 2000x1333 says of such a file. */
	CHECK(w == 2250 && h == 1500, "6000x4000 JPEG for w=2000 decodes at 3/8: %lux%lu", w, h);
	p.w = 400;
	budget_decoded(&info, &p, &w, &h);
	CHECK(w == 750 && h == 500, "for w=400 at 1/8: %lux%lu", w, h);
	p.w = 0;
	p.rotate = 90;
	budget_decoded(&info, &p, &w, &h);
	CHECK(w == 6000 && h == 4000, "no size asked: full size: %lux%lu", w, h);
	info.format = IMG_PNG;
	p = (struct params){.w = 400, .any = true};
	budget_decoded(&info, &p, &w, &h);
	CHECK(w == 6000 && h == 4000, "a PNG decodes at full size: %lux%lu", w, h);
}

static void measured(void)
{
	/* VmHWM above an idle worker (20 MB), README "Memory". */
	near_measured("24 MP PNG downscaled to 2000", cost(IMG_PNG, 6000, 4000, 1, (struct params){.w = 2000}),
		      320 * MB);
	near_measured("24 MP PNG rotated", cost(IMG_PNG, 6000, 4000, 1, (struct params){.rotate = 90}),
		      470 * MB);
	near_measured("24 MP PNG as WebP", cost(IMG_PNG, 6000, 4000, 1, (struct params){.fm = FM_WEBP}),
		      400 * MB);
	near_measured("24 MP progressive JPEG rotated",
		      cost(IMG_JPEG, 6000, 4000, 1, (struct params){.rotate = 90}), 450 * MB);
	near_measured("24 MP JPEG as WebP", cost(IMG_JPEG, 6000, 4000, 1, (struct params){.fm = FM_WEBP}),
		      360 * MB);
	near_measured("1x1 PNG filled to 3840x2160",
		      cost(IMG_PNG, 1, 1, 1, (struct params){.w = 3840, .h = 2160, .fit = FIT_FILL}),
		      66 * MB);
	CHECK(cost(IMG_JPEG, 4000, 3000, 6, (struct params){.w = 2000}) <
		  cost(IMG_PNG, 4000, 3000, 6, (struct params){.w = 2000}),
	      "a JPEG decoded at reduced scale costs less than a PNG of its size");
	CHECK(cost(IMG_JPEG, 4000, 3000, 6, (struct params){.w = 2000}) >
		  cost(IMG_JPEG, 4000, 3000, 1, (struct params){.w = 2000}),
	      "an EXIF orientation costs a turned copy");
}

static void refusals(void)
{
	struct probe_info one = {IMG_PNG, 1, 1, 1};
	struct probe_info big = {IMG_PNG, 6000, 4000, 1};
	struct params fill = {.w = 4000, .h = 4000, .fit = FIT_FILL, .any = true};
	const char *message = NULL;
	long long need;

	CHECK(budget_check(&one, &fill, 100, &defaults, &need, &message) == ST_BAD_REQUEST &&
		  message,
	      "1x1 filled to 4000x4000 (16 MP > max_output_pixels): 400 with a message");
	fill.w = 3840;
	fill.h = 2160;
	message = NULL;
	CHECK(budget_check(&one, &fill, 100, &defaults, &need, &message) == ST_OK && !message,
	      "1x1 filled to 3840x2160 (== max_output_pixels): admitted");
	fill.w = 3000;
	fill.h = 3000;
	struct probe_info photo = {IMG_JPEG, 4000, 3000, 1};
	CHECK(budget_check(&photo, &fill, 100, &defaults, &need, &message) == ST_OK,
	      "a 12 MP photo filled to 3000x3000 (9 MP > max_output_pixels) enlarges nothing: "
	      "admitted");

	struct params clamp = {.w = 2000, .any = true};
	enum status st = budget_check(&big, &clamp, 1000000, &defaults, &need, &message);
	CHECK(st == ST_OK,
	      "the plain GET (w=2000) of a 24 MP PNG (max_source_pixels) fits the default budget "
	      "(%lld MB)",
	      need / MB);
	struct params turn = {.rotate = 90, .any = true};
	message = NULL;
	st = budget_check(&big, &turn, 1000000, &defaults, &need, &message);
	CHECK(st == ST_TOO_LARGE && message,
	      "its full-size rotation (%lld MB) does not: 413 with a message", need / MB);
	CHECK(budget_check(&big, &clamp, 60 * MB, &defaults, &need, &message) == ST_TOO_LARGE,
	      "the source's own bytes count");
}

void unit_budget(void)
{
	decoded();
	measured();
	refusals();
}
