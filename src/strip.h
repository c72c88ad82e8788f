/*
 * strip.h - an original without its metadata, byte for byte otherwise.
 *
 * For strip_originals: the file's own structure is walked and the blocks
 * that carry metadata are left out; the image data is copied as it is, so
 * the pixels are exactly the original's, nothing is decoded and the cost
 * is one copy.
 *   JPEG: APP1 (Exif, XMP), APP3..APP13 (IPTC, Photoshop, vendors'),
 *         APP15 and COM segments go; APP0 (JFIF), an APP2 ICC profile and
 *         APP14 (Adobe: how to read the colours) stay. An EXIF orientation
 *         other than 1 is kept, as a new Exif segment holding that tag
 *         alone, so the image still shows upright.
 *   PNG:  tEXt, zTXt, iTXt, eXIf and tIME chunks go.
 *   WebP: EXIF and "XMP " chunks go, and VP8X stops announcing them.
 *   GIF:  comment extensions, and application extensions other than
 *         NETSCAPE2.0 / ANIMEXTS1.0 (looping) and an ICC profile, go.
 * Where the structure breaks off (a truncated or odd file), the rest is
 * copied unchanged.
 *
 * Pure, unit-tested and fuzzed.
 */
#ifndef IMGSVC_STRIP_H
#define IMGSVC_STRIP_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "probe.h"

/*
 * Appends src (an image of format f whose EXIF orientation is
 * orientation, 1..8) without its metadata to out. Returns true when
 * anything was left out, false when out is the original byte for byte.
 */
bool strip_metadata(const unsigned char *src, size_t len, enum img_format f, int orientation,
		    struct buf *out);

#endif
