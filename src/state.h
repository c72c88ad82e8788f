/*
 * state.h - the host's shared state: usage-plan counters, usage per key and
 * day, and metrics, in one memory-mapped file that every imgsvc worker
 * process of the host maps.
 *
 * Layout (state.c): a header (magic, version, boot id, a process-shared
 * robust mutex), a table of key records found by key NAME (so adding,
 * removing or renaming other keys in the config never moves a counter), a
 * table of (key, UTC day) usage records, and the metrics counters. Every
 * update happens under the one robust mutex: a worker killed while holding
 * it leaves it "owner died", and the next worker takes it over
 * (pthread_mutex_consistent) instead of waiting forever. The file survives
 * restarts; a lock word left by a previous boot is reset on open.
 */
#ifndef IMGSVC_STATE_H
#define IMGSVC_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "plan.h"

struct state;

/* Opens (creating and initialising if needed) the state file at path. */
struct state *state_open(const char *path, char *err, size_t errlen);
/*
 * Opens an existing, initialised state file for a report (imgsvc-usage):
 * never creates or initialises one. When the file is not writable it is
 * mapped read-only and read without the lock (counters may be a request
 * apart from each other; running workers are not disturbed); state_admit
 * and state_record then do nothing.
 */
struct state *state_open_report(const char *path, char *err, size_t errlen);
void state_close(struct state *s);
/*
 * imgsvc -t: whether a worker can open path as state_open does, changing
 * nothing. 0 when it can (msg then says what a worker will do first, such as
 * create the file, move a damaged one aside or clear damaged records, or is
 * empty); -1 with the reason when it cannot (directory missing or not
 * writable, file unreadable, its lock not free within 200 ms).
 */
int state_check(const char *path, char *msg, size_t msglen);
/* Where damage found while running is reported (default: stderr). */
void state_set_warn(void (*fn)(const char *msg));

/*
 * Admits or refuses one request of key_name under plan, atomically across
 * every process mapping the file (see plan_admit). A refused request is
 * counted in the key's "limited" counter. When the lock cannot be taken
 * within a short bound, *unavailable is set and PLAN_ALLOW returned: the
 * caller applies its failure policy ([limits] redis_failure).
 */
enum plan_verdict state_admit(struct state *s, const char *key_name, const struct plan *plan,
			      int64_t now_ms, int64_t *retry_after_s, bool *unavailable);

/* What one finished request adds to usage and metrics. */
struct state_request {
	const char *key_name; /* NULL: no valid key (usage is not recorded) */
	int status;           /* HTTP status sent */
	int64_t bytes;        /* body bytes sent */
	double total_s;       /* request latency */
	double s3_s;          /* time waiting for S3; < 0 when S3 was not asked */
	int cache;            /* 0: not a derivative, 1: hit, 2: miss */
	int64_t now_ms;       /* when it finished (for the UTC day) */
	bool no_wait;         /* not counted rather than wait for the lock (health) */
};

void state_record(struct state *s, const struct state_request *r);

/* One row of usage: a key on a UTC day. */
struct state_usage {
	char key_name[65];
	int64_t day;         /* UTC days since the epoch */
	int64_t requests[6]; /* [0] all, [1..5] by status class 1xx..5xx */
	int64_t bytes;
	int64_t limited; /* of which refused with 429 */
};

/*
 * Calls fn for each usage row of key_name (NULL: every key) with
 * from_day <= day <= to_day, ordered by key then day. Returns the number of
 * rows.
 */
size_t state_usage(struct state *s, const char *key_name, int64_t from_day, int64_t to_day,
		   void (*fn)(const struct state_usage *row, void *ctx), void *ctx);

/*
 * This boot's id (/proc/sys/kernel/random/boot_id), or "" when it cannot be
 * read: what a lock word or slot owner is older than when it differs.
 */
#define STATE_BOOT_ID_LEN 48
void state_boot_id(char out[STATE_BOOT_ID_LEN]);

/* Appends the metrics in Prometheus text exposition format 0.0.4. */
void state_metrics(struct state *s, struct buf *out);

#ifdef STATE_TESTING
/* For tests/stateprobe only: take the lock and keep it (to die holding
 * it); make the lock look held by a thread of a previous boot. */
int state_test_lock(struct state *s);
void state_test_stale_lock(struct state *s, bool keep_boot_id);
/* For tests: "REGION OFFSET SIZE" lines of the file's layout. */
void state_test_layout(FILE *out);
#endif

#endif
