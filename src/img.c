/*
 * img.c - GraphicsMagick calls for the image pipeline (see img.h).
 *
 * Each step replaces the current image with a new one and destroys the old,
 * so exactly one Image is alive between steps and one exit path frees it;
 * the encoded blob is the one thing handed on, and img_output_free releases
 * it.
 */
#include "img.h"

#include <magick/api.h>
#include <stdio.h>
#include <string.h>

#include "geom.h"

void img_init(const char *argv0, const struct img_limits *limits)
{
	InitializeMagick(argv0);
	/* Pixels, width and height are checked image by image. */
	SetMagickResourceLimit(PixelsResource, limits->max_pixels);
	/*
	 * Memory, map and disk are sums over the whole process, every thread's
	 * images together (one counter each, under a lock): GraphicsMagick has
	 * no limit per image or per thread. A process has at most concurrent
	 * images in work (the image slots it may hold), each admitted only
	 * when budget.c's estimate of it is within image_memory, so the sum is
	 * the fence behind those estimates: an image past it fails with a
	 * resource error (413) instead of growing the process.
	 */
	int n = limits->concurrent > 0 ? limits->concurrent : 1;
	SetMagickResourceLimit(MemoryResource, limits->image_memory * n);
	/* Heap only: no anonymous maps, no pixel cache in files on disk. */
	SetMagickResourceLimit(MapResource, 0);
	SetMagickResourceLimit(DiskResource, 0);
	/* One thread an image: image_workers slots share out the cores. */
	SetMagickResourceLimit(ThreadsResource, 1);
}

/*
 * GraphicsMagick's parallel loops are OpenMP's, and OpenMP keeps the
 * number of threads per thread: the limit img_init set holds for the
 * thread that called it, and every other thread would use all the cores
 * on each image. Each serving thread sets its own.
 */
void img_thread_init(void)
{
	SetMagickResourceLimit(ThreadsResource, 1);
}

void img_shutdown(void)
{
	DestroyMagick();
}

/*
 * Strips every profile, comment and text attribute but the ICC colour
 * profile. The attributes are the decoder's notes (JPEG-Quality,
 * JPEG-Colorspace, JPEG-Sampling-factors, EXIFOrientation, ...), which
 * the PNG encoder would write out as text chunks.
 */
static void strip_keep_icc(Image *im, bool keep_icc)
{
	size_t icc_len = 0;
	const unsigned char *icc = keep_icc ? GetImageProfile(im, "ICC", &icc_len) : NULL;
	unsigned char *copy = NULL;

	if (icc && icc_len) {
		copy = MagickMalloc(icc_len);
		if (copy)
			memcpy(copy, icc, icc_len);
	}
	StripImage(im);
	DestroyImageAttributes(im);
	if (copy) {
		SetImageProfile(im, "ICC", copy, icc_len);
		MagickFree(copy);
	}
}

/* Replaces *im with next (when next is not NULL); false on failure. */
static bool step(Image **im, Image *next)
{
	if (!next)
		return false;
	DestroyImageList(*im);
	*im = next;
	return true;
}

static enum img_format output_format(const struct params *p, enum img_format source,
				     const Image *im)
{
	switch (p->fm) {
	case FM_JPEG:
		return IMG_JPEG;
	case FM_PNG:
		return IMG_PNG;
	case FM_WEBP:
		return IMG_WEBP;
	case FM_AUTO:
		return im->matte ? IMG_PNG : IMG_JPEG;
	case FM_SOURCE:
		break;
	}
	/* One frame of a GIF is better kept as PNG than re-quantised. */
	return source == IMG_GIF ? IMG_PNG : source;
}

/*
 * The JPEG decoder's size hint, in stored orientation: the smallest size
 * the decoded image may have and still cover the planned output.
 */
static void jpeg_hint(ImageInfo *ii, const struct probe_info *info, const struct params *p)
{
	bool swap =
	    geom_orientation_swaps(info->orientation) ^ (p->rotate == 90 || p->rotate == 270);
	unsigned long W = swap ? info->height : info->width;
	unsigned long H = swap ? info->width : info->height;
	struct geom g;
	char hint[64];

	geom_plan(W, H, p, &g);
	if (g.scale_w >= W && g.scale_h >= H)
		return;
	snprintf(hint, sizeof hint, "%lux%lu", swap ? g.scale_h : g.scale_w,
		 swap ? g.scale_w : g.scale_h);
	CloneString(&ii->size, hint);
	/*
	 * Chroma is about to be scaled down with everything else: the smooth
	 * ("fancy") upsampling of the subsampled colour planes buys nothing
	 * visible and costs about 3% of the decode (libvips skips it too when
	 * it shrinks on load).
	 */
	ExceptionInfo ex;
	GetExceptionInfo(&ex);
	AddDefinitions(ii, "jpeg:fancy-upsampling=false", &ex);
	DestroyExceptionInfo(&ex);
}

/*
 * Only a resource limit means "too large". Every error class lies in
 * 400..499 (ResourceLimitError is 400 itself), so a range test counted a
 * corrupt body (CorruptImageError, 425) as a limit and answered 413 for
 * garbage behind a valid 16x16 header.
 */
static bool resource_error(const ExceptionInfo *ex)
{
	return ex->severity == ResourceLimitError;
}

