/*
 * strip.c - metadata left out of an original (see strip.h).
 *
 * Each walker copies block by block into out and leaves out the metadata
 * blocks; whatever it cannot parse any further is copied as it is.
 */
#include "strip.h"

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

static unsigned long le32(const unsigned char *p)
{
	return (unsigned long)p[3] << 24 | (unsigned long)p[2] << 16 | (unsigned long)p[1] << 8 |
	       p[0];
}

static bool starts(const unsigned char *p, size_t n, const char *s)
{
	size_t k = strlen(s);
	return n >= k && memcmp(p, s, k) == 0;
}

/* ---------------------------------------------------------------- JPEG --- */

/* An APP1 segment of an Exif block holding the Orientation tag alone. */
static void exif_orientation(struct buf *out, int orientation)
{
	static const unsigned char head[] = {
	    0xFF, 0xE1, 0x00, 34,                  /* APP1, length 2 + 32 */
	    'E',  'x',  'i',  'f', 0, 0,           /* Exif identifier */
	    'M',  'M',  0,    42,  0, 0, 0, 8,     /* big-endian TIFF, IFD0 at 8 */
	    0,    1,                               /* one entry */
	    0x01, 0x12, 0,    3,   0, 0, 0, 1,     /* Orientation, SHORT, 1 value */
	};
	unsigned char tail[] = {0, (unsigned char)orientation, 0, 0, 0, 0, 0, 0}; /* value; no next IFD */
	buf_append(out, head, sizeof head);
	buf_append(out, tail, sizeof tail);
}

/* Whether a JPEG segment (marker m, payload p of n bytes) is metadata. */
static bool jpeg_meta(unsigned m, const unsigned char *p, size_t n)
{
	if (m == 0xFE)
		return true; /* COM */
	if (m < 0xE0 || m > 0xEF)
		return false;
	switch (m) {
	case 0xE0: /* JFIF, JFXX */
	case 0xEE: /* Adobe: the colour transform of the scan */
		return false;
	case 0xE2:
		return !starts(p, n, "ICC_PROFILE"); /* keep the colours; MPF, FlashPix go */
	default:
		return true;
	}
}

static void strip_jpeg(const unsigned char *s, size_t len, int orientation, struct buf *out)
{
	bool oriented = orientation < 2 || orientation > 8;
	size_t i = 2;

	buf_append(out, s, 2); /* SOI */
	while (i + 4 <= len && s[i] == 0xFF) {
		unsigned m = s[i + 1];
		if (m == 0xFF) { /* fill byte: padding, left out with what it padded */
			i++;
			continue;
		}
		if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { /* no length */
			buf_append(out, s + i, 2);
			i += 2;
			continue;
		}
		size_t n = be16(s + i + 2);
		if (n < 2 || i + 2 + n > len || m == 0xDA || m == 0xD9)
			break; /* the scan (copied as it is), the end, or a broken length */
		const unsigned char *p = s + i + 4;
		if (jpeg_meta(m, p, n - 2)) {
			/* The orientation survives the Exif block that carried it. */
			if (!oriented && m == 0xE1 && starts(p, n - 2, "Exif")) {
				exif_orientation(out, orientation);
				oriented = true;
			}
		} else {
			buf_append(out, s + i, 2 + n);
		}
		i += 2 + n;
	}
	buf_append(out, s + i, len - i);
}

/* ----------------------------------------------------------------- PNG --- */

static bool png_meta(const unsigned char *type)
{
	static const char *const drop[] = {"tEXt", "zTXt", "iTXt", "eXIf", "tIME"};
	for (size_t k = 0; k < sizeof drop / sizeof *drop; k++)
		if (memcmp(type, drop[k], 4) == 0)
			return true;
	return false;
}

static void strip_png(const unsigned char *s, size_t len, struct buf *out)
{
	size_t i = 8;

	buf_append(out, s, 8); /* signature */
	while (i + 12 <= len) {
		unsigned long n = be32(s + i);
		if (n > len - i - 12)
			break;
		if (!png_meta(s + i + 4))
			buf_append(out, s + i, 12 + n);
		i += 12 + n;
		if (memcmp(s + i - 8 - n, "IEND", 4) == 0)
			break;
	}
	buf_append(out, s + i, len - i);
}

/* ---------------------------------------------------------------- WebP --- */

