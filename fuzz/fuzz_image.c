/*
 * fuzz_image.c - libFuzzer target: the image pipeline from arbitrary bytes
 * to a derivative (src/probe.c, then src/img.c on GraphicsMagick), with
 * the limits of the default configuration.
 *
 * At start-up a minimal configuration (bucket and one key, everything else
 * default) is loaded with cfg_load, and GraphicsMagick is set up by
 * img_init with its limits, exactly as main.c does; the checks before
 * decoding are the handler's (probe_admit: formats, max_source_pixels,
 * max_source_bytes; budget_check: max_output_pixels, max_image_memory).
 *
 * Input: 6 bytes of parameters, then the source image.
 *   0-1  w (little-endian): top bit set, any 0 .. max_output_dimension;
 *        else 0 .. 64 (small outputs keep the fuzzer fast)
 *   2-3  h, likewise
 *   4    fit (% 3), rotate ((>> 2) % 4 * 90), fm ((>> 4) % 5)
 *   5    q: 1 .. 100, anything else means not given
 * Invariants: a refusal is 413/415/500 with a reason and no output; a
 * success has bytes whose own header (probe_image) says the format and
 * size img_transform reported, the format asked for, exactly w x h for
 * fill, never more than w or h, and never more than the source for the
 * other fits.
 */
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "config.h"
#include "fuzz.h"
#include "img.h"
#include "probe.h"

static struct cfg *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char ini[] = "[s3]\nbucket = fuzz\n[key fuzz]\nkey = fuzz-key-0123456789\n";
	const char *tmp = getenv("TMPDIR");
	char path[256], err[512];

	(void)argc;
	snprintf(path, sizeof path, "%s/imgsvc-fuzz-image.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, ini, sizeof ini - 1) != (ssize_t)(sizeof ini - 1)) {
		perror(path);
		abort();
	}
	close(fd);
	cfg = cfg_load(path, err, sizeof err);
	unlink(path);
	if (!cfg) {
		fprintf(stderr, "fuzz_image: %s\n", err);
		abort();
	}
	const struct cfg_server *sv = &cfg->server;
	struct img_limits limits = {sv->max_source_pixels > sv->max_output_pixels
					? sv->max_source_pixels
					: sv->max_output_pixels,
				    sv->max_image_memory, 1};
	img_init((*argv)[0], &limits);
	return 0;
}

static unsigned long dimension(const uint8_t *b, unsigned long max)
{
	unsigned v = (unsigned)b[0] | (unsigned)b[1] << 8;
	if (v & 0x8000)
		return (v & 0x7FFF) % (max + 1);
	return (v & 0xFF) % 65;
}

static enum img_format expected_format(const struct params *p, enum img_format source)
{
	switch (p->fm) {
	case FM_JPEG:
		return IMG_JPEG;
	case FM_PNG:
		return IMG_PNG;
	case FM_WEBP:
		return IMG_WEBP;
	case FM_AUTO:
		return IMG_UNKNOWN; /* JPEG or PNG, by alpha */
	case FM_SOURCE:
		break;
	}
	return source == IMG_GIF ? IMG_PNG : source;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct cfg_server *sv = &cfg->server;
	struct params p = {0};
	struct probe_info info;
	struct img_output out;
	const char *why = NULL;

	if (size < 6)
		return 0;
	p.w = dimension(data, (unsigned long)sv->max_output_dimension);
	p.h = dimension(data + 2, (unsigned long)sv->max_output_dimension);
	p.fit = (enum fit_mode)(data[4] % 3);
	p.rotate = (data[4] >> 2) % 4 * 90;
	p.fm = (enum out_format)((data[4] >> 4) % 5);
	p.q = data[5] >= 1 && data[5] <= 100 ? data[5] : 0;
	p.any = true;
	const unsigned char *src = data + 6;
	size_t len = size - 6;

	enum probe_result r = probe_image(src, len, &info);
	enum status st = probe_admit(r, &info, (unsigned)sv->formats, sv->max_source_pixels,
				     (long long)len, sv->max_source_bytes, &why);
	if (st != ST_OK) {
		FUZZ_CHECK((st == ST_UNSUPPORTED) == (r != PROBE_OK) && why, "probe %d, admit %d",
			   r, st);
		return 0;
	}
	FUZZ_CHECK(info.width && info.height &&
		       (long long)info.width * (long long)info.height <= sv->max_source_pixels,
		   "admitted %lux%lu", info.width, info.height);
	struct budget_limits blim = {sv->max_image_memory, sv->max_output_pixels};
	long long need;
	const char *message = NULL;
	st = budget_check(&info, &p, (long long)len, &blim, &need, &message);
	if (st != ST_OK) {
		FUZZ_CHECK((st == ST_BAD_REQUEST || st == ST_TOO_LARGE) && message, "budget %d", st);
		return 0;
	}

	int quality = p.q ? p.q : (int)sv->quality;
	st = img_transform(src, len, &info, &p, quality, &out, &why);
	if (st != ST_OK) {
		FUZZ_CHECK(st == ST_UNSUPPORTED || st == ST_TOO_LARGE || st == ST_INTERNAL,
			   "status %d", st);
		FUZZ_CHECK(why && *why && !out.data && out.len == 0, "refusal without a reason");
		return 0;
	}

	FUZZ_CHECK(out.data && out.len > 0, "success without bytes");
	enum img_format want = expected_format(&p, info.format);
	FUZZ_CHECK(want ? out.format == want : out.format == IMG_JPEG || out.format == IMG_PNG,
		   "format %d, expected %d", out.format, want);
	struct probe_info oi;
	FUZZ_CHECK(probe_image(out.data, out.len, &oi) == PROBE_OK && oi.format == out.format &&
		       oi.width == out.width && oi.height == out.height,
		   "output says %d %lux%lu, img_transform %d %lux%lu", oi.format, oi.width,
		   oi.height, out.format, out.width, out.height);
	if (p.w && p.h && p.fit == FIT_FILL) {
		FUZZ_CHECK(out.width == p.w && out.height == p.h, "fill %lux%lu gave %lux%lu", p.w,
			   p.h, out.width, out.height);
	} else {
		FUZZ_CHECK(!p.w || out.width <= p.w, "w %lu gave width %lu", p.w, out.width);
		FUZZ_CHECK(!p.h || out.height <= p.h, "h %lu gave height %lu", p.h, out.height);
		/* GIF frames may be larger than the screen the header states. */
		unsigned long big = info.width > info.height ? info.width : info.height;
		if (info.format != IMG_GIF)
			FUZZ_CHECK(out.width <= big && out.height <= big,
				   "%lux%lu source enlarged to %lux%lu", info.width, info.height,
				   out.width, out.height);
	}
	img_output_free(&out);
	return 0;
}
