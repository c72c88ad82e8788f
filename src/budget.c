/*
 * budget.c - the memory a transformation will take (see budget.h).
 *
 * The constants are bytes, measured on GraphicsMagick 1.3.40 (Q16) with
 * libpng 1.6, libjpeg-turbo 2.1 and libwebp 1.2 (Debian 12), rounded up:
 * for a 24 MP source, the plain downscale of a PNG took 320 MB above the
 * idle worker, its rotation 470 MB, a full-size WebP of it 400 MB, the
 * rotation of a progressive JPEG 450 MB. The estimate of each is a little
 * above the measurement (tests/unit_budget.c holds them side by side).
 */
#include "budget.h"

#include "geom.h"

#define PIXEL_BYTES 8            /* GraphicsMagick Q16: four 16-bit samples */
#define SLACK (16LL * 1024 * 1024) /* the codecs' fixed tables, the heap's rounding */

/* What a decoder keeps besides the pixel cache, per pixel of the source as stored. */
static long long decoder_bytes(enum img_format f)
{
	switch (f) {
	case IMG_PNG:
	case IMG_WEBP:
		return 4; /* rows, or the whole image, as RGBA */
	case IMG_JPEG:
		return 3; /* a progressive file's coefficients: 2 bytes for 1.5 samples */
	case IMG_GIF:
		return 2;
	default:
		return 4;
	}
}

/* What an encoder keeps, and the encoded blob, per output pixel. */
static long long encoder_bytes(enum img_format f)
{
	switch (f) {
	case IMG_JPEG:
		return 1;
	case IMG_WEBP:
		return 6; /* ARGB and YUV copies of the picture */
	default:
		return 4; /* PNG: filtered rows and a blob that may be as big as RGBA */
	}
}

static enum img_format output_format(const struct params *p, enum img_format source)
{
	switch (p->fm) {
	case FM_JPEG:
		return IMG_JPEG;
	case FM_WEBP:
		return IMG_WEBP;
	case FM_PNG:
	case FM_AUTO: /* JPEG or PNG: the dearer */
		return IMG_PNG;
	case FM_SOURCE:
		break;
	}
	return source == IMG_GIF ? IMG_PNG : source;
}

/* true when the image is shown turned a quarter: width and height swap. */
static bool swaps(const struct probe_info *info, const struct params *p)
{
	return geom_orientation_swaps(info->orientation) ^ (p->rotate == 90 || p->rotate == 270);
}

void budget_decoded(const struct probe_info *info, const struct params *p, unsigned long *dw,
		    unsigned long *dh)
{
	unsigned long W = info->width, H = info->height;
	*dw = W;
	*dh = H;
	if (info->format != IMG_JPEG || !W || !H)
		return;
	/* The size hint img.c gives the decoder, in stored orientation. */
	bool swap = swaps(info, p);
	struct geom g;
	geom_plan(swap ? H : W, swap ? W : H, p, &g);
	unsigned long hw = swap ? g.scale_h : g.scale_w, hh = swap ? g.scale_w : g.scale_h;
	if (hw >= W && hh >= H)
		return;
	/*
	 * GraphicsMagick asks libjpeg for 1/denom, denom the smaller of the
	 * two ratios rounded down; libjpeg then takes the smallest m/8 not
	 * below it, and rounds the sides up.
	 */
	double rw = (double)W / (double)(hw ? hw : 1), rh = (double)H / (double)(hh ? hh : 1);
	unsigned long denom = (unsigned long)(rw < rh ? rw : rh);
	if (denom < 1)
		denom = 1;
	unsigned long m = (8 + denom - 1) / denom;
	if (m > 8)
		m = 8;
	*dw = (W * m + 7) / 8;
	*dh = (H * m + 7) / 8;
}

long long budget_bytes(const struct probe_info *info, const struct params *p,
		       long long source_bytes)
{
	unsigned long dw, dh;
	budget_decoded(info, p, &dw, &dh);
	bool swap = swaps(info, p);
	unsigned long W = swap ? dh : dw, H = swap ? dw : dh; /* as shown */
	struct geom g;
	geom_plan(W, H, p, &g);

	long long D = (long long)dw * (long long)dh;
	long long O = (long long)g.scale_w * (long long)g.scale_h;
	long long C = (long long)g.crop_w * (long long)g.crop_h;
	/* A resize holds its source, the first pass's result and the output. */
	long long work = 0;
	if (g.scale_w != W || g.scale_h != H) {
		long long a = (long long)g.scale_w * (long long)H, b = (long long)W * (long long)g.scale_h;
		work = D + (a < b ? a : b) + O;
	}
	/* A crop, or a JPEG's flatten onto white, holds the image and its result. */
	enum img_format out = output_format(p, info->format);
	if (C != O && O + C > work)
		work = O + C;
	if (out == IMG_JPEG && 2 * O > work)
		work = 2 * O;
	/* A turn (EXIF orientation, rotate) holds the image and the turned copy. */
	long long turn = (info->orientation > 1 || p->rotate) ? 2 * D : D;
	long long pixels = turn > work ? turn : work;
	long long stored = (long long)info->width * (long long)info->height;
	return pixels * PIXEL_BYTES + stored * decoder_bytes(info->format) +
	       O * encoder_bytes(out) + (source_bytes > 0 ? source_bytes : 0) + SLACK;
}

enum status budget_check(const struct probe_info *info, const struct params *p,
			 long long source_bytes, const struct budget_limits *lim, long long *need,
			 const char **message)
{
	*need = 0;
	if (p->fit == FIT_FILL && p->w && p->h) {
		long long out = (long long)p->w * (long long)p->h;
		long long src = (long long)info->width * (long long)info->height;
		if (out > lim->max_output_pixels && out > src) {
			*message = "Parameters 'w' and 'h' with fit=fill may enlarge an image to at "
				   "most max_output_pixels pixels (w x h)";
			return ST_BAD_REQUEST;
		}
	}
	*need = budget_bytes(info, p, source_bytes);
	if (*need > lim->max_image_memory) {
		*message = "Transforming this image would take more memory than max_image_memory";
		return ST_TOO_LARGE;
	}
	return ST_OK;
}
