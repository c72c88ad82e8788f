/*
 * unit_strip.c - metadata left out of originals, format by format: what
 * goes, what stays byte for byte, the orientation kept, and files that
 * break off.
 */
#include <string.h>

#include "strip.h"
#include "unit.h"

#define SEG(m, ...) 0xFF, m, 0, (unsigned char)(2 + sizeof((unsigned char[]){__VA_ARGS__})), __VA_ARGS__

static bool same(const struct buf *b, const unsigned char *want, size_t n)
{
	return b->len == n && memcmp(b->data, want, n) == 0;
}

static void jpeg(void)
{
	static const unsigned char in[] = {
	    0xFF, 0xD8,
	    SEG(0xE0, 'J', 'F', 'I', 'F', 0),
	    SEG(0xE1, 'E', 'x', 'i', 'f', 0, 0, 'G', 'P', 'S'),
	    SEG(0xE1, 'h', 't', 't', 'p', ':', '/', '/', 'n', 's'),
	    SEG(0xFE, 's', 'e', 'c', 'r', 'e', 't'),
	    SEG(0xE2, 'I', 'C', 'C', '_', 'P', 'R', 'O', 'F', 'I', 'L', 'E', 0, 1, 1, 'p'),
	    SEG(0xE2, 'M', 'P', 'F', 0),
	    SEG(0xED, 'P', 'h', 'o', 't', 'o', 's', 'h', 'o', 'p'),
	    SEG(0xEE, 'A', 'd', 'o', 'b', 'e'),
	    SEG(0xDB, 0, 1, 2),
	    SEG(0xC0, 8, 0, 1, 0, 1, 1, 1, 0x11, 0),
	    SEG(0xDA, 1, 1, 0, 0, 63, 0),
	    0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD9,
	};
	static const unsigned char want[] = {
	    0xFF, 0xD8,
	    SEG(0xE0, 'J', 'F', 'I', 'F', 0),
	    SEG(0xE2, 'I', 'C', 'C', '_', 'P', 'R', 'O', 'F', 'I', 'L', 'E', 0, 1, 1, 'p'),
	    SEG(0xEE, 'A', 'd', 'o', 'b', 'e'),
	    SEG(0xDB, 0, 1, 2),
	    SEG(0xC0, 8, 0, 1, 0, 1, 1, 1, 0x11, 0),
	    SEG(0xDA, 1, 1, 0, 0, 63, 0),
	    0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD9,
	};
	static const unsigned char exif6[] = {
	    0xFF, 0xE1, 0, 34, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8,
	    0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0,
	};
	struct buf out = BUF_INIT;

	CHECK(strip_metadata(in, sizeof in, IMG_JPEG, 1, &out) && same(&out, want, sizeof want),
	      "JPEG: Exif, XMP, COM, MPF and Photoshop segments go; JFIF, ICC, Adobe, the "
	      "tables and the scan stay byte for byte");
	buf_reset(&out);
	CHECK(strip_metadata(in, sizeof in, IMG_JPEG, 6, &out) && out.len == sizeof want + 36 &&
		  memcmp(out.data, want, 11) == 0 && memcmp(out.data + 11, exif6, 36) == 0 &&
		  memcmp(out.data + 47, want + 11, sizeof want - 11) == 0,
	      "orientation 6: kept in an Exif segment of that tag alone, where the Exif was");
	struct buf again = BUF_INIT;
	CHECK(!strip_metadata((unsigned char *)out.data, out.len, IMG_JPEG, 6, &again),
	      "stripping that again changes nothing");
	buf_free(&again);
	buf_reset(&out);
	CHECK(!strip_metadata(want, sizeof want, IMG_JPEG, 1, &out) && same(&out, want, sizeof want),
	      "a JPEG without metadata: unchanged, and said so");
	buf_reset(&out);
	CHECK(strip_metadata(in, 40, IMG_JPEG, 1, &out) && out.len < 40,
	      "cut off inside a segment: what parsed is stripped, the rest copied");
	buf_free(&out);
}

static void chunk(struct buf *b, const char *type, const char *data)
{
	size_t n = strlen(data);
	unsigned char len[4] = {0, 0, 0, (unsigned char)n};
	buf_append(b, len, 4);
	buf_append(b, type, 4);
	buf_append(b, data, n);
	buf_append(b, "CRC!", 4);
}

