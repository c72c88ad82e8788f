/*
 * geom.c - output geometry (see geom.h).
 */
#include "geom.h"

static unsigned long scaled(unsigned long n, double s)
{
	double v = (double)n * s + 0.5;
	return v < 1 ? 1 : (unsigned long)v;
}

static double min2(double a, double b)
{
	return a < b ? a : b;
}

static double max2(double a, double b)
{
	return a > b ? a : b;
}

void geom_plan(unsigned long W, unsigned long H, const struct params *p, struct geom *g)
{
	double s = 1;

	g->scale_w = W;
	g->scale_h = H;
	if (p->w && p->h && p->fit == FIT_FILL) {
		g->scale_w = p->w;
		g->scale_h = p->h;
	} else if (p->w && p->h && p->fit == FIT_COVER) {
		s = min2(1, max2((double)p->w / W, (double)p->h / H));
	} else if (p->w && p->h) {
		s = min2(1, min2((double)p->w / W, (double)p->h / H));
	} else if (p->w) {
		s = min2(1, (double)p->w / W);
	} else if (p->h) {
		s = min2(1, (double)p->h / H);
	}
	if (!(p->w && p->h && p->fit == FIT_FILL) && s < 1) {
		g->scale_w = scaled(W, s);
		g->scale_h = scaled(H, s);
	}
	g->crop_w = g->scale_w;
	g->crop_h = g->scale_h;
	if (p->w && p->h && p->fit == FIT_COVER) {
		if (g->crop_w > p->w)
			g->crop_w = p->w;
		if (g->crop_h > p->h)
			g->crop_h = p->h;
	}
}

bool geom_orientation_swaps(int orientation)
{
	return orientation >= 5 && orientation <= 8;
}
