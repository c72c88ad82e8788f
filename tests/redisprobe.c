/*
 * redisprobe.c - drives src/redislimit.c against a real redis-server for
 * tests/t0310-redis.sh.
 *
 *   redisprobe [options] HOST PORT KEY RATE BURST QUOTA PERIOD COUNT
 *     makes COUNT redis_admit calls for KEY under the plan (RATE per
 *     second, BURST, QUOTA per PERIOD: none|day|week|month) and prints
 *       allowed A refused R retry_after X errors E rate_limited L quota_exceeded Q
 *     (X: the largest Retry-After seen). Options:
 *       -P N   N processes, each with its own limiter, making COUNT calls;
 *              their counts come back through a pipe and are summed
 *       -a PW  password (AUTH); -x PREFIX key prefix (default "imgsvc-test:")
 *       -t MS  connect and command timeout (default 500)
 *       -i MS  pause between calls
 *       -v     one line per call first: "call I rc RC verdict V retry X ms T"
 *              (the error message follows a failed call)
 *
 *   redisprobe -C [-a PW] HOST PORT [SEED]
 *     compares the Lua script with plan.c: random plans and clock sequences
 *     (day, week and month boundaries, leap years, idle gaps, a clock that
 *     steps back a little) run through plan_admit and through the script at
 *     the same instants (its test clock argument); prints the first
 *     difference, or "same N decisions in S scenarios". Exit status 1 on a
 *     difference.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plan.h"
#include "redislimit.h"

struct tally {
	long allowed, rate_limited, quota_exceeded, errors;
	int64_t max_retry;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(void)
{
	fprintf(stderr, "usage: redisprobe [-P N] [-a PW] [-x PREFIX] [-t MS] [-i MS] [-v] "
			"HOST PORT KEY RATE BURST QUOTA PERIOD COUNT\n"
			"       redisprobe -C [-a PW] HOST PORT [SEED]\n");
	exit(2);
}

/* COUNT calls through one limiter (one process's share). */
static void run_calls(const struct redis_options *opt, const char *key, const struct plan *p,
		      long count, long interval_ms, bool verbose, struct tally *t)
{
	struct redis_limiter *r = redis_limiter_new(opt);
	if (!r) {
		fprintf(stderr, "redisprobe: out of memory\n");
		exit(1);
	}
	for (long i = 0; i < count; i++) {
		enum plan_verdict v = PLAN_ALLOW;
		int64_t retry = 0;
		char err[256] = "";
		int64_t start = mono_ms();
		int rc = redis_admit(r, key, p, &v, &retry, err, sizeof err);
		int64_t took = mono_ms() - start;

		if (rc < 0)
			t->errors++;
		else if (v == PLAN_ALLOW)
			t->allowed++;
		else if (v == PLAN_RATE_LIMITED)
			t->rate_limited++;
		else
			t->quota_exceeded++;
		if (rc == 0 && v != PLAN_ALLOW && retry > t->max_retry)
			t->max_retry = retry;
		if (verbose) {
			printf("call %ld rc %d verdict %d retry %" PRId64 " ms %" PRId64 "%s%s\n",
			       i + 1, rc, rc == 0 ? (int)v : -1, rc == 0 ? retry : 0, took,
			       rc < 0 ? " err " : "", rc < 0 ? err : "");
			fflush(stdout);
		}
		if (interval_ms > 0 && i + 1 < count) {
			struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000};
			nanosleep(&ts, NULL);
		}
	}
	redis_limiter_free(r);
}

/* P processes, each run_calls; their tallies are summed through a pipe. */
static void run_procs(const struct redis_options *opt, const char *key, const struct plan *p,
		      long count, long interval_ms, bool verbose, int procs, struct tally *sum)
{
	int fd[2];
	if (pipe(fd) < 0) {
		perror("redisprobe: pipe");
		exit(1);
	}
	for (int i = 0; i < procs; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("redisprobe: fork");
			exit(1);
		}
		if (pid == 0) {
			struct tally t = {0};
			close(fd[0]);
			run_calls(opt, key, p, count, interval_ms, verbose, &t);
			/* A struct this small is written atomically into a pipe. */
			if (write(fd[1], &t, sizeof t) != (ssize_t)sizeof t)
				_exit(1);
			_exit(0);
		}
	}
	close(fd[1]);
	struct tally t;
	ssize_t n;
	while ((n = read(fd[0], &t, sizeof t)) == (ssize_t)sizeof t) {
		sum->allowed += t.allowed;
		sum->rate_limited += t.rate_limited;
		sum->quota_exceeded += t.quota_exceeded;
		sum->errors += t.errors;
		if (t.max_retry > sum->max_retry)
			sum->max_retry = t.max_retry;
	}
	close(fd[0]);
	int status, bad = 0;
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad++;
	if (bad) {
		fprintf(stderr, "redisprobe: %d worker process(es) failed\n", bad);
		exit(1);
	}
}

