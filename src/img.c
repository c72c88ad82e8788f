/*
 * img.c - GraphicsMagick calls for the image pipeline (see img.h).
 *
 * Every GraphicsMagick object made here is destroyed before the function
 * returns, whatever path it takes; the output blob is the one thing handed
 * on, and img_output_free releases it.
 */
#include "img.h"

#include <magick/api.h>
#include <stdio.h>
#include <string.h>

#define JPEG_QUALITY 85

void img_init(const char *argv0, const struct img_limits *limits)
{
	InitializeMagick(argv0);
	SetMagickResourceLimit(PixelsResource, limits->max_pixels);
	/* No pixel cache on disk: an image that does not fit in memory fails. */
	SetMagickResourceLimit(DiskResource, 0);
	/* One worker process per core is the scaling model; see README. */
	SetMagickResourceLimit(ThreadsResource, 1);
}

void img_shutdown(void)
{
	DestroyMagick();
}

/* Strips every profile and comment but the ICC colour profile. */
static void strip_keep_icc(Image *im)
{
	size_t icc_len = 0;
	const unsigned char *icc = GetImageProfile(im, "ICC", &icc_len);
	unsigned char *copy = NULL;

	if (icc && icc_len) {
		copy = MagickMalloc(icc_len);
		if (copy)
			memcpy(copy, icc, icc_len);
	}
	StripImage(im);
	if (copy) {
		SetImageProfile(im, "ICC", copy, icc_len);
		MagickFree(copy);
	}
}

enum status img_clamp_width(const void *src, size_t len, const struct probe_info *info,
			    unsigned long max_width, struct img_output *out, const char **why)
{
	ExceptionInfo ex;
	ImageInfo *ii = CloneImageInfo(NULL);
	Image *im = NULL;
	enum status st = ST_INTERNAL;
	const char *magick = probe_magick(info->format);

	memset(out, 0, sizeof *out);
	GetExceptionInfo(&ex);
	/* "JPEG:" forces the decoder: GraphicsMagick does not sniff the bytes. */
	snprintf(ii->filename, sizeof ii->filename, "%s:source", magick);
	ii->subimage = 0;
	ii->subrange = 1; /* first frame of an animation */
	if (info->format == IMG_JPEG && info->width > max_width) {
		char hint[64];
		unsigned long h =
		    (unsigned long)((double)info->height * max_width / info->width + 0.5);
		snprintf(hint, sizeof hint, "%lux%lu", max_width, h ? h : 1);
		CloneString(&ii->size, hint);
	}
	im = BlobToImage(ii, src, len, &ex);
	if (!im) {
		*why = ex.reason ? "image could not be decoded" : "image decoder failed";
		st = ex.severity >= ResourceLimitError && ex.severity < ResourceLimitError + 100
			 ? ST_TOO_LARGE
			 : ST_UNSUPPORTED;
		goto out;
	}
	if (im->orientation > TopLeftOrientation) {
		Image *oriented = AutoOrientImage(im, im->orientation, &ex);
		if (!oriented) {
			*why = "orientation failed";
			goto out;
		}
		DestroyImage(im);
		im = oriented;
		im->orientation = TopLeftOrientation;
	}
	if (im->columns > max_width) {
		unsigned long h = (unsigned long)((double)im->rows * max_width / im->columns + 0.5);
		Image *resized = ResizeImage(im, max_width, h ? h : 1, LanczosFilter, 1.0, &ex);
		if (!resized) {
			*why = "resize failed";
			goto out;
		}
		DestroyImage(im);
		im = resized;
	}
	strip_keep_icc(im);
	ii->quality = JPEG_QUALITY;
	snprintf(ii->filename, sizeof ii->filename, "%s:out", magick);
	snprintf(im->magick, sizeof im->magick, "%s", magick);
	out->data = ImageToBlob(ii, im, &out->len, &ex);
	if (!out->data || !out->len) {
		*why = "encode failed";
		goto out;
	}
	out->format = info->format;
	out->width = im->columns;
	out->height = im->rows;
	st = ST_OK;
out:
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
