/*
 * plan.c - usage-plan arithmetic: token bucket, quota periods, UTC calendar.
 *
 * The bucket holds millionths of a token (PLAN_TOKEN_UNIT) so that
 * fractional rates such as 0.5/s are exact integers: the rate becomes
 * "millionths per second", and a refill is elapsed_ms * that / 1000. Rates
 * with at most three decimals refill exactly to the millisecond; others lose
 * less than a millionth of a token per admitted request (never more than
 * the plan allows).
 *
 * Periods are computed from days since the epoch with the civil-calendar
 * conversions of Howard Hinnant's "chrono-compatible low-level date
 * algorithms": no time zone, no libc, valid far beyond any real clock.
 */
#include "plan.h"

#include <stdbool.h>
#include <string.h>

#define DAY_S 86400

/* Largest burst the bucket can hold in millionths without overflowing. */
#define MAX_BURST (INT64_MAX / PLAN_TOKEN_UNIT / 2)
/* Rates above this (a trillion requests per second) are treated as this. */
#define MAX_RATE_U ((int64_t)1000000000000000000)

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t plan_days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;                                   /* [0, 399] */
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
	return era * 146097 + doe - 719468;
}

void plan_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;                                      /* [0, 146096] */
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
	int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

int64_t plan_period_start(enum plan_period period, int64_t t)
{
	int64_t days = floor_div(t, DAY_S), y;
	int m, d;
	switch (period) {
	case PERIOD_DAY:
		return days * DAY_S;
	case PERIOD_WEEK:
		/* Day 0 (1970-01-01) was a Thursday: Monday is 3 days before. */
		return (days - (days + 3 - floor_div(days + 3, 7) * 7)) * DAY_S;
	case PERIOD_MONTH:
		plan_civil_from_days(days, &y, &m, &d);
		return plan_days_from_civil(y, m, 1) * DAY_S;
	case PERIOD_NONE:
		break;
	}
	return 0;
}

int64_t plan_period_end(enum plan_period period, int64_t t)
{
	int64_t start = plan_period_start(period, t), y;
	int m, d;
	switch (period) {
	case PERIOD_DAY:
		return start + DAY_S;
	case PERIOD_WEEK:
		return start + 7 * DAY_S;
	case PERIOD_MONTH:
		plan_civil_from_days(floor_div(start, DAY_S), &y, &m, &d);
		return plan_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * DAY_S;
	case PERIOD_NONE:
		break;
	}
	return INT64_MAX;
}

enum plan_period plan_period_parse(const char *s)
{
	if (!s)
		return PERIOD_NONE;
	if (strcmp(s, "day") == 0)
		return PERIOD_DAY;
	if (strcmp(s, "week") == 0)
		return PERIOD_WEEK;
	if (strcmp(s, "month") == 0)
		return PERIOD_MONTH;
	return PERIOD_NONE;
}

/* The rate in millionths of a token per second; 0 = no throttle. A positive
 * rate too small to show in millionths still refills, slowly. */
static int64_t rate_units(double rate)
{
	if (!(rate > 0))
		return 0;
	double u = rate * PLAN_TOKEN_UNIT;
	if (u >= (double)MAX_RATE_U)
		return MAX_RATE_U;
	int64_t r = (int64_t)(u + 0.5);
	return r > 0 ? r : 1;
}

/*
 * Brings a copy of the bucket up to now: refills for the time since it was
 * last touched, capped at the burst. A clock that went backwards refills
 * nothing (and does not move last_ms back, which would refill twice).
 */
static struct plan_bucket refill(const struct plan_bucket *b, int64_t rate_u, int64_t cap,
				 int64_t now_ms)
{
	struct plan_bucket n = *b;
	if (n.last_ms == 0) {
		n.tokens = cap;
		n.last_ms = now_ms;
		return n;
	}
	if (n.tokens > cap) /* the plan's burst was lowered */
		n.tokens = cap;
	if (now_ms <= n.last_ms)
		return n;
	int64_t elapsed = now_ms - n.last_ms;
	int64_t missing = cap - n.tokens;
	/* elapsed * rate_u may overflow after a long idle time: a bucket idle
	 * that long is full anyway. */
	if (elapsed > INT64_MAX / rate_u || elapsed * rate_u / 1000 >= missing)
		n.tokens = cap;
	else
		n.tokens += elapsed * rate_u / 1000;
	n.last_ms = now_ms;
	return n;
}

enum plan_verdict plan_admit(const struct plan *p, struct plan_bucket *b, struct plan_quota *q,
			     int64_t now_ms, int64_t *retry_after_s)
{
	int64_t now_s = floor_div(now_ms, 1000);
	int64_t retry = 0;
	bool use_quota = p->quota > 0 && p->period != PERIOD_NONE;
	int64_t rate_u = rate_units(p->rate);
	int64_t period_start = 0;
	struct plan_bucket nb = *b;

	if (use_quota) {
		period_start = plan_period_start(p->period, now_s);
		int64_t count = q->period_start == period_start ? q->count : 0;
		if (count >= p->quota) {
			retry = plan_period_end(p->period, now_s) - now_s;
			if (retry_after_s)
				*retry_after_s = retry > 0 ? retry : 1;
			return PLAN_QUOTA_EXCEEDED;
		}
	}
	if (rate_u > 0) {
		/* A burst below one would refuse every request forever. */
		int64_t burst = p->burst < 1 ? 1 : p->burst > MAX_BURST ? MAX_BURST : p->burst;
		nb = refill(b, rate_u, burst * PLAN_TOKEN_UNIT, now_ms);
		if (nb.tokens < PLAN_TOKEN_UNIT) {
			int64_t missing = PLAN_TOKEN_UNIT - nb.tokens;
			retry = (missing + rate_u - 1) / rate_u;
			if (retry_after_s)
				*retry_after_s = retry > 0 ? retry : 1;
			return PLAN_RATE_LIMITED;
		}
		nb.tokens -= PLAN_TOKEN_UNIT;
	}

	/* Both passed: now, and only now, the state changes. */
	if (rate_u > 0)
		*b = nb;
	if (use_quota) {
		if (q->period_start != period_start) {
			q->period_start = period_start;
			q->count = 0;
		}
		q->count++;
	}
	if (retry_after_s)
		*retry_after_s = 0;
	return PLAN_ALLOW;
}
