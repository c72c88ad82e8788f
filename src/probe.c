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
