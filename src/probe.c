/*
 * probe.c - image format and dimensions from header bytes (see probe.h).
 *
 * Every read is bounds-checked against len: this runs on untrusted bytes
 * straight from storage.
 */
#include "probe.h"

#include <string.h>

static unsigned long be16(const unsigned char *p)
{
	return (unsigned long)p[0] << 8 | p[1];
}

static unsigned long be32(const unsigned char *p)
{
	return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 |
	       p[3];
}

static unsigned long le16(const unsigned char *p)
{
	return (unsigned long)p[1] << 8 | p[0];
}

static unsigned long le24(const unsigned char *p)
{
	return (unsigned long)p[2] << 16 | (unsigned long)p[1] << 8 | p[0];
}

static enum probe_result done(struct probe_info *info, unsigned long w, unsigned long h)
{
	if (w == 0 || h == 0)
		return PROBE_UNKNOWN;
	info->width = w;
	info->height = h;
	return PROBE_OK;
}

/* Reads a 16- or 32-bit TIFF value in the byte order of the Exif block. */
static unsigned long tiff_get(const unsigned char *p, int n, bool big_endian)
{
	unsigned long v = 0;
	for (int i = 0; i < n; i++)
		v |= (unsigned long)p[big_endian ? i : n - 1 - i] << (8 * (n - 1 - i));
	return v;
}

/*
 * The Orientation tag (0x0112) of IFD0 in an APP1 "Exif" segment body;
 * 1 when absent or unreadable. Every offset comes from the file: each is
 * checked against the segment's length before use.
 */
static int exif_orientation(const unsigned char *seg, size_t len)
{
	if (len < 14 || memcmp(seg, "Exif\0\0", 6) != 0)
		return 1;
	const unsigned char *tiff = seg + 6;
	size_t tlen = len - 6;
	bool be;
	if (memcmp(tiff, "MM\0*", 4) == 0)
		be = true;
	else if (memcmp(tiff, "II*\0", 4) == 0)
		be = false;
	else
		return 1;
	unsigned long ifd = tiff_get(tiff + 4, 4, be);
	if (ifd > tlen || tlen - ifd < 2)
		return 1;
	unsigned long n = tiff_get(tiff + ifd, 2, be);
	for (unsigned long i = 0; i < n; i++) {
		unsigned long e = ifd + 2 + 12 * i;
		if (e > tlen || tlen - e < 12)
			return 1;
		if (tiff_get(tiff + e, 2, be) == 0x0112 && tiff_get(tiff + e + 2, 2, be) == 3) {
			unsigned long v = tiff_get(tiff + e + 8, 2, be);
			return v >= 1 && v <= 8 ? (int)v : 1;
		}
	}
	return 1;
}

/* Walks JPEG marker segments up to the first SOFn frame header. */
static enum probe_result probe_jpeg(const unsigned char *p, size_t len, struct probe_info *info)
{
	size_t i = 2;
	for (;;) {
		if (i + 2 > len)
			return PROBE_NEED_MORE;
		if (p[i] != 0xFF)
			return PROBE_UNKNOWN;
		unsigned char m = p[i + 1];
		if (m == 0xFF) { /* fill byte */
			i++;
			continue;
		}
		if ((m >= 0xD0 && m <= 0xD7) || m == 0x01) { /* no length */
			i += 2;
			continue;
		}
		if (m == 0xD8 || m == 0xD9 || m == 0xDA)
			return PROBE_UNKNOWN; /* SOI again, EOI or scan before a frame */
		if (i + 4 > len)
			return PROBE_NEED_MORE;
		size_t seglen = be16(p + i + 2);
		if (seglen < 2)
			return PROBE_UNKNOWN;
		if (m == 0xE1 && info->orientation == 1 && i + 2 + seglen <= len)
			info->orientation = exif_orientation(p + i + 4, seglen - 2);
		int is_sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
		if (is_sof) {
			if (seglen < 8)
				return PROBE_UNKNOWN;
			if (i + 9 > len)
				return PROBE_NEED_MORE;
			return done(info, be16(p + i + 7), be16(p + i + 5));
		}
		i += 2 + seglen;
	}
}

