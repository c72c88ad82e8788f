/*
 * img.h - the GraphicsMagick shell: decode, orient, resize, encode.
 *
 * Only bytes that probe_image() recognised reach this module, and the
 * decoder is forced to the probed format so GraphicsMagick never guesses.
 * Resource limits (pixels, memory, no disk) are set once by img_init as a
 * second fence behind the header checks.
 */
#ifndef IMGSVC_IMG_H
#define IMGSVC_IMG_H

#include <stddef.h>

#include "probe.h"
#include "status.h"

struct img_output {
	void *data; /* owned; release with img_output_free */
	size_t len;
	enum img_format format;
	unsigned long width, height;
};

struct img_limits {
	long long max_pixels;
};

void img_init(const char *argv0, const struct img_limits *limits);
void img_shutdown(void);

/*
 * Decodes src (whose header probe_image() read into info), applies its EXIF
 * orientation, downscales it to max_width if it is wider, strips metadata
 * (keeping an ICC profile) and encodes it in the same format. The JPEG
 * decoder is told the target size so it decodes at a reduced DCT scale.
 * Returns ST_OK, or an error status with *why for the log.
 */
enum status img_clamp_width(const void *src, size_t len, const struct probe_info *info,
			    unsigned long max_width, struct img_output *out, const char **why);
void img_output_free(struct img_output *out);

#endif
