/*
 * unit_probe.c - format and dimensions from header bytes, on synthetic
 * headers and on the test photos' first bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"
#include "unit.h"

static void photo(const char *name, enum img_format f, unsigned long w, unsigned long h)
{
	char path[4200];
	unsigned char *data = malloc(1 << 20);
	snprintf(path, sizeof path, "%s/images/%s", unit_datadir(), name);
	FILE *fp = fopen(path, "rb");
	size_t n = fp ? fread(data, 1, 1 << 20, fp) : 0;
	if (fp)
		fclose(fp);
	struct probe_info info;
	enum probe_result r = probe_image(data, n, &info);
	CHECK(r == PROBE_OK && info.format == f && info.width == w && info.height == h,
	      "probe %s: %lux%lu", name, info.width, info.height);
	/* Every prefix shorter than the header asks for more, never guesses. */
	bool prefixes_ok = true;
	for (size_t len = 0; len < 64 && len < n; len++)
		prefixes_ok &= probe_image(data, len, &info) != PROBE_OK || len >= 24;
	CHECK(prefixes_ok, "probe %s: short prefixes need more", name);
	free(data);
}

/* A chunk claiming more than the file (found by fuzz/fuzz_image). */
static void png_chunks(void)
{
	unsigned char png[64] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n',
				 0,    0,   0,   13,  'I',  'H',  'D',  'R'};
	size_t n = 8 + 12 + 13;
	/* A tEXt chunk of 4 bytes, then an IEND. */
	memcpy(png + n, "\0\0\0\4tEXtabcd....\0\0\0\0IEND....", 28);
	CHECK(probe_png_chunks_fit(png, n + 28), "whole PNG: chunks fit");
	CHECK(probe_png_chunks_fit(png, n + 10), "cut inside a short chunk: still fits");
	png[n] = 0x7C; /* tEXt claims 2 GB */
	CHECK(!probe_png_chunks_fit(png, n + 28), "a 2 GB tEXt in a 61-byte file is refused");
	png[n] = 0;
	png[n + 3] = 61; /* exactly the file's size: the bound is the file */
	CHECK(probe_png_chunks_fit(png, n + 28), "a chunk of the file's size passes");
	png[n + 3] = 62;
	CHECK(!probe_png_chunks_fit(png, n + 28), "one byte more than the file is refused");
	CHECK(probe_png_chunks_fit(png, 5), "a stub shorter than the signature passes");
}

/*
 * A JPEG with ten APP2 segments of 65535 bytes (about 640 KiB of metadata)
 * before its frame header: the probe walks them all; any cut before the
 * SOF needs more, never a guess.
 */
static void big_metadata(void)
{
	enum { SEGS = 10, SEG = 2 + 65533 };
	size_t n = 2 + SEGS * SEG + 19;
	unsigned char *j = calloc(1, n);
	struct probe_info info;
	if (!j) {
		CHECK(0, "big_metadata: out of memory");
		return;
	}
	j[0] = 0xFF;
	j[1] = 0xD8;
	for (int s = 0; s < SEGS; s++) {
		unsigned char *q = j + 2 + (size_t)s * SEG;
		q[0] = 0xFF;
		q[1] = 0xE2;
		q[2] = 0xFF;
		q[3] = 0xFD; /* 65533: the length counts itself, not the marker */
	}
	static const unsigned char sof[] = {0xFF, 0xC0, 0x00, 0x11, 8,    0x0B, 0xB8, 0x0F, 0xA0,
					    3,    1,    0x22, 0,    2,    0x11, 1,    3,    0x11, 1};
	memcpy(j + 2 + SEGS * SEG, sof, sizeof sof);
	CHECK(probe_image(j, n, &info) == PROBE_OK && info.format == IMG_JPEG &&
		  info.width == 4000 && info.height == 3000,
	      "JPEG with 640 KiB of APP2 before SOF: 4000x3000");
	CHECK(probe_image(j, 512 * 1024, &info) == PROBE_NEED_MORE,
	      "the same JPEG's first 512 KiB: needs more");
	CHECK(probe_image(j, n - sizeof sof + 6, &info) == PROBE_NEED_MORE,
	      "the same JPEG cut before its dimensions: needs more");
	free(j);
}

