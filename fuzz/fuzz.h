/*
 * fuzz.h - helpers shared by the libFuzzer targets in fuzz/.
 *
 * Most targets take several strings; their inputs are cut into fields at
 * NUL bytes, so every field is a C string that cannot itself hold a NUL
 * (which is what the code under test receives in production, too).
 * FUZZ_CHECK states an invariant: when it does not hold, the target prints
 * what broke and aborts, and libFuzzer keeps the input as a crash.
 */
#ifndef IMGSVC_FUZZ_H
#define IMGSVC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__,       \
				#cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/*
 * Copies data into *mem (NUL-terminated, freed by the caller) and points
 * field[0..max) at its NUL-separated pieces; missing ones are "". Returns
 * how many pieces the input had (at most max).
 */
static inline size_t fuzz_fields(const uint8_t *data, size_t size, char **field, size_t max,
				 char **mem)
{
	char *m = malloc(size + 1);
	size_t n = 0, start = 0;

	if (!m)
		abort();
	memcpy(m, data, size);
	m[size] = '\0';
	for (size_t i = 0; i <= size && n < max; i++) {
		if (m[i] == '\0') {
			field[n++] = m + start;
			start = i + 1;
		}
	}
	for (size_t i = n; i < max; i++)
		field[i] = m + size; /* "" */
	*mem = m;
	return n;
}

#endif