static void strip_webp(const unsigned char *s, size_t len, struct buf *out)
{
	size_t start = out->len, i = 12, vp8x = 0;
	bool have_vp8x = false;

	buf_append(out, s, 12); /* RIFF, size (set below), WEBP */
	while (i + 8 <= len) {
		unsigned long n = le32(s + i + 4);
		size_t padded = n + (n & 1);
		if (n > len - i - 8 || padded > len - i - 8) {
			if (n <= len - i - 8)
				padded = n; /* the last chunk without its pad byte */
			else
				break;
		}
		bool meta = memcmp(s + i, "EXIF", 4) == 0 || memcmp(s + i, "XMP ", 4) == 0;
		if (!meta) {
			if (memcmp(s + i, "VP8X", 4) == 0 && n >= 1 && !have_vp8x) {
				have_vp8x = true;
				vp8x = out->len + 8;
			}
			buf_append(out, s + i, 8 + padded);
		}
		i += 8 + padded;
	}
	buf_append(out, s + i, len - i);
	unsigned char *o = (unsigned char *)out->data + start;
	if (have_vp8x)
		o[vp8x - start] &= (unsigned char)~0x0C; /* the EXIF (8) and XMP (4) flags */
	unsigned long size = (unsigned long)(out->len - start - 8);
	o[4] = (unsigned char)size;
	o[5] = (unsigned char)(size >> 8);
	o[6] = (unsigned char)(size >> 16);
	o[7] = (unsigned char)(size >> 24);
}

/* ----------------------------------------------------------------- GIF --- */

/* The length of the sub-blocks at s[i..) up to and with their terminator; 0: cut off. */
static size_t gif_sub_blocks(const unsigned char *s, size_t len, size_t i)
{
	size_t j = i;
	while (j < len) {
		if (s[j] == 0)
			return j + 1 - i;
		j += 1 + (size_t)s[j];
	}
	return 0;
}

static void strip_gif(const unsigned char *s, size_t len, struct buf *out)
{
	size_t i = 13;
	if (len < 13) {
		buf_append(out, s, len);
		return;
	}
	if (s[10] & 0x80)
		i += 3u << ((s[10] & 7) + 1); /* global colour table */
	if (i > len)
		i = len;
	buf_append(out, s, i);
	while (i < len) {
		if (s[i] == 0x3B) /* trailer */
			break;
		if (s[i] == 0x21 && i + 2 < len) {
			unsigned label = s[i + 1];
			size_t n = gif_sub_blocks(s, len, i + 2);
			if (!n)
				break;
			const unsigned char *id = s + i + 3; /* an application's identifier */
			size_t idn = s[i + 2];
			bool meta = label == 0xFE ||
				    (label == 0xFF &&
				     !(idn == 11 && i + 3 + 11 <= len &&
				       (memcmp(id, "NETSCAPE2.0", 11) == 0 ||
					memcmp(id, "ANIMEXTS1.0", 11) == 0 ||
					memcmp(id, "ICCRGBG1012", 11) == 0)));
			if (!meta)
				buf_append(out, s + i, 2 + n);
			i += 2 + n;
			continue;
		}
		if (s[i] == 0x2C && i + 11 <= len) { /* an image: descriptor, table, LZW data */
			size_t j = i + 10;
			if (s[i + 9] & 0x80)
				j += 3u << ((s[i + 9] & 7) + 1);
			if (j + 1 > len)
				break;
			size_t n = gif_sub_blocks(s, len, j + 1);
			if (!n)
				break;
			buf_append(out, s + i, j + 1 + n - i);
			i = j + 1 + n;
			continue;
		}
		break;
	}
	buf_append(out, s + i, len - i);
}

bool strip_metadata(const unsigned char *src, size_t len, enum img_format f, int orientation,
		    struct buf *out)
{
	size_t start = out->len;
	/* Only a file that starts as its format says is walked. */
	if (f == IMG_JPEG && starts(src, len, "\xFF\xD8"))
		strip_jpeg(src, len, orientation, out);
	else if (f == IMG_PNG && starts(src, len, "\x89PNG\r\n\x1A\n"))
		strip_png(src, len, out);
	else if (f == IMG_WEBP && len >= 12 && starts(src, len, "RIFF") &&
		 memcmp(src + 8, "WEBP", 4) == 0)
		strip_webp(src, len, out);
	else if (f == IMG_GIF && starts(src, len, "GIF8"))
		strip_gif(src, len, out);
	else
		buf_append(out, src, len);
	return out->len - start != len || memcmp(out->data + start, src, len) != 0;
}
