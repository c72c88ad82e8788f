/*
 * unit_geom.c - output sizes for every fit mode, and no enlargement.
 */
#include "geom.h"
#include "unit.h"

static void expect(const char *label, unsigned long W, unsigned long H, unsigned long w,
		   unsigned long h, enum fit_mode fit, unsigned long sw, unsigned long sh,
		   unsigned long cw, unsigned long ch)
{
	struct params p = {.w = w, .h = h, .fit = fit, .any = true};
	struct geom g;
	geom_plan(W, H, &p, &g);
	CHECK(g.scale_w == sw && g.scale_h == sh && g.crop_w == cw && g.crop_h == ch,
	      "%s: %lux%lu -> scale %lux%lu crop %lux%lu (want %lux%lu, %lux%lu)", label, W, H,
	      g.scale_w, g.scale_h, g.crop_w, g.crop_h, sw, sh, cw, ch);
}

void unit_geom(void)
{
	expect("w only", 4000, 3000, 400, 0, FIT_INSIDE, 400, 300, 400, 300);
	expect("h only", 4000, 3000, 0, 300, FIT_INSIDE, 400, 300, 400, 300);
	expect("w only ignores fill", 4000, 3000, 400, 0, FIT_FILL, 400, 300, 400, 300);
	expect("inside, width binds", 4000, 3000, 400, 400, FIT_INSIDE, 400, 300, 400, 300);
	expect("inside, height binds", 4000, 3000, 800, 300, FIT_INSIDE, 400, 300, 400, 300);
	expect("cover", 4000, 3000, 400, 400, FIT_COVER, 533, 400, 400, 400);
	expect("cover, wide box", 4000, 3000, 800, 100, FIT_COVER, 800, 600, 800, 100);
	expect("fill", 4000, 3000, 400, 400, FIT_FILL, 400, 400, 400, 400);
	expect("inside never enlarges", 200, 100, 400, 400, FIT_INSIDE, 200, 100, 200, 100);
	expect("w only never enlarges", 200, 100, 400, 0, FIT_INSIDE, 200, 100, 200, 100);
	expect("cover never enlarges, crops to the box", 200, 100, 150, 150, FIT_COVER, 200, 100,
	       150, 100);
	expect("fill enlarges when asked", 200, 100, 400, 300, FIT_FILL, 400, 300, 400, 300);
	expect("tiny result is at least 1 px", 4000, 10, 40, 0, FIT_INSIDE, 40, 1, 40, 1);
	CHECK(geom_orientation_swaps(6) && geom_orientation_swaps(8) && geom_orientation_swaps(5) &&
		  geom_orientation_swaps(7) && !geom_orientation_swaps(1) && !geom_orientation_swaps(3),
	      "orientations 5-8 swap width and height");
}
