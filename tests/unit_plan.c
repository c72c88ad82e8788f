/*
 * unit_plan.c - usage-plan arithmetic with an injected clock: burst, refill
 * and Retry-After of the token bucket (whole and fractional rates), quota
 * periods at their UTC boundaries (day, ISO week, month, leap years, year
 * end), and that a refused request changes nothing.
 */
#define _DEFAULT_SOURCE /* timegm, for the calendar cross-check */
#include <string.h>
#include <time.h>

#include "plan.h"
#include "unit.h"

/* Milliseconds since the epoch of a UTC date and time. */
static int64_t at(int64_t y, int mo, int d, int h, int mi, int s, int ms)
{
	return (plan_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000 + ms;
}

static int64_t secs(int64_t y, int mo, int d)
{
	return at(y, mo, d, 0, 0, 0, 0) / 1000;
}

/* Admits n requests at now; returns how many passed. */
static int burst_at(const struct plan *p, struct plan_bucket *b, struct plan_quota *q, int n,
		    int64_t now)
{
	int passed = 0;
	int64_t retry;
	for (int i = 0; i < n; i++)
		passed += plan_admit(p, b, q, now, &retry) == PLAN_ALLOW;
	return passed;
}

static void calendar(void)
{
	int bad = 0;
	/* Every day from 1900 to 2400 against timegm/gmtime_r. */
	for (int64_t days = -25567; days < 156270 && bad < 3; days++) {
		int64_t y;
		int m, d;
		plan_civil_from_days(days, &y, &m, &d);
		struct tm tm = {.tm_year = (int)y - 1900, .tm_mon = m - 1, .tm_mday = d};
		time_t t = timegm(&tm);
		if (t != days * 86400 || plan_days_from_civil(y, m, d) != days) {
			bad++;
			CHECK(0, "day %lld is %04lld-%02d-%02d (timegm says %lld)", (long long)days,
			      (long long)y, m, d, (long long)t / 86400);
		}
	}
	CHECK(bad == 0, "civil dates agree with timegm for every day 1900..2400");
	CHECK(plan_days_from_civil(2024, 2, 29) + 1 == plan_days_from_civil(2024, 3, 1) &&
		  plan_days_from_civil(2023, 2, 28) + 1 == plan_days_from_civil(2023, 3, 1) &&
		  plan_days_from_civil(2100, 2, 28) + 1 == plan_days_from_civil(2100, 3, 1) &&
		  plan_days_from_civil(2000, 2, 29) + 1 == plan_days_from_civil(2000, 3, 1),
	      "Feb 29 in 2024 and 2000, not in 2023 and 2100");
	CHECK(plan_period_parse("day") == PERIOD_DAY && plan_period_parse("week") == PERIOD_WEEK &&
		  plan_period_parse("month") == PERIOD_MONTH &&
		  plan_period_parse("Day") == PERIOD_NONE && plan_period_parse("") == PERIOD_NONE &&
		  plan_period_parse(NULL) == PERIOD_NONE,
	      "period names: day, week, month; anything else is none");
}

static void bucket(void)
{
	struct plan p = {.rate = 10, .burst = 5};
	struct plan_bucket b = {0};
	struct plan_quota q = {0};
	int64_t t0 = at(2024, 5, 1, 12, 0, 0, 0), retry = -1;
	enum plan_verdict v;

	CHECK(burst_at(&p, &b, &q, 5, t0) == 5, "rate 10/s burst 5: a new bucket is full, 5 pass");
	v = plan_admit(&p, &b, &q, t0, &retry);
	CHECK(v == PLAN_RATE_LIMITED && retry == 1,
	      "  the 6th is rate-limited, Retry-After 1 (got %lld)", (long long)retry);
	v = plan_admit(&p, &b, &q, t0 + 99, &retry);
	CHECK(v == PLAN_RATE_LIMITED, "  99 ms later: still no token");
	v = plan_admit(&p, &b, &q, t0 + 100, &retry);
	CHECK(v == PLAN_ALLOW, "  100 ms later: one token refilled, one passes");
	v = plan_admit(&p, &b, &q, t0 + 100, &retry);
	CHECK(v == PLAN_RATE_LIMITED, "  and only one");
	CHECK(burst_at(&p, &b, &q, 10, t0 + 60000) == 5,
	      "  a minute idle refills to the burst (5), not beyond");
	CHECK(burst_at(&p, &b, &q, 10, t0 + 60000 + 250) == 2, "  250 ms later: 2 pass");

	/* Sustained: every millisecond for 10 s after the burst. */
	struct plan_bucket s = {0};
	int passed = 0;
	for (int64_t t = t0; t <= t0 + 10000; t++)
		passed += burst_at(&p, &s, &q, 1, t);
	CHECK(passed == 105, "rate 10/s burst 5, a request every ms for 10 s: 105 pass (got %d)",
	      passed);

	struct plan half = {.rate = 0.5, .burst = 1};
	struct plan_bucket h = {0};
	v = plan_admit(&half, &h, &q, t0, &retry);
	CHECK(v == PLAN_ALLOW, "rate 0.5/s burst 1: one passes");
	v = plan_admit(&half, &h, &q, t0, &retry);
	CHECK(v == PLAN_RATE_LIMITED && retry == 2, "  the next at once: Retry-After 2 (got %lld)",
	      (long long)retry);
	v = plan_admit(&half, &h, &q, t0 + 1000, &retry);
	CHECK(v == PLAN_RATE_LIMITED && retry == 1, "  1 s later: Retry-After 1 (got %lld)",
	      (long long)retry);
	v = plan_admit(&half, &h, &q, t0 + 1999, &retry);
	CHECK(v == PLAN_RATE_LIMITED && retry == 1, "  1.999 s later: Retry-After 1 (got %lld)",
	      (long long)retry);
	v = plan_admit(&half, &h, &q, t0 + 2000, &retry);
	CHECK(v == PLAN_ALLOW && retry == 0, "  2 s later: passes, Retry-After 0 on a pass");

	/* A fractional rate that is not a whole number of millionths per ms. */
	struct plan third = {.rate = 1.0 / 3, .burst = 2};
	struct plan_bucket th = {0};
	passed = 0;
	for (int64_t t = t0; t <= t0 + 60010; t += 10)
		passed += burst_at(&third, &th, &q, 1, t);
	CHECK(passed == 22,
	      "rate 1/3 s burst 2, polled every 10 ms for 60.01 s: 2 + 20 pass (got %d)", passed);
	struct plan_bucket t1 = {0};
	burst_at(&third, &t1, &q, 2, t0);
	v = plan_admit(&third, &t1, &q, t0, &retry);
	CHECK(v == PLAN_RATE_LIMITED && retry == 4,
	      "  then Retry-After 4 (3.000003 s: the rate is 333333 millionths/s; got %lld)",
	      (long long)retry);
	v = plan_admit(&third, &t1, &q, t0 + 1000 * retry, &retry);
	CHECK(v == PLAN_ALLOW, "  and a request after that long passes");

	/* Retry-After is honest: waiting exactly that long always passes. */
	struct plan odd = {.rate = 7, .burst = 3};
	struct plan_bucket o = {0};
	bool honest = true;
	int64_t t = t0;
	for (int i = 0; i < 200 && honest; i++) {
		if (plan_admit(&odd, &o, &q, t, &retry) != PLAN_ALLOW) {
			t += 1000 * retry;
			honest = plan_admit(&odd, &o, &q, t, &retry) == PLAN_ALLOW;
		}
		t += i % 3;
	}
	CHECK(honest, "rate 7/s: a request made Retry-After seconds after a refusal passes");

	struct plan_bucket back = {0};
	burst_at(&p, &back, &q, 5, t0);
	CHECK(burst_at(&p, &back, &q, 5, t0 - 5000) == 0 &&
		  burst_at(&p, &back, &q, 5, t0 + 100) == 1,
	      "a clock that goes backwards refills nothing (and loses nothing)");

	struct plan_bucket idle = {.tokens = 0, .last_ms = 1};
	struct plan big = {.rate = 1e9, .burst = 1000000};
	CHECK(burst_at(&big, &idle, &q, 3, at(2200, 1, 1, 0, 0, 0, 0)) == 3 &&
		  idle.tokens == (1000000LL - 3) * PLAN_TOKEN_UNIT,
	      "a huge rate after 230 idle years: full to the burst, no overflow");

	struct plan lowered = {.rate = 10, .burst = 2};
	struct plan_bucket lb = {0};
	burst_at(&p, &lb, &q, 1, t0); /* 4 left under burst 5 */
	CHECK(burst_at(&lowered, &lb, &q, 10, t0) == 2, "a lowered burst caps the tokens left");

	struct plan none = {.rate = 0, .burst = 0};
	struct plan_bucket nb = {0};
	CHECK(burst_at(&none, &nb, &q, 1000, t0) == 1000 && nb.last_ms == 0,
	      "rate 0: no throttle, bucket untouched");
	struct plan zero_burst = {.rate = 1, .burst = 0};
	struct plan_bucket zb = {0};
	CHECK(burst_at(&zero_burst, &zb, &q, 3, t0) == 1, "burst 0 counts as 1");
}

/*
 * A quota of 3 per period: fill it just before `last` (the last millisecond
 * of a period), check the refusal's Retry-After, then that the first
 * millisecond of the next period passes again.
 */
static void boundary(const char *what, enum plan_period period, int64_t start_s, int64_t last)
{
	struct plan p = {.quota = 3, .period = period};
	struct plan_bucket b = {0};
	struct plan_quota q = {0};
	int64_t retry = -1;
	enum plan_verdict v;

	CHECK(plan_period_start(period, last / 1000) == start_s &&
		  plan_period_end(period, last / 1000) == (last + 1) / 1000 &&
		  plan_period_start(period, (last + 1) / 1000) == (last + 1) / 1000,
	      "%s: period [%lld, %lld), next starts where it ends", what, (long long)start_s,
	      (long long)(last + 1) / 1000);
	CHECK(burst_at(&p, &b, &q, 5, start_s * 1000) == 3, "%s: quota 3 at the period's start",
	      what);
	v = plan_admit(&p, &b, &q, last, &retry);
	CHECK(v == PLAN_QUOTA_EXCEEDED && retry == 1,
	      "%s: its last millisecond is refused, Retry-After 1 (got %lld)", what,
	      (long long)retry);
	v = plan_admit(&p, &b, &q, start_s * 1000, &retry);
	CHECK(v == PLAN_QUOTA_EXCEEDED && retry == (last + 1) / 1000 - start_s,
	      "%s: Retry-After at its start is the whole period (%lld s, got %lld)", what,
	      (long long)((last + 1) / 1000 - start_s), (long long)retry);
	CHECK(burst_at(&p, &b, &q, 5, last + 1) == 3 && q.period_start == (last + 1) / 1000,
	      "%s: the next period's first millisecond starts a fresh count", what);
}

static void quota(void)
{
	boundary("day 2024-03-10", PERIOD_DAY, secs(2024, 3, 10), at(2024, 3, 10, 23, 59, 59, 999));
	boundary("day Dec 31 -> Jan 1", PERIOD_DAY, secs(2023, 12, 31),
		 at(2023, 12, 31, 23, 59, 59, 999));
	boundary("day Feb 28 -> 29 (2024)", PERIOD_DAY, secs(2024, 2, 28),
		 at(2024, 2, 28, 23, 59, 59, 999));
	boundary("week Mon 2024-03-04 .. Sun 03-10 -> Mon", PERIOD_WEEK, secs(2024, 3, 4),
		 at(2024, 3, 10, 23, 59, 59, 999));
	boundary("week over the year end (Mon 2024-12-30 .. Sun 2025-01-05)", PERIOD_WEEK,
		 secs(2024, 12, 30), at(2025, 1, 5, 23, 59, 59, 999));
	boundary("month Feb 2024 (29 days)", PERIOD_MONTH, secs(2024, 2, 1),
		 at(2024, 2, 29, 23, 59, 59, 999));
	boundary("month Feb 2023 (28 days)", PERIOD_MONTH, secs(2023, 2, 1),
		 at(2023, 2, 28, 23, 59, 59, 999));
	boundary("month Feb 2100 (28 days, not leap)", PERIOD_MONTH, secs(2100, 2, 1),
		 at(2100, 2, 28, 23, 59, 59, 999));
	boundary("month Dec 2023 -> Jan 2024", PERIOD_MONTH, secs(2023, 12, 1),
		 at(2023, 12, 31, 23, 59, 59, 999));
	boundary("month Jan 2024 (31 days)", PERIOD_MONTH, secs(2024, 1, 1),
		 at(2024, 1, 31, 23, 59, 59, 999));

	int64_t sunday = at(2024, 3, 10, 12, 0, 0, 0) / 1000;
	int64_t monday = at(2024, 3, 11, 0, 0, 0, 0) / 1000;
	CHECK(plan_period_start(PERIOD_WEEK, sunday) == secs(2024, 3, 4) &&
		  plan_period_start(PERIOD_WEEK, monday) == monday &&
		  plan_period_start(PERIOD_WEEK, monday - 1) == secs(2024, 3, 4),
	      "weeks start on Monday: Sunday belongs to the week before");
	CHECK(plan_period_start(PERIOD_WEEK, secs(1969, 12, 31)) == secs(1969, 12, 29) &&
		  plan_period_start(PERIOD_WEEK, 0) == secs(1969, 12, 29) &&
		  plan_period_start(PERIOD_DAY, -1) == -86400,
	      "before 1970 too (1970-01-01 was a Thursday)");
	CHECK(plan_period_start(PERIOD_MONTH, at(2024, 2, 29, 23, 59, 59, 0) / 1000) ==
		      secs(2024, 2, 1) &&
		  plan_period_end(PERIOD_MONTH, secs(2024, 2, 15)) == secs(2024, 3, 1),
	      "Feb 29 2024 is in February, which ends on March 1");

	/* Retry-After counts from "now" in whole seconds, rounded up. */
	struct plan p = {.quota = 1, .period = PERIOD_DAY};
	struct plan_bucket b = {0};
	struct plan_quota q = {0};
	int64_t retry;
	burst_at(&p, &b, &q, 1, at(2024, 6, 1, 0, 0, 0, 0));
	plan_admit(&p, &b, &q, at(2024, 6, 1, 12, 0, 0, 500), &retry);
	CHECK(retry == 43200, "quota refused at 12:00:00.5: Retry-After 43200 (got %lld)",
	      (long long)retry);
	struct plan unlimited = {.quota = 0, .period = PERIOD_DAY};
	CHECK(burst_at(&unlimited, &b, &q, 100, at(2024, 6, 1, 0, 0, 0, 0)) == 100,
	      "quota 0: no quota");
}

static void refused_costs_nothing(void)
{
	struct plan p = {.rate = 1, .burst = 2, .quota = 3, .period = PERIOD_DAY};
	struct plan_bucket b = {0}, b0;
	struct plan_quota q = {0}, q0;
	int64_t t0 = at(2024, 7, 1, 8, 0, 0, 0), retry;
	enum plan_verdict v;

	CHECK(burst_at(&p, &b, &q, 2, t0) == 2, "rate 1/s burst 2 quota 3/day: 2 pass at once");
	b0 = b;
	q0 = q;
	v = plan_admit(&p, &b, &q, t0 + 500, &retry);
	CHECK(v == PLAN_RATE_LIMITED && retry == 1,
	      "  the 3rd, half a second later, is rate-limited (Retry-After 1, got %lld)",
	      (long long)retry);
	CHECK(memcmp(&b, &b0, sizeof b) == 0 && memcmp(&q, &q0, sizeof q) == 0,
	      "  and changed neither the bucket nor the quota count");
	v = plan_admit(&p, &b, &q, t0 + 1000, &retry);
	CHECK(v == PLAN_ALLOW && q.count == 3, "  a second later it passes: count 3");
	b0 = b;
	q0 = q;
	v = plan_admit(&p, &b, &q, t0 + 5000, &retry);
	CHECK(v == PLAN_QUOTA_EXCEEDED, "  then the quota refuses (the bucket has tokens)");
	CHECK(memcmp(&b, &b0, sizeof b) == 0 && memcmp(&q, &q0, sizeof q) == 0,
	      "  and the refusal took no token");

	/* Many refusals in a row leave the bucket exactly as it was. */
	struct plan r = {.rate = 2, .burst = 1};
	struct plan_bucket rb = {0};
	struct plan_quota rq = {0};
	burst_at(&r, &rb, &rq, 1, t0);
	for (int i = 1; i < 500; i++)
		plan_admit(&r, &rb, &rq, t0 + i, &retry);
	v = plan_admit(&r, &rb, &rq, t0 + 500, &retry);
	CHECK(v == PLAN_ALLOW, "499 refusals within 500 ms do not delay the next token (rate 2/s)");
}

void unit_plan(void)
{
	calendar();
	bucket();
	quota();
	refused_costs_nothing();
}