/* --- -C: the script against plan.c at chosen clocks --------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible from the seed printed on a difference. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static int64_t rnd_between(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static const char *period_name(enum plan_period p)
{
	static const char *const names[] = {"none", "day", "week", "month"};
	return names[p];
}

/* Instants near the boundaries that are easy to get wrong (UTC, ms). */
static int64_t interesting_start(void)
{
	static const int64_t s[] = {
	    0,          /* 1970-01-01, a Thursday */
	    345600,     /* 1970-01-05, the first Monday */
	    951782400,  /* 2000-02-29 (a leap year divisible by 400) */
	    951868800,  /* 2000-03-01 */
	    1709164800, /* 2024-02-29 */
	    1709251200, /* 2024-03-01 */
	    1704067200, /* 2024-01-01, a Monday */
	    1735603200, /* 2024-12-31 */
	    1735689600, /* 2025-01-01 */
	    4107456000, /* 2100-02-28 (2100 is no leap year) */
	    4107542400, /* 2100-03-01 */
	    1719792000, /* 2024-07-01 */
	};
	int64_t base = s[rnd() % (sizeof s / sizeof s[0])], t;
	switch (rnd() % 4) {
	case 0: /* just before the boundary */
		t = base * 1000 - rnd_between(1, 5000);
		break;
	case 1:
		t = base * 1000 + rnd_between(0, 5000);
		break;
	case 2: /* anywhere in 1970..2100 */
		t = rnd_between(0, 4102444800LL) * 1000 + rnd_between(0, 999);
		break;
	default:
		t = base * 1000 - rnd_between(0, 40LL * 86400 * 1000);
		break;
	}
	return t < 1 ? 1 : t;
}

static int64_t next_step(int64_t now, enum plan_period period)
{
	enum plan_period boundary = period == PERIOD_NONE ? PERIOD_DAY : period;
	int64_t d;
	switch (rnd() % 12) {
	case 0:
	case 1:
		d = 0;
		break;
	case 2:
	case 3:
		d = rnd_between(1, 50);
		break;
	case 4:
	case 5:
	case 6:
		d = rnd_between(50, 3000);
		break;
	case 7:
		d = rnd_between(3000, 120000);
		break;
	case 8:
		d = rnd_between(1, 48) * 3600000;
		break;
	case 9:
		d = rnd_between(1, 40) * 86400000LL + rnd_between(0, 86399999);
		break;
	case 10:
		/* To the next period boundary, give or take a little. */
		d = plan_period_end(boundary, now / 1000) * 1000 - now + rnd_between(-3, 3);
		break;
	default:
		/* A clock that steps back a little, but never into an earlier
		 * period: Redis keeps a counter per period, plan.c only one. */
		d = -rnd_between(1, 500);
		if (plan_period_start(boundary, (now + d) / 1000) !=
		    plan_period_start(boundary, now / 1000))
			d = 0;
		break;
	}
	/* plan.c's last_ms 0 means "never used": the epoch itself is left out. */
	return now + d < 1 ? now : now + d;
}

static void random_plan(struct plan *p)
{
	static const double rates[] = {0,         0.001, 0.1,       0.25,     0.5,       1,
				       1.5,       2,     2.5,       3,        7,         10,
				       100,       1000,  1.0 / 3,   0.7,      12.345678, 0.000001,
				       0.0000005, 1e-9,  0.0000015, 2.6666665};
	p->name = "probe";
	p->rate = rates[rnd() % (sizeof rates / sizeof rates[0])];
	p->burst = rnd() % 5 == 0 ? rnd_between(50, 1000) : rnd_between(0, 6);
	p->quota = rnd() % 3 == 0 ? 0 : rnd_between(1, 12);
	p->period = (enum plan_period)(rnd() % 4);
	if (p->period == PERIOD_NONE && rnd() % 2)
		p->quota = 0;
}

/* One EVAL of the script at a chosen clock. */
static int eval_at(redisContext *c, const char *key, const struct plan *p, int64_t now_ms,
		   enum plan_verdict *v, int64_t *retry)
{
	char rate[40], burst[32], quota[32], now[32];
	snprintf(rate, sizeof rate, "%.17g", p->rate);
	snprintf(burst, sizeof burst, "%" PRId64, p->burst);
	snprintf(quota, sizeof quota, "%" PRId64, p->quota);
	snprintf(now, sizeof now, "%" PRId64, now_ms);
	const char *argv[] = {"EVAL", redis_limit_script,     "1", key, rate, burst,
			      quota,  period_name(p->period), now};
	redisReply *rep = redisCommandArgv(c, 9, argv, NULL);
	int rc = -1;
	if (!rep)
		fprintf(stderr, "redisprobe: EVAL: %s\n", c->errstr);
	else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
		fprintf(stderr, "redisprobe: EVAL: %s\n",
			rep->type == REDIS_REPLY_ERROR ? rep->str : "odd reply");
	else {
		*v = (enum plan_verdict)rep->element[0]->integer;
		*retry = rep->element[1]->integer;
		rc = 0;
	}
	if (rep)
		freeReplyObject(rep);
	return rc;
}

