/*
 * img.h - the GraphicsMagick shell: decode, orient, rotate, resize, encode.
 *
 * Only bytes that probe_image() recognised reach this module, and the
 * decoder is forced to the probed format so GraphicsMagick never guesses.
 * Resource limits (pixels, memory, no map, no disk) are set once by
 * img_init as a second fence behind the header checks and budget.h.
 */
#ifndef IMGSVC_IMG_H
#define IMGSVC_IMG_H

#include <stddef.h>

#include "params.h"
#include "probe.h"
#include "status.h"

struct img_output {
	void *data; /* owned; release with img_output_free */
	size_t len;
	enum img_format format;
	unsigned long width, height;
};

struct img_limits {
	long long max_pixels;   /* the largest image, source or output */
	long long image_memory; /* bytes one image's work may take */
	int concurrent; /* images this process may have in work at once */
};

void img_init(const char *argv0, const struct img_limits *limits);
/* Once in each thread that works on images, before its first image. */
void img_thread_init(void);
void img_shutdown(void);

/*
 * The pipeline, in order: decode src (whose header probe_image() read into
 * info; JPEGs at the smallest DCT scale that still covers the output),
 * apply the EXIF orientation, rotate by p->rotate, convert CMYK to RGB,
 * resize and crop by p->w, p->h and p->fit (see geom.h), strip metadata
 * (keeping an RGB image's ICC profile), encode as p->fm at quality.
 * p->fm: FM_SOURCE keeps the source format (GIF becomes PNG); FM_AUTO means
 * JPEG, or PNG when the image has alpha. A JPEG made from an image with
 * alpha is flattened onto white. Returns ST_OK, or an error status with
 * *why for the log.
 */
enum status img_transform(const void *src, size_t len, const struct probe_info *info,
			  const struct params *p, int quality, struct img_output *out,
			  const char **why);
void img_output_free(struct img_output *out);

#endif
