/*
 * unit.h - a tiny TAP producer for the C unit tests of the pure cores.
 *
 * Each CHECK prints "ok N - title" or "not ok N - title" with the location,
 * so tests/run-all.sh can count them alongside the shell tests.
 */
#ifndef IMGSVC_UNIT_H
#define IMGSVC_UNIT_H

#include <stdbool.h>

void unit_check(bool cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void unit_skip(const char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Directory holding test data (tests/data), from argv or $srcdir. */
const char *unit_datadir(void);

#define CHECK(cond, ...) unit_check((cond), __FILE__, __LINE__, __VA_ARGS__)

/* One entry point per unit file. */
void unit_path(void);
void unit_sigv4(void);
void unit_auth(void);
void unit_config(void);
void unit_json(void);
void unit_probe(void);
void unit_params(void);
void unit_geom(void);
void unit_budget(void);
void unit_strip(void);
void unit_http(void);
void unit_plan(void);
void unit_s3req(void);
void unit_decide(void);

#endif
