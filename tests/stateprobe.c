/*
 * stateprobe.c - drives the shared state file (src/state.c) for
 * tests/t0300-state.sh: admissions with a given plan and clock, many
 * processes at once, a lock holder killed mid-update, a lock left by a
 * "previous boot", synthetic finished requests, usage rows and metrics.
 *
 * Usage: stateprobe FILE COMMAND [ARG...]
 *   open                      create or open the file; prints "ok"
 *   admit KEY N [quota=Q] [period=day|week|month] [rate=R] [burst=B] [at=T]
 *                             N admissions at T (YYYY-MM-DD = its noon UTC,
 *                             or ms since the epoch; default 2024-01-01);
 *                             prints "allowed A limited L retry S"
 *   hammer PROCS N KEY QUOTA [BURST]
 *                             PROCS processes, each opening the file itself,
 *                             start together and ask N admissions of KEY
 *                             (quota Q a day; with BURST, a bucket of BURST
 *                             refilled at 0.001/s); prints each child's
 *                             counts and "total: allowed A limited L"
 *   record KEY STATUS BYTES DATE [COUNT [LATENCY_S [S3_S [hit|miss]]]]
 *                             COUNT finished requests on DATE (KEY "-": none)
 *   kill-holder WAITERS       a child takes the lock and is SIGKILLed holding
 *                             it while WAITERS processes wait for it, then
 *                             WAITERS more come; prints each one's wait and
 *                             "slowest: MS ms"; exit 1 if any waited > 1 s
 *   stale [keep-boot]         make the lock look held by a thread of a
 *                             previous boot (keep-boot: of this boot)
 *   usage [KEY]               every usage row: "KEY DATE ALL 1XX..5XX BYTES LIMITED"
 *   metrics                   the Prometheus text
 * Exits 1 on failure, 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "plan.h"
#include "state.h"

static const char *path;
/* Where state_admit reports a lock not taken in time (per thread). */
static _Thread_local bool unavail;

static void usage(void)
{
	fputs("usage: stateprobe FILE open | admit KEY N [quota=Q] [period=P] [rate=R] [burst=B] "
	      "[at=T]\n"
	      "       | hammer PROCS N KEY QUOTA [BURST] | record KEY STATUS BYTES DATE [COUNT "
	      "[LAT [S3 "
	      "[hit|miss]]]]\n"
	      "       | kill-holder WAITERS | stale [keep-boot] | layout | usage [KEY] | metrics\n",
	      stderr);
	exit(2);
}

static int64_t number(const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno)
		usage();
	return v;
}

/* YYYY-MM-DD (its noon, UTC) or milliseconds since the epoch. */
static int64_t when(const char *s)
{
	int y, m, d;
	char extra;
	if (sscanf(s, "%d-%d-%d%c", &y, &m, &d, &extra) == 3)
		return (plan_days_from_civil(y, m, d) * 86400 + 43200) * 1000;
	return number(s);
}

