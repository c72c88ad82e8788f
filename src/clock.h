/*
 * clock.h - the two clocks imgsvc reads: a monotonic one for durations and
 * deadlines, and the wall clock (UTC) for dates, usage days and plan
 * periods. Milliseconds, as 64-bit integers.
 */
#ifndef IMGSVC_CLOCK_H
#define IMGSVC_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t clock_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