static int compare(const char *host, int port, const char *password, uint64_t seed)
{
	struct timeval tv = {5, 0};
	redisContext *c = redisConnectWithTimeout(host, port, tv);
	long decisions = 0;
	int scenarios = 400, rc = 1;

	if (!c || c->err) {
		fprintf(stderr, "redisprobe: connect: %s\n", c ? c->errstr : "out of memory");
		goto out;
	}
	if (*password) {
		redisReply *a = redisCommand(c, "AUTH %s", password);
		bool ok = a && a->type == REDIS_REPLY_STATUS;
		if (a)
			freeReplyObject(a);
		if (!ok) {
			fprintf(stderr, "redisprobe: AUTH failed\n");
			goto out;
		}
	}
	rng_state = seed ? seed : 1;
	for (int s = 0; s < scenarios; s++) {
		struct plan p;
		struct plan_bucket b = {0, 0};
		struct plan_quota q = {0, 0};
		char key[120];
		random_plan(&p);
		/* A fresh key per run: an earlier run's counters live on. */
		snprintf(key, sizeof key, "imgsvc-cmp:{%" PRIu64 "-%ld-%ld-%d}", seed,
			 (long)getpid(), (long)time(NULL), s);
		int64_t now = interesting_start();
		int steps = (int)rnd_between(5, 60);
		for (int i = 0; i < steps; i++) {
			enum plan_verdict vc, vr;
			int64_t rc_retry = 0, rr_retry = 0;
			vc = plan_admit(&p, &b, &q, now, &rc_retry);
			if (eval_at(c, key, &p, now, &vr, &rr_retry) < 0)
				goto out;
			decisions++;
			if (vc != vr || (vc != PLAN_ALLOW && rc_retry != rr_retry)) {
				printf("DIFFERENT (seed %" PRIu64
				       ", scenario %d, step %d): plan rate %.9g "
				       "burst %" PRId64 " quota %" PRId64 " per %s, now_ms %" PRId64
				       ": plan.c verdict %d retry %" PRId64
				       ", Lua verdict %d retry %" PRId64 "\n",
				       seed, s, i, p.rate, p.burst, p.quota, period_name(p.period),
				       now, (int)vc, rc_retry, (int)vr, rr_retry);
				goto out;
			}
			now = next_step(now, p.period);
		}
	}
	printf("same %ld decisions in %d scenarios\n", decisions, scenarios);
	rc = 0;
out:
	if (c)
		redisFree(c);
	return rc;
}

static enum plan_period parse_period(const char *s)
{
	return strcmp(s, "none") == 0 ? PERIOD_NONE : plan_period_parse(s);
}

int main(int argc, char **argv)
{
	struct redis_options opt = {NULL, 0, "", "imgsvc-test:", 500};
	long interval_ms = 0;
	int procs = 0, c;
	bool verbose = false, cmp = false;

	/* As imgsvc does: a write to a connection Redis closed must fail, not kill. */
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt(argc, argv, "P:a:x:t:i:vC")) != -1) {
		switch (c) {
		case 'P':
			procs = atoi(optarg);
			break;
		case 'a':
			opt.password = optarg;
			break;
		case 'x':
			opt.prefix = optarg;
			break;
		case 't':
			opt.timeout_ms = atol(optarg);
			break;
		case 'i':
			interval_ms = atol(optarg);
			break;
		case 'v':
			verbose = true;
			break;
		case 'C':
			cmp = true;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (cmp) {
		if (argc < 2 || argc > 3)
			usage();
		return compare(argv[0], atoi(argv[1]), opt.password,
			       argc == 3 ? strtoull(argv[2], NULL, 10) : (uint64_t)time(NULL));
	}
	if (argc != 8)
		usage();

	struct plan p = {"probe", atof(argv[3]), atoll(argv[4]), atoll(argv[5]),
			 parse_period(argv[6])};
	long count = atol(argv[7]);
	opt.host = argv[0];
	opt.port = atoi(argv[1]);
	if (p.period == PERIOD_NONE && strcmp(argv[6], "none") != 0)
		usage();

	struct tally t = {0};
	if (procs > 0)
		run_procs(&opt, argv[2], &p, count, interval_ms, verbose, procs, &t);
	else
		run_calls(&opt, argv[2], &p, count, interval_ms, verbose, &t);
	printf("allowed %ld refused %ld retry_after %" PRId64
	       " errors %ld rate_limited %ld quota_exceeded %ld\n",
	       t.allowed, t.rate_limited + t.quota_exceeded, t.max_retry, t.errors, t.rate_limited,
	       t.quota_exceeded);
	return 0;
}