static struct state *open_or_die(void)
{
	char err[512];
	struct state *s = state_open(path, err, sizeof err);
	if (!s) {
		fprintf(stderr, "stateprobe: %s\n", err);
		exit(1);
	}
	return s;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int admit(int argc, char **argv)
{
	struct plan p = {.name = "probe"};
	int64_t at = when("2024-01-01"), retry = 0, allowed = 0, limited = 0, unavailable = 0;
	if (argc < 2)
		usage();
	const char *key = argv[0];
	int64_t n = number(argv[1]);
	for (int i = 2; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		if (!eq)
			usage();
		const char *v = eq + 1;
		size_t len = (size_t)(eq - argv[i]);
		if (len == 5 && strncmp(argv[i], "quota", len) == 0)
			p.quota = number(v);
		else if (len == 6 && strncmp(argv[i], "period", len) == 0)
			p.period = plan_period_parse(v);
		else if (len == 4 && strncmp(argv[i], "rate", len) == 0)
			p.rate = strtod(v, NULL);
		else if (len == 5 && strncmp(argv[i], "burst", len) == 0)
			p.burst = number(v);
		else if (len == 2 && strncmp(argv[i], "at", len) == 0)
			at = when(v);
		else
			usage();
	}
	if (p.quota && p.period == PERIOD_NONE)
		p.period = PERIOD_DAY;
	struct state *s = open_or_die();
	for (int64_t i = 0; i < n; i++) {
		int64_t r;
		if (state_admit(s, key, &p, at, &r, &unavail) == PLAN_ALLOW)
			allowed++, unavailable += unavail;
		else
			limited++, retry = r;
	}
	state_close(s);
	printf("allowed %" PRId64 " limited %" PRId64 " retry %" PRId64, allowed, limited, retry);
	/* Only when the lock was not taken in time (most expectations omit it). */
	if (unavailable)
		printf(" unavailable %" PRId64, unavailable);
	printf("\n");
	return 0;
}

struct counts {
	int64_t allowed, limited;
};

static int hammer(int argc, char **argv)
{
	if (argc != 4 && argc != 5)
		usage();
	int procs = (int)number(argv[0]);
	int64_t n = number(argv[1]);
	const char *key = argv[2];
	struct plan p = {.name = "hammer",
			 .rate = argc == 5 ? 0.001 : 1e9,
			 .burst = argc == 5 ? number(argv[4]) : 1000000000,
			 .quota = number(argv[3]),
			 .period = PERIOD_DAY};
	int start[2], results[2];
	struct counts total = {0};
	int failed = 0;

	if (pipe(start) < 0 || pipe(results) < 0)
		return 1;
	for (int c = 0; c < procs; c++) {
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			struct counts k = {0};
			char go;
			close(start[1]);
			struct state *s = open_or_die();
			/* Wait for the others: the read ends when the parent
			 * closes its end. */
			if (read(start[0], &go, 1) < 0)
				_exit(1);
			for (int64_t i = 0; i < n; i++) {
				int64_t r;
				if (state_admit(s, key, &p, when("2024-01-01"), &r, &unavail) == PLAN_ALLOW)
					k.allowed++;
				else
					k.limited++;
			}
			state_close(s);
			_exit(write(results[1], &k, sizeof k) == sizeof k ? 0 : 1);
		}
	}
	close(start[0]);
	close(results[1]);
	usleep(100000); /* let every child open the file and block */
	int64_t t0 = mono_ms();
	close(start[1]);
	for (int c = 0; c < procs; c++) {
		struct counts k;
		if (read(results[0], &k, sizeof k) != sizeof k) {
			failed = 1;
			break;
		}
		printf("child %d: allowed %" PRId64 " limited %" PRId64 "\n", c, k.allowed,
		       k.limited);
		total.allowed += k.allowed;
		total.limited += k.limited;
	}
	for (int c = 0; c < procs; c++) {
		int st;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed = 1;
	}
	printf("total: allowed %" PRId64 " limited %" PRId64 " in %" PRId64 " ms\n", total.allowed,
	       total.limited, mono_ms() - t0);
	return failed;
}

static int record(int argc, char **argv)
{
	if (argc < 4 || argc > 8)
		usage();
	struct state_request r = {
	    .key_name = strcmp(argv[0], "-") == 0 ? NULL : argv[0],
	    .status = (int)number(argv[1]),
	    .bytes = number(argv[2]),
	    .now_ms = when(argv[3]),
	    .total_s = argc > 5 ? strtod(argv[5], NULL) : 0.01,
	    .s3_s = argc > 6 ? strtod(argv[6], NULL) : -1,
	    .cache = argc > 7 ? (strcmp(argv[7], "hit") == 0 ? 1 : 2) : 0,
	};
	int64_t count = argc > 4 ? number(argv[4]) : 1;
	struct state *s = open_or_die();
	for (int64_t i = 0; i < count; i++)
		state_record(s, &r);
	state_close(s);
	return 0;
}