static enum probe_result probe_webp(const unsigned char *p, size_t len, struct probe_info *info)
{
	if (len < 30)
		return PROBE_NEED_MORE;
	if (memcmp(p + 12, "VP8 ", 4) == 0) {
		if (p[23] != 0x9D || p[24] != 0x01 || p[25] != 0x2A)
			return PROBE_UNKNOWN;
		return done(info, le16(p + 26) & 0x3FFF, le16(p + 28) & 0x3FFF);
	}
	if (memcmp(p + 12, "VP8L", 4) == 0) {
		if (p[20] != 0x2F)
			return PROBE_UNKNOWN;
		unsigned long bits = (unsigned long)p[21] | (unsigned long)p[22] << 8 |
				     (unsigned long)p[23] << 16 | (unsigned long)p[24] << 24;
		return done(info, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1);
	}
	if (memcmp(p + 12, "VP8X", 4) == 0)
		return done(info, le24(p + 24) + 1, le24(p + 27) + 1);
	return PROBE_UNKNOWN;
}

enum probe_result probe_image(const unsigned char *p, size_t len, struct probe_info *info)
{
	static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

	memset(info, 0, sizeof *info);
	info->orientation = 1;
	if (len < 4)
		return PROBE_NEED_MORE;
	if (p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) {
		info->format = IMG_JPEG;
		return probe_jpeg(p, len, info);
	}
	if (memcmp(p, png_sig, len < 8 ? len : 8) == 0) {
		if (len < 24)
			return PROBE_NEED_MORE;
		info->format = IMG_PNG;
		if (memcmp(p + 12, "IHDR", 4) != 0)
			return PROBE_UNKNOWN;
		unsigned long w = be32(p + 16), h = be32(p + 20);
		if (w > 0x7FFFFFFF || h > 0x7FFFFFFF)
			return PROBE_UNKNOWN;
		return done(info, w, h);
	}
	if (memcmp(p, "GIF8", 4) == 0) {
		if (len < 10)
			return PROBE_NEED_MORE;
		if ((p[4] != '7' && p[4] != '9') || p[5] != 'a')
			return PROBE_UNKNOWN;
		info->format = IMG_GIF;
		return done(info, le16(p + 6), le16(p + 8));
	}
	if (memcmp(p, "RIFF", 4) == 0) {
		if (len < 12)
			return PROBE_NEED_MORE;
		if (memcmp(p + 8, "WEBP", 4) != 0)
			return PROBE_UNKNOWN;
		info->format = IMG_WEBP;
		return probe_webp(p, len, info);
	}
	return PROBE_UNKNOWN;
}

bool probe_png_chunks_fit(const unsigned char *p, size_t len)
{
	/* Signature, then chunks: length (4), type (4), data, CRC (4). */
	for (size_t off = 8; len >= 8 && off <= len - 8;) {
		unsigned long n = be32(p + off);
		if (n > len)
			return false;
		if (memcmp(p + off + 4, "IEND", 4) == 0)
			break;
		off += 12 + n;
	}
	return true;
}

enum status probe_admit(enum probe_result r, const struct probe_info *info, unsigned formats,
			long long max_pixels, long long bytes, long long max_bytes,
			const char **why)
{
	if (r != PROBE_OK || !(formats & (1u << info->format))) {
		*why = "source is not an allowed image format";
		return ST_UNSUPPORTED;
	}
	/* Both at most 2^31 (probe_image refuses more): the product fits. */
	if ((long long)info->width * (long long)info->height > max_pixels) {
		*why = "source over max_source_pixels";
		return ST_TOO_LARGE;
	}
	if (bytes > max_bytes) {
		*why = "source over max_source_bytes";
		return ST_TOO_LARGE;
	}
	return ST_OK;
}

const char *probe_mime(enum img_format f)
{
	static const char *const mime[] = {NULL, "image/jpeg", "image/png", "image/gif",
					   "image/webp"};
	return mime[f];
}

const char *probe_magick(enum img_format f)
{
	static const char *const name[] = {NULL, "JPEG", "PNG", "GIF", "WEBP"};
	return name[f];
}