/*
 * A warning left by the decoder that means the pixels are not the file's:
 * truncation ("premature end of file", "unexpected end of file") and
 * corrupt data are reported as CorruptImageWarning, and a short blob as
 * BlobWarning; GraphicsMagick then fills the missing rows with grey and
 * returns an image. Other warnings (an unknown EXIF or TIFF tag, an
 * unsupported option, a missing colour profile delegate) leave the pixels
 * intact and stay harmless.
 */
static bool damage_warning(const ExceptionInfo *ex)
{
	return ex->severity == CorruptImageWarning || ex->severity == BlobWarning;
}

enum status img_transform(const void *src, size_t len, const struct probe_info *info,
			  const struct params *p, int quality, struct img_output *out,
			  const char **why)
{
	ExceptionInfo ex;
	ImageInfo *ii = CloneImageInfo(NULL);
	Image *im = NULL;
	enum status st = ST_INTERNAL;
	struct geom g;

	memset(out, 0, sizeof *out);
	GetExceptionInfo(&ex);
	if (info->format == IMG_PNG && !probe_png_chunks_fit(src, len)) {
		*why = "a PNG chunk is longer than the file";
		st = ST_UNSUPPORTED;
		goto out;
	}
	/* "JPEG:" forces the decoder: GraphicsMagick does not sniff the bytes. */
	snprintf(ii->filename, sizeof ii->filename, "%s:source", probe_magick(info->format));
	ii->subimage = 0;
	ii->subrange = 1; /* first frame of an animation */
	if (info->format == IMG_JPEG)
		jpeg_hint(ii, info, p);
	im = BlobToImage(ii, src, len, &ex);
	if (!im) {
		*why = "source could not be decoded";
		st = resource_error(&ex) ? ST_TOO_LARGE : ST_UNSUPPORTED;
		goto out;
	}
	if (damage_warning(&ex)) {
		*why = "source is truncated or corrupt";
		st = ST_UNSUPPORTED;
		goto out;
	}
	if (im->orientation > TopLeftOrientation) {
		if (!step(&im, AutoOrientImage(im, im->orientation, &ex))) {
			*why = "orientation failed";
			goto out;
		}
		im->orientation = TopLeftOrientation;
	}
	if (p->rotate && !step(&im, RotateImage(im, p->rotate, &ex))) {
		*why = "rotation failed";
		goto out;
	}
	bool was_cmyk = im->colorspace == CMYKColorspace;
	if (was_cmyk)
		TransformColorspace(im, RGBColorspace);
	geom_plan(im->columns, im->rows, p, &g);
	/*
	 * Lanczos for large reductions; for the last step after a JPEG was
	 * decoded at reduced DCT scale (at most halving), Catmull-Rom looks the
	 * same and costs less (measured: 35.0 vs 36.7 ms per 12 MP photo).
	 */
	FilterTypes filter = g.scale_w * 2 >= im->columns ? CatromFilter : LanczosFilter;
	if ((g.scale_w != im->columns || g.scale_h != im->rows) &&
	    !step(&im, ResizeImage(im, g.scale_w, g.scale_h, filter, 1.0, &ex))) {
		*why = "resize failed";
		goto out;
	}
	if (g.crop_w != g.scale_w || g.crop_h != g.scale_h) {
		RectangleInfo r = {g.crop_w, g.crop_h, (long)(g.scale_w - g.crop_w) / 2,
				   (long)(g.scale_h - g.crop_h) / 2};
		if (!step(&im, CropImage(im, &r, &ex))) {
			*why = "crop failed";
			goto out;
		}
		/* Forget the crop's offset within the larger canvas. */
		im->page.x = im->page.y = 0;
		im->page.width = im->columns;
		im->page.height = im->rows;
	}
	out->format = output_format(p, info->format, im);
	if (out->format == IMG_JPEG && im->matte) {
		im->background_color.red = im->background_color.green = MaxRGB;
		im->background_color.blue = MaxRGB;
		im->background_color.opacity = OpaqueOpacity;
		if (!step(&im, FlattenImages(im, &ex))) {
			*why = "flatten failed";
			goto out;
		}
		im->matte = MagickFalse;
	}
	/* A CMYK profile describes pixels that are no longer there. */
	strip_keep_icc(im, !was_cmyk);
	if (out->format != IMG_PNG)
		ii->quality = (unsigned long)quality;
	snprintf(ii->filename, sizeof ii->filename, "%s:out", probe_magick(out->format));
	snprintf(im->magick, sizeof im->magick, "%s", probe_magick(out->format));
	out->data = ImageToBlob(ii, im, &out->len, &ex);
	if (!out->data || !out->len) {
		*why = "encode failed";
		goto out;
	}
	out->width = im->columns;
	out->height = im->rows;
	st = ST_OK;
out:
	/* Any step past GraphicsMagick's memory or pixel limits: too large, not broken. */
	if (st == ST_INTERNAL && resource_error(&ex))
		st = ST_TOO_LARGE;
	if (im)
		DestroyImageList(im);
	DestroyImageInfo(ii);
	DestroyExceptionInfo(&ex);
	if (st != ST_OK)
		img_output_free(out);
	return st;
}

void img_output_free(struct img_output *out)
{
	if (out->data)
		MagickFree(out->data);
	out->data = NULL;
	out->len = 0;
}