void unit_probe(void)
{
	struct probe_info info;
	static const unsigned char png[] = {0x89, 'P', 'N',  'G',  '\r', '\n', 0x1A, '\n',
					    0,    0,   0,    13,   'I',  'H',  'D',  'R',
					    0,    0,   0x4E, 0x20, 0,    0,    0x4E, 0x20};
	static const unsigned char gif[] = {'G', 'I', 'F', '8', '9', 'a', 0x40, 0x01, 0xF0, 0x00};
	static const unsigned char jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 'J',  'F',
					     0xFF, 0xFF, 0xC2, 0x00, 0x0B, 0x08, 0x0B, 0xB8,
					     0x0F, 0xA0, 0x01, 0x01, 0x11, 0x00};
	static const unsigned char webp_lossy[30] = {
	    'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W',  'E',  'B',  'P',  'V',  'P',  '8',
	    ' ', 0,   0,   0,   0, 0, 0, 0, 0x9D, 0x01, 0x2A, 0x20, 0x03, 0x58, 0x02};
	static const unsigned char webp_x[30] = {
	    'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E',  'B',  'P', 'V',  'P',  '8',
	    'X', 10,  0,   0,   0, 0, 0, 0, 0,   0x1F, 0x03, 0,   0x57, 0x02, 0};

	CHECK(probe_image(png, sizeof png, &info) == PROBE_OK && info.format == IMG_PNG &&
		  info.width == 20000 && info.height == 20000,
	      "PNG 20000x20000 read from IHDR");
	CHECK(probe_image(gif, sizeof gif, &info) == PROBE_OK && info.format == IMG_GIF &&
		  info.width == 320 && info.height == 240,
	      "GIF 320x240");
	CHECK(probe_image(jpeg, sizeof jpeg, &info) == PROBE_OK && info.format == IMG_JPEG &&
		  info.width == 4000 && info.height == 3000,
	      "progressive JPEG SOF2 4000x3000 after an APP0 and fill byte");
	CHECK(probe_image(webp_lossy, sizeof webp_lossy, &info) == PROBE_OK &&
		  info.format == IMG_WEBP && info.width == 800 && info.height == 600,
	      "WebP VP8 800x600");
	CHECK(probe_image(webp_x, sizeof webp_x, &info) == PROBE_OK && info.width == 800 &&
		  info.height == 600,
	      "WebP VP8X 800x600");
	CHECK(probe_image(jpeg, 10, &info) == PROBE_NEED_MORE, "cut JPEG header needs more");
	CHECK(probe_image((const unsigned char *)"%PDF-1.4\n", 9, &info) == PROBE_UNKNOWN,
	      "PDF is not an image");
	CHECK(probe_image((const unsigned char *)"<svg xmlns=", 11, &info) == PROBE_UNKNOWN,
	      "SVG is not an allowed image");
	CHECK(probe_image((const unsigned char *)"\xFF\xD8\xFF\xDA\x00\x02", 6, &info) ==
		  PROBE_UNKNOWN,
	      "JPEG scan before frame header is broken");
	CHECK(probe_image((const unsigned char *)"\xFF\xD8\xFF\xE0\x00\x01", 6, &info) ==
		  PROBE_UNKNOWN,
	      "JPEG segment length below 2 is broken");
	CHECK(probe_mime(IMG_WEBP) && strcmp(probe_mime(IMG_WEBP), "image/webp") == 0, "mime");

	/* APP1 Exif, big-endian TIFF, IFD0 with Orientation = 6, then SOF0 1x2. */
	static const unsigned char exif_be[] = {
	    0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x22, 'E',  'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42,   0,
	    0,    0,    8,    0,    1,    0x01, 0x12, 0,   3,   0,   0, 0, 1,   0,   6, 0,    0,
	    0,    0,    0,    0,    0xFF, 0xC0, 0,    11,  8,   0,   2, 0, 1,   3,   1, 0x11, 0};
	CHECK(probe_image(exif_be, sizeof exif_be, &info) == PROBE_OK && info.orientation == 6 &&
		  info.width == 1 && info.height == 2,
	      "EXIF orientation 6 (big-endian) read from APP1");
	unsigned char exif_le[sizeof exif_be];
	memcpy(exif_le, exif_be, sizeof exif_be);
	/* little-endian: "II*\0", offset 8, count 1, tag 0x0112 type 3 count 1 value 8 */
	static const unsigned char le_tiff[] = {'I',  'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12,
						0x01, 3,   0,  1, 0, 0, 0, 8, 0, 0, 0};
	memcpy(exif_le + 12, le_tiff, sizeof le_tiff);
	CHECK(probe_image(exif_le, sizeof exif_le, &info) == PROBE_OK && info.orientation == 8,
	      "EXIF orientation 8 (little-endian)");
	exif_le[19] = 0x7F; /* IFD offset far past the segment */
	CHECK(probe_image(exif_le, sizeof exif_le, &info) == PROBE_OK && info.orientation == 1,
	      "EXIF with a bad IFD offset: orientation 1, no overread");
	CHECK(probe_image(jpeg, sizeof jpeg, &info) == PROBE_OK && info.orientation == 1,
	      "no EXIF: orientation 1");

	photo("photo12mp.jpg", IMG_JPEG, 4000, 3000);
	photo("photo2mp.jpg", IMG_JPEG, 1920, 1200);
	photo("photo13mp-progressive.jpg", IMG_JPEG, 4224, 3168);
	photo("photo-dune.png", IMG_PNG, 1680, 1050);
	png_chunks();
	big_metadata();
}
