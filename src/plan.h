/*
 * plan.h - usage-plan arithmetic: a token bucket for rate and burst, and a
 * quota per UTC day, week or month, as API Gateway usage plans have.
 *
 * Pure functions over small state structs and an explicit clock (the
 * caller passes "now"), so every boundary is unit-tested without waiting.
 * The state lives wherever the caller keeps it: the host's shared state
 * file (state.c) under its lock, or Redis (a Lua port of the same rules).
 */
#ifndef IMGSVC_PLAN_H
#define IMGSVC_PLAN_H

#include <stdint.h>

enum plan_period { PERIOD_NONE, PERIOD_DAY, PERIOD_WEEK, PERIOD_MONTH };

struct plan {
	char *name;
	/* Throttle: a bucket of `burst` tokens refilled at `rate` per second;
	 * each request takes one. rate 0 = no throttle. */
	double rate;
	int64_t burst;
	/* Quota: at most `quota` requests per UTC period. 0 = no quota. */
	int64_t quota;
	enum plan_period period;
};

/* Fixed point: the bucket holds tokens in millionths, exact in int64. */
#define PLAN_TOKEN_UNIT 1000000

struct plan_bucket {
	int64_t tokens;  /* millionths of a token */
	int64_t last_ms; /* when tokens was last brought up to date; 0 = never */
};

struct plan_quota {
	int64_t period_start; /* UTC seconds; 0 = never used */
	int64_t count;        /* requests admitted in that period */
};

enum plan_verdict { PLAN_ALLOW, PLAN_RATE_LIMITED, PLAN_QUOTA_EXCEEDED };

/*
 * Decides one request at now_ms (milliseconds since the epoch, UTC). On
 * PLAN_ALLOW it takes a token and counts the request; otherwise it changes
 * nothing (a refused request costs nothing) and sets *retry_after_s to the
 * whole seconds until a request would pass: until the next token, or until
 * the quota period ends (at least 1).
 */
enum plan_verdict plan_admit(const struct plan *p, struct plan_bucket *b, struct plan_quota *q,
			     int64_t now_ms, int64_t *retry_after_s);

/* Start and end (exclusive) of the UTC period holding t (seconds). Weeks
 * start on Monday 00:00 UTC (ISO 8601). */
int64_t plan_period_start(enum plan_period period, int64_t t);
int64_t plan_period_end(enum plan_period period, int64_t t);

/* "day" / "week" / "month" -> period; PERIOD_NONE for anything else. */
enum plan_period plan_period_parse(const char *s);

/* Proleptic Gregorian calendar <-> days since 1970-01-01 (UTC dates, no
 * time zone): for quota periods, usage days and imgsvc-usage's dates. */
int64_t plan_days_from_civil(int64_t y, int m, int d);
void plan_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

#endif
