/*
 * unit.c - runs every unit-test group and prints TAP.
 *
 * Usage: tests/unit [DATADIR] [GROUP...]; DATADIR defaults to
 * $srcdir/tests/data.
 */
#include "unit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int counter, failures;
static char datadir[4096];

void unit_check(bool cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	counter++;
	printf("%sok %d - ", cond ? "" : "not ", counter);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!cond) {
		failures++;
		printf(" (%s:%d)", file, line);
	}
	putchar('\n');
	fflush(stdout);
}

void unit_skip(const char *why, const char *fmt, ...)
{
	va_list ap;
	counter++;
	printf("ok %d - ", counter);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" # SKIP %s\n", why);
}

const char *unit_datadir(void)
{
	return datadir;
}

static const struct {
	const char *name;
	void (*run)(void);
} groups[] = {
    {"path", unit_path},     {"sigv4", unit_sigv4}, {"auth", unit_auth},   {"config", unit_config},
    {"json", unit_json},     {"probe", unit_probe}, {"geom", unit_geom}, {"budget", unit_budget}, {"strip", unit_strip},   {"http", unit_http},
    {"params", unit_params}, {"plan", unit_plan},   {"s3req", unit_s3req}, {"decide", unit_decide},
};

int main(int argc, char **argv)
{
	const char *srcdir = getenv("srcdir");
	if (argc > 1)
		snprintf(datadir, sizeof datadir, "%s", argv[1]);
	else
		snprintf(datadir, sizeof datadir, "%s/tests/data", srcdir ? srcdir : ".");
	for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
		bool wanted = argc <= 2;
		for (int a = 2; a < argc; a++)
			wanted |= strcmp(argv[a], groups[i].name) == 0;
		if (wanted)
			groups[i].run();
	}
	printf("1..%d\n", counter);
	return failures ? 1 : 0;
}