/* A waiter: one admission, then the monotonic time it got through. */
static pid_t waiter(int out)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct plan p = {.name = "w", .rate = 1e9, .burst = 1000000000};
		int64_t r;
		alarm(5); /* a wedged lock kills us, and the parent notices */
		struct state *s = open_or_die();
		state_admit(s, "robust", &p, when("2024-01-01"), &r, &unavail);
		int64_t through = mono_ms();
		state_close(s);
		_exit(write(out, &through, sizeof through) == sizeof through ? 0 : 1);
	}
	return pid;
}

static int kill_holder(int argc, char **argv)
{
	if (argc != 1)
		usage();
	int waiters = (int)number(argv[0]), ready[2], results[2], failed = 0;
	int64_t slowest = 0;
	char c;

	if (pipe(ready) < 0 || pipe(results) < 0)
		return 1;
	struct state *s = open_or_die();
	pid_t holder = fork();
	if (holder == 0) {
		if (state_test_lock(s) != 0)
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	if (holder < 0 || read(ready[0], &c, 1) != 1)
		return 1;
	for (int i = 0; i < waiters; i++)
		waiter(results[1]);
	usleep(300000); /* they are all blocked on the lock now */
	int64_t killed = mono_ms();
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	for (int i = 0; i < waiters; i++)
		waiter(results[1]);
	close(results[1]);
	for (int i = 0; i < 2 * waiters; i++) {
		int64_t through;
		if (read(results[0], &through, sizeof through) != sizeof through) {
			printf("waiter %d: never got through\n", i);
			failed = 1;
			continue;
		}
		printf("waiter %d: through %" PRId64 " ms after the kill\n", i, through - killed);
		if (through - killed > slowest)
			slowest = through - killed;
	}
	for (int i = 0; i < 2 * waiters; i++) {
		int st;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed = 1;
	}
	printf("slowest: %" PRId64 " ms\n", slowest);
	state_close(s);
	return failed || slowest > 1000;
}

static void print_row(const struct state_usage *u, void *ctx)
{
	int64_t y;
	int m, d;
	(void)ctx;
	plan_civil_from_days(u->day, &y, &m, &d);
	printf("%s %04" PRId64 "-%02d-%02d %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
	       " %" PRId64 " %" PRId64 " %" PRId64 "\n",
	       u->key_name, y, m, d, u->requests[0], u->requests[1], u->requests[2], u->requests[3],
	       u->requests[4], u->requests[5], u->bytes, u->limited);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	path = argv[1];
	const char *cmd = argv[2];
	argc -= 3;
	argv += 3;
	if (strcmp(cmd, "open") == 0) {
		state_close(open_or_die());
		puts("ok");
		return 0;
	}
	if (strcmp(cmd, "admit") == 0)
		return admit(argc, argv);
	if (strcmp(cmd, "hammer") == 0)
		return hammer(argc, argv);
	if (strcmp(cmd, "record") == 0)
		return record(argc, argv);
	if (strcmp(cmd, "kill-holder") == 0)
		return kill_holder(argc, argv);
	if (strcmp(cmd, "layout") == 0) {
		state_test_layout(stdout);
		return 0;
	}
	if (strcmp(cmd, "stale") == 0) {
		struct state *s = open_or_die();
		state_test_stale_lock(s, argc > 0 && strcmp(argv[0], "keep-boot") == 0);
		state_close(s);
		return 0;
	}
	if (strcmp(cmd, "usage") == 0) {
		struct state *s = open_or_die();
		state_usage(s, argc > 0 ? argv[0] : NULL, INT64_MIN, INT64_MAX, print_row, NULL);
		state_close(s);
		return 0;
	}
	if (strcmp(cmd, "metrics") == 0) {
		struct buf out = BUF_INIT;
		struct state *s = open_or_die();
		state_metrics(s, &out);
		state_close(s);
		fwrite(out.data, 1, out.len, stdout);
		buf_free(&out);
		return 0;
	}
	usage();
	return 2;
}
