/*
 * fuzz_strip.c - libFuzzer target: metadata left out of an original
 * (src/strip.c), for strip_originals.
 *
 * Input: 1 byte (format % 4 + 1, orientation >> 2 % 8 + 1), then the file.
 * Invariants: nothing is read or written out of bounds (ASan); "nothing
 * left out" means the output is the input byte for byte; the output is
 * never longer than the input plus one Exif segment of the orientation
 * (36 bytes); and stripping the output again leaves it as it is.
 */
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "strip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum img_format f = (enum img_format)(data[0] % 4 + 1);
	int orientation = (data[0] >> 2) % 8 + 1;
	struct buf out = BUF_INIT, again = BUF_INIT;

	bool changed = strip_metadata(data + 1, size - 1, f, orientation, &out);
	FUZZ_CHECK(changed || (out.len == size - 1 && memcmp(out.data, data + 1, size - 1) == 0),
		   "unchanged, yet not the input");
	FUZZ_CHECK(out.len <= size - 1 + 36, "output %zu bytes from %zu", out.len, size - 1);
	bool twice = strip_metadata((const unsigned char *)out.data, out.len, f, orientation, &again);
	FUZZ_CHECK(!twice, "stripping the output again changed it (%zu -> %zu bytes)", out.len,
		   again.len);
	buf_free(&out);
	buf_free(&again);
	return 0;
}
