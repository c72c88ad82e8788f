/*
 * gmfloor.c - the GraphicsMagick floor for bench/run: the least work any
 * GraphicsMagick-based server can do per resized image, measured in-process
 * with no HTTP, no S3 and no copies around it.
 *
 * The source file is read into memory once; then, N times over:
 * BlobToImage (JPEG, with or without the decoder's size hint) ->
 * ResizeImage (LanczosFilter) -> StripImage -> ImageToBlob (JPEG, quality).
 * Prints one line:
 *
 *   gmfloor label=L iterations=N wall_ms=X cpu_ms=Y out=WxH bytes=B
 *
 * where wall_ms and cpu_ms (user+system from getrusage) are per image.
 * Run it with OMP_NUM_THREADS=1 to measure one core's worth of work.
 *
 * Build: cc -O2 -o gmfloor gmfloor.c $(pkg-config --cflags --libs GraphicsMagick)
 * Usage: gmfloor FILE WIDTH HEIGHT ITERATIONS QUALITY hint|nohint LABEL
 */
#include <magick/api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0)
		return NULL;
	buf = malloc((size_t)n);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		return NULL;
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* One image: decode, resize, strip, encode. Returns the encoded size. */
static size_t one(const void *src, size_t len, unsigned long w, unsigned long h, int hint,
		  unsigned long quality, unsigned long *ow, unsigned long *oh)
{
	ExceptionInfo ex;
	ImageInfo *ii = CloneImageInfo(NULL);
	Image *im, *r;
	size_t out_len = 0;
	void *out;
	char size[64];

	GetExceptionInfo(&ex);
	snprintf(ii->filename, sizeof ii->filename, "JPEG:source");
	if (hint) {
		snprintf(size, sizeof size, "%lux%lu", w, h);
		CloneString(&ii->size, size);
	}
	im = BlobToImage(ii, src, len, &ex);
	if (!im) {
		CatchException(&ex);
		exit(1);
	}
	r = ResizeImage(im, w, h, LanczosFilter, 1.0, &ex);
	DestroyImage(im);
	if (!r) {
		CatchException(&ex);
		exit(1);
	}
	StripImage(r);
	ii->quality = quality;
	snprintf(ii->filename, sizeof ii->filename, "JPEG:out");
	snprintf(r->magick, sizeof r->magick, "JPEG");
	out = ImageToBlob(ii, r, &out_len, &ex);
	if (!out || !out_len) {
		CatchException(&ex);
		exit(1);
	}
	*ow = r->columns;
	*oh = r->rows;
	MagickFree(out);
	DestroyImage(r);
	DestroyImageInfo(ii);
	DestroyExceptionInfo(&ex);
	return out_len;
}

int main(int argc, char **argv)
{
	size_t len, bytes = 0;
	void *src;
	unsigned long w, h, q, ow = 0, oh = 0;
	int n, i, hint;
	double t0, c0, t1, c1;

	if (argc != 8) {
		fprintf(stderr, "usage: %s FILE WIDTH HEIGHT ITERATIONS QUALITY hint|nohint LABEL\n",
			argv[0]);
		return 2;
	}
	w = strtoul(argv[2], NULL, 10);
	h = strtoul(argv[3], NULL, 10);
	n = atoi(argv[4]);
	q = strtoul(argv[5], NULL, 10);
	hint = strcmp(argv[6], "hint") == 0;
	InitializeMagick(argv[0]);
	src = slurp(argv[1], &len);
	if (!src) {
		perror(argv[1]);
		return 1;
	}
	/* One untimed run: libraries paged in, allocator warmed up. */
	one(src, len, w, h, hint, q, &ow, &oh);
	t0 = now_ms();
	c0 = cpu_ms();
	for (i = 0; i < n; i++)
		bytes = one(src, len, w, h, hint, q, &ow, &oh);
	t1 = now_ms();
	c1 = cpu_ms();
	printf("gmfloor label=%s iterations=%d wall_ms=%.2f cpu_ms=%.2f out=%lux%lu bytes=%zu\n",
	       argv[7], n, (t1 - t0) / n, (c1 - c0) / n, ow, oh, bytes);
	free(src);
	DestroyMagick();
	return 0;
}
