/*
 * probe.h - what an image is and how big, from its first bytes.
 *
 * Reads only the header: the magic bytes decide the format (JPEG, PNG, GIF,
 * WebP; nothing else is ever handed to GraphicsMagick), and the dimensions
 * come from the JPEG SOF marker, the PNG IHDR chunk, the GIF logical screen
 * or the WebP VP8/VP8L/VP8X header. Like nginx's image_filter, this lets the
 * service refuse a pixel bomb before a single pixel is decoded.
 */
#ifndef IMGSVC_PROBE_H
#define IMGSVC_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

enum img_format { IMG_UNKNOWN, IMG_JPEG, IMG_PNG, IMG_GIF, IMG_WEBP };

enum probe_result {
	PROBE_OK,        /* format and dimensions known */
	PROBE_NEED_MORE, /* the header goes on past the bytes given */
	PROBE_UNKNOWN,   /* not an allowed format, or a broken header */
};

struct probe_info {
	enum img_format format;
	unsigned long width, height; /* as stored, before EXIF orientation */
	int orientation;             /* EXIF Orientation 1..8 (JPEG); 1 when absent */
};

enum probe_result probe_image(const unsigned char *p, size_t len, struct probe_info *info);

/*
 * Whether a probed source may be decoded (the configured limits, checked
 * before GraphicsMagick sees a byte): r is PROBE_OK for an allowed format
 * (formats holds a bit 1 << format for each), width x height is at most
 * max_pixels, and bytes (-1 when unknown) is at most max_bytes. Returns
 * ST_OK, ST_UNSUPPORTED or ST_TOO_LARGE with *why set for the log.
 */
enum status probe_admit(enum probe_result r, const struct probe_info *info, unsigned formats,
			long long max_pixels, long long bytes, long long max_bytes,
			const char **why);
/*
 * false when a PNG chunk in p[0..len) declares more bytes than the whole
 * file has. libpng (through GraphicsMagick) allocates and fills a chunk's
 * declared length before it finds the file too short: a few hundred bytes
 * claiming a 2 GB tEXt chunk cost 2 GB of memory. Refused, no chunk can
 * cost more than the source's own size (max_source_bytes). A file cut
 * short inside a chunk of plausible length still passes, as before.
 */
bool probe_png_chunks_fit(const unsigned char *p, size_t len);

/* "image/jpeg", ...; NULL for IMG_UNKNOWN. */
const char *probe_mime(enum img_format f);
/* "JPEG", "PNG", "GIF", "WEBP": GraphicsMagick's names; NULL for unknown. */
const char *probe_magick(enum img_format f);

#endif