static void png(void)
{
	struct buf in = BUF_INIT, want = BUF_INIT, out = BUF_INIT;
	buf_append(&in, "\x89PNG\r\n\x1a\n", 8);
	buf_append(&want, "\x89PNG\r\n\x1a\n", 8);
	chunk(&in, "IHDR", "0123456789abc");
	chunk(&want, "IHDR", "0123456789abc");
	chunk(&in, "tEXt", "JPEG-Quality\0100");
	chunk(&in, "eXIf", "MM*");
	chunk(&in, "iCCP", "icc");
	chunk(&want, "iCCP", "icc");
	chunk(&in, "IDAT", "pixels");
	chunk(&want, "IDAT", "pixels");
	chunk(&in, "zTXt", "Author");
	chunk(&in, "iTXt", "XML:com.adobe.xmp");
	chunk(&in, "tIME", "1234567");
	chunk(&in, "IEND", "");
	chunk(&want, "IEND", "");
	CHECK(strip_metadata((unsigned char *)in.data, in.len, IMG_PNG, 1, &out) &&
		  same(&out, (unsigned char *)want.data, want.len),
	      "PNG: tEXt, eXIf, zTXt, iTXt and tIME go, before and after IDAT; the rest stays");
	buf_reset(&out);
	CHECK(!strip_metadata((unsigned char *)want.data, want.len, IMG_PNG, 1, &out),
	      "a PNG without them: unchanged");
	buf_free(&in);
	buf_free(&want);
	buf_free(&out);
}

static void riff(struct buf *b, const char *type, const char *data, size_t n)
{
	unsigned char len[4] = {(unsigned char)n, 0, 0, 0};
	buf_append(b, type, 4);
	buf_append(b, len, 4);
	buf_append(b, data, n);
	if (n & 1)
		buf_append(b, "", 1);
}

static void webp(void)
{
	struct buf in = BUF_INIT, want = BUF_INIT, out = BUF_INIT;
	buf_append(&in, "RIFF\0\0\0\0WEBP", 12);
	buf_append(&want, "RIFF\0\0\0\0WEBP", 12);
	riff(&in, "VP8X", "\x0c\0\0\0\0\0\0\0\0\0", 10);
	riff(&want, "VP8X", "\0\0\0\0\0\0\0\0\0\0", 10);
	riff(&in, "VP8L", "pixels!", 7);
	riff(&want, "VP8L", "pixels!", 7);
	riff(&in, "EXIF", "MM*GPS", 6);
	riff(&in, "XMP ", "<x:xmpmeta/>", 12);
	unsigned long n = (unsigned long)want.len - 8;
	want.data[4] = (char)n;
	n = (unsigned long)in.len - 8;
	in.data[4] = (char)n;
	CHECK(strip_metadata((unsigned char *)in.data, in.len, IMG_WEBP, 1, &out) &&
		  same(&out, (unsigned char *)want.data, want.len),
	      "WebP: EXIF and XMP chunks go, VP8X no longer announces them, the RIFF size "
	      "follows");
	buf_free(&in);
	buf_free(&want);
	buf_free(&out);
}

static void gif(void)
{
	static const unsigned char head[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0,
					     0, 0, 0, 255, 255, 255}; /* 2-colour table */
	static const unsigned char loop[] = {0x21, 0xFF, 11, 'N', 'E', 'T', 'S', 'C', 'A', 'P',
					     'E', '2', '.', '0', 3, 1, 0, 0, 0};
	static const unsigned char xmp[] = {0x21, 0xFF, 11, 'X', 'M', 'P', ' ', 'D', 'a', 't',
					    'a', 'X', 'M', 'P', 2, '<', 'x', 0};
	static const unsigned char com[] = {0x21, 0xFE, 6, 's', 'e', 'c', 'r', 'e', 't', 0};
	static const unsigned char image[] = {0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4C, 0x01, 0,
					      0x3B};
	struct buf in = BUF_INIT, want = BUF_INIT, out = BUF_INIT;
	buf_append(&in, head, sizeof head);
	buf_append(&in, loop, sizeof loop);
	buf_append(&in, xmp, sizeof xmp);
	buf_append(&in, com, sizeof com);
	buf_append(&in, image, sizeof image);
	buf_append(&want, head, sizeof head);
	buf_append(&want, loop, sizeof loop);
	buf_append(&want, image, sizeof image);
	CHECK(strip_metadata((unsigned char *)in.data, in.len, IMG_GIF, 1, &out) &&
		  same(&out, (unsigned char *)want.data, want.len),
	      "GIF: the comment and the XMP application extension go; the loop, the image and "
	      "the trailer stay");
	buf_free(&in);
	buf_free(&want);
	buf_free(&out);
}

void unit_strip(void)
{
	jpeg();
	png();
	webp();
	gif();
}
