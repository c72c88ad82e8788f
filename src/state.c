/*
 * state.c - the host's shared state file: plan counters, usage per key and
 * day, and metrics, shared by every worker through one MAP_SHARED mapping.
 *
 * The file is exactly one struct state_file. Every update happens under
 * the process-shared robust mutex in its header; a worker that dies holding
 * it leaves it "owner died", and the next locker marks it consistent and
 * carries on (what the dead worker was doing is at most one request's
 * worth of counting, half done). A lock word can also be left behind by a
 * previous boot, where no kernel will ever mark its owner dead: the header
 * keeps the boot id, and the first opener of a new boot re-initialises the
 * mutex (and nothing else).
 *
 * Opening takes flock(LOCK_EX) while it checks or initialises the header,
 * so workers that start together initialise the file once. A worker that
 * finds one of imgsvc's files it cannot count in (another version, or
 * damaged: a bad magic in a file of this size) moves it aside (kept, never
 * wiped) and starts a new one; any other file is refused, untouched. It
 * checks every record of a file it keeps: a damaged record is cleared, so
 * its key starts again as a new key would, never with more than its burst. imgsvc-usage refuses such a file, and
 * imgsvc -t (state_check) says what a worker will do with it.
 *
 * Records are found by name (FNV-1a, linear probing) and never removed, so
 * a config change that adds, removes or renames keys moves no counter. The
 * tables hold at most half their slots (short probes); past that a new key
 * or key-day is not stored, the request is admitted or recorded without it,
 * and imgsvc_state_dropped_total says so. A slot is published by storing
 * its `used` flag last (release), so the report, which may read without
 * the lock (a read-only file), never sees a half-written name.
 */
#include "state.h"
#include "status.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAGIC "imgsvcS1"
#define STATE_VERSION 2
#define NAME_MAX_LEN 64
#define KEY_SLOTS 8192
#define KEY_LIMIT 4096
#define USAGE_SLOTS 131072
#define USAGE_LIMIT 65536
#define BOOT_ID_LEN STATE_BOOT_ID_LEN
#define DAY_MS 86400000

/*
 * How long a worker waits for the lock. Updates under it take microseconds;
 * a longer wait means a lock word nobody will release (damaged, or held by
 * something that is not a dying imgsvc), and waiting on it forever would
 * hang every request thread, health checks included.
 */
#define LOCK_WAIT_MS 200

/*
 * Requests by status: each HTTP code imgsvc answers with (status.c's
 * table, ascending), then "other". The file keeps room for more codes, so
 * a new status does not change its layout.
 */
#define N_STATUS 32
_Static_assert(ST_COUNT + 1 <= N_STATUS, "state file: no room for every status code");

/* Histogram bounds in seconds (Prometheus' defaults), then +Inf. */
static const double bucket_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BOUNDS (sizeof bucket_bounds / sizeof bucket_bounds[0])

struct histogram {
	int64_t bucket[N_BOUNDS + 1]; /* per bucket, not cumulative; last: above all */
	int64_t count;
	int64_t sum_us; /* microseconds: an integer sum adds up exactly */
};

struct metrics {
	int64_t status[N_STATUS];
	struct histogram latency, s3;
	int64_t cache_hits, cache_misses, bytes_out;
	int64_t keys_full, usage_full, bad_names; /* updates not stored */
	int64_t lock_recoveries, lock_errors;
};

struct key_rec {
	uint32_t used;
	char name[NAME_MAX_LEN + 1];
	struct plan_bucket bucket;
	struct plan_quota quota;
	int64_t limited; /* requests refused by the plan */
};

struct usage_rec {
	uint32_t used;
	char name[NAME_MAX_LEN + 1];
	int64_t day;
	int64_t requests[6];
	int64_t bytes;
	int64_t limited;
};

struct header {
	char magic[8];
	uint32_t version;
	uint32_t name_max, key_slots, usage_slots;
	uint64_t file_size; /* also catches another pthread_mutex_t size */
	char boot_id[BOOT_ID_LEN];
	uint32_t keys_used, usage_used;
};

struct state_file {
	struct header h;
	pthread_mutex_t lock __attribute__((aligned(64)));
	struct metrics m __attribute__((aligned(64)));
	struct key_rec keys[KEY_SLOTS];
	struct usage_rec usage[USAGE_SLOTS];
};

struct state {
	struct state_file *f;
	bool readonly; /* mapped read-only: reads take no lock */
	int codes[ST_COUNT]; /* the HTTP codes counted apart, ascending (status.c) */
	size_t ncodes;
};

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* This boot's id, or "" when it cannot be read (then the lock is never
 * reset: a process that cannot see the id must not reset a lock that others
 * who can see it are using). */
void state_boot_id(char out[STATE_BOOT_ID_LEN])
{
	memset(out, 0, BOOT_ID_LEN);
	FILE *fp = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!fp)
		return;
	if (!fgets(out, BOOT_ID_LEN, fp))
		out[0] = '\0';
	fclose(fp);
	out[strcspn(out, "\n")] = '\0';
}

static int init_lock(pthread_mutex_t *lock)
{
	pthread_mutexattr_t attr;
	int rc = pthread_mutexattr_init(&attr);
	if (rc)
		return rc;
	rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	if (!rc)
		rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	if (!rc) {
		memset(lock, 0, sizeof *lock);
		rc = pthread_mutex_init(lock, &attr);
	}
	pthread_mutexattr_destroy(&attr);
	return rc;
}

static void layout(struct header *h)
{
	memcpy(h->magic, STATE_MAGIC, sizeof h->magic);
	h->version = STATE_VERSION;
	h->name_max = NAME_MAX_LEN;
	h->key_slots = KEY_SLOTS;
	h->usage_slots = USAGE_SLOTS;
	h->file_size = sizeof(struct state_file);
}

/*
 * Checks the header of an existing file. Returns 1 when it is ours and
 * usable, 0 when it is an all-zero file of our size (an initialisation
 * that died half-way: start again), -1 with a message otherwise.
 */
static int check_header(int fd, const char *path, off_t size, char *err, size_t errlen)
{
	struct header h, want = {0};
	static const char zero[8];
	layout(&want);
	if (size < (off_t)sizeof h || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
		fail(err, errlen, "%s: not an imgsvc state file (%lld bytes)",
		     path, (long long)size);
		return -1;
	}
	if (memcmp(h.magic, zero, sizeof zero) == 0 && size == (off_t)sizeof(struct state_file))
		return 0;
	if (memcmp(h.magic, want.magic, sizeof h.magic) != 0) {
		fail(err, errlen, "%s: not an imgsvc state file (bad magic)",
		     path);
		return -1;
	}
	if (h.version != want.version) {
		fail(err, errlen,
		     "%s: state file version %u, this imgsvc uses version %u: move the file aside "
		     "(it keeps the old usage) and imgsvc creates a new one",
		     path, h.version, want.version);
		return -1;
	}
	if (h.name_max != want.name_max || h.key_slots != want.key_slots ||
	    h.usage_slots != want.usage_slots || h.file_size != want.file_size ||
	    size != (off_t)want.file_size) {
		fail(err, errlen,
		     "%s: state file layout differs (%lld bytes, this build expects %llu; made on "
		     "another architecture?)",
		     path, (long long)size, (unsigned long long)want.file_size);
		return -1;
	}
	return 1;
}

static size_t check_records(struct state_file *f);
static bool sound_key(const struct key_rec *k);
static bool sound_usage(const struct usage_rec *u);
static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int lock(struct state *s);
static void unlock(struct state *s);

enum open_mode {
	OPEN_WORKER, /* create or repair: a worker must be able to count */
	OPEN_REPORT, /* imgsvc-usage: read what is there, change nothing */
	OPEN_CHECK,  /* imgsvc -t: what a worker would meet, changing nothing */
};

/*
 * Opens path and takes its flock; retries when the name was moved to
 * another file meanwhile (a worker moving a damaged file aside), so the
 * lock held is the one of the file now at path. -1 with errno on failure.
 */
static int open_locked(const char *path, int flags, int how, struct stat *st)
{
	for (int tries = 0; tries < 8; tries++) {
		int fd = open(path, flags | O_CLOEXEC, 0640);
		if (fd < 0)
			return -1;
		struct stat now;
		if (flock(fd, how) < 0 || fstat(fd, st) < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (stat(path, &now) == 0 && now.st_ino == st->st_ino && now.st_dev == st->st_dev)
			return fd;
		close(fd);
	}
	errno = EAGAIN;
	return -1;
}

/*
 * Whether a file imgsvc cannot count in is still one of its own, damaged or
 * of another version: "imgsvcS" leads its magic, or it has this build's
 * size. Only such a file is moved aside; anything else (a state_file that
 * names some other file by mistake) is refused and left where it is.
 */
static bool ours_once(int fd, off_t size)
{
	char magic[8];
	if (size == (off_t)sizeof(struct state_file))
		return true;
	return pread(fd, magic, sizeof magic, 0) == (ssize_t)sizeof magic &&
	       memcmp(magic, STATE_MAGIC, 7) == 0;
}

/* Moves a damaged file aside (kept for inspection, never deleted). */
static bool move_aside(const char *path, const char *why, char *err, size_t errlen)
{
	char aside[4096];
	snprintf(aside, sizeof aside, "%s.damaged-%lld", path, (long long)time(NULL));
	if (rename(path, aside) < 0) {
		fail(err, errlen, "%s; cannot move it aside to %s: %s", why, aside, strerror(errno));
		return false;
	}
	warn("%s; moved aside to %s, a new state file started (usage counts start again)", why,
	     aside);
	return true;
}

/* imgsvc -t: can a worker open path, and what will it find? */
static int check_state(const char *path, char *msg, size_t msglen)
{
	struct stat st;
	int fd = open_locked(path, O_RDWR, LOCK_EX, &st);
	if (fd < 0 && errno == ENOENT) {
		char dir[4096];
		snprintf(dir, sizeof dir, "%s", path);
		char *slash = strrchr(dir, '/');
		if (!slash)
			snprintf(dir, sizeof dir, ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
		struct stat ds;
		if (stat(dir, &ds) < 0) {
			fail(msg, msglen, "%s: directory %s: %s", path, dir, strerror(errno));
			return -1;
		}
		if (!S_ISDIR(ds.st_mode)) {
			fail(msg, msglen, "%s: %s is not a directory", path, dir);
			return -1;
		}
		if (access(dir, W_OK | X_OK) < 0) {
			fail(msg, msglen, "%s: a worker cannot create it in %s: %s", path, dir,
			     strerror(errno));
			return -1;
		}
		fail(msg, msglen, "%s: not there yet; the first worker creates it", path);
		return 0;
	}
	if (fd < 0) {
		fail(msg, msglen, "%s: %s", path, strerror(errno));
		return -1;
	}
	int rc = -1;
	struct state_file *f = MAP_FAILED;
	if (!S_ISREG(st.st_mode)) {
		fail(msg, msglen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size == 0) {
		fail(msg, msglen, "%s: empty; the first worker initialises it", path);
		rc = 0;
		goto out;
	}
	char why[1024];
	int h = check_header(fd, path, st.st_size, why, sizeof why);
	if (h < 0 && !ours_once(fd, st.st_size)) {
		fail(msg, msglen, "%s: a worker refuses it and exits (not an imgsvc file)", why);
		goto out;
	}
	if (h < 0) {
		fail(msg, msglen, "%s; a worker will move it aside and start a new one", why);
		rc = 0;
		goto out;
	}
	if (h == 0) {
		fail(msg, msglen, "%s: half initialised; a worker initialises it again", path);
		rc = 0;
		goto out;
	}
	f = mmap(NULL, sizeof *f, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED) {
		fail(msg, msglen, "%s: mmap: %s", path, strerror(errno));
		goto out;
	}
	char boot[BOOT_ID_LEN];
	state_boot_id(boot);
	if (!boot[0] || memcmp(f->h.boot_id, boot, sizeof boot) == 0) {
		/* This boot's lock word: a worker must be able to take it. */
		struct state s = {.f = f};
		if (lock(&s) != 0) {
			fail(msg, msglen,
			     "%s: its lock was not free within %d ms (a stale lock word?): workers "
			     "answer per [limits] redis_failure until it is; stop the workers and "
			     "move the file aside",
			     path, LOCK_WAIT_MS);
			goto out;
		}
		unlock(&s);
	}
	size_t bad = 0;
	for (size_t i = 0; i < KEY_SLOTS; i++)
		bad += (f->keys[i].used || f->keys[i].name[0]) && !sound_key(&f->keys[i]);
	for (size_t i = 0; i < USAGE_SLOTS; i++)
		bad += (f->usage[i].used || f->usage[i].name[0]) && !sound_usage(&f->usage[i]);
	if (bad)
		fail(msg, msglen, "%s: %zu damaged records; a worker clears them", path, bad);
	else
		msg[0] = '\0';
	rc = 0;
out:
	if (f != MAP_FAILED)
		munmap(f, sizeof *f);
	flock(fd, LOCK_UN);
	close(fd);
	return rc;
}

static struct state *open_state(const char *path, enum open_mode mode, char *err, size_t errlen)
{
	struct state *s = NULL;
	struct state_file *f = MAP_FAILED;
	bool readonly = false, fresh = false, report = mode == OPEN_REPORT;
	struct stat st;
	char boot[BOOT_ID_LEN];
	int fd, rc, moved = 0;

again:
	if (report) {
		/* Lock properly when allowed to; a read-only file is read without
		 * the lock, which running workers never notice. */
		fd = open_locked(path, O_RDWR, LOCK_EX, &st);
		if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
			fd = open_locked(path, O_RDONLY, LOCK_SH, &st);
			readonly = true;
		}
	} else {
		fd = open_locked(path, O_RDWR | O_CREAT, LOCK_EX, &st);
	}
	if (fd < 0) {
		fail(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		fail(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size == 0) {
		fresh = true;
	} else {
		rc = check_header(fd, path, st.st_size, err, errlen);
		if (rc < 0 && !report && ours_once(fd, st.st_size) && moved++ == 0) {
			/* Not a file a worker can count in: kept aside, not trusted. */
			char why[1024];
			snprintf(why, sizeof why, "%s", err);
			if (!move_aside(path, why, err, errlen))
				goto out;
			flock(fd, LOCK_UN);
			close(fd);
			goto again;
		}
		if (rc < 0)
			goto out;
		fresh = rc == 0;
	}
	if (fresh && report) {
		fail(err, errlen, "%s: no imgsvc worker has initialised this state file yet", path);
		goto out;
	}
	if (fresh && ftruncate(fd, sizeof(struct state_file)) < 0) {
		fail(err, errlen, "%s: cannot size the state file: %s", path, strerror(errno));
		goto out;
	}
	f = mmap(NULL, sizeof *f, readonly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED) {
		fail(err, errlen, "%s: mmap: %s", path, strerror(errno));
		goto out;
	}
	state_boot_id(boot);
	if (fresh) {
		memset(&f->h, 0, sizeof f->h);
		rc = init_lock(&f->lock);
		if (rc) {
			fail(err, errlen, "%s: cannot initialise the lock: %s", path, strerror(rc));
			goto out;
		}
		memcpy(f->h.boot_id, boot, sizeof f->h.boot_id);
		/* The magic last: a file without it is initialised again. */
		struct header h = f->h;
		layout(&h);
		memcpy(h.magic, f->h.magic, sizeof h.magic);
		f->h = h;
		memcpy(f->h.magic, STATE_MAGIC, sizeof f->h.magic);
	} else if (!readonly && boot[0] && memcmp(f->h.boot_id, boot, sizeof boot) != 0) {
		/* Nobody of this boot has opened the file yet (they would have
		 * stored the id, under this same flock): the lock word is from a
		 * previous boot, and nobody can be using the mutex. */
		rc = init_lock(&f->lock);
		if (rc) {
			fail(err, errlen, "%s: cannot initialise the lock: %s", path, strerror(rc));
			goto out;
		}
		memcpy(f->h.boot_id, boot, sizeof f->h.boot_id);
	}
	if (!fresh && !report) {
		size_t bad = check_records(f);
		if (bad)
			warn("state file %s: %zu damaged records cleared (their keys start again "
			     "as new keys)",
			     path, bad);
	}
	s = xcalloc(1, sizeof *s);
	s->f = f;
	s->readonly = readonly;
	s->ncodes = status_http_codes(s->codes);
	f = MAP_FAILED;
out:
	if (f != MAP_FAILED)
		munmap(f, sizeof *f);
	/* Explicitly: the mapping keeps the open file (and so a flock) alive
	 * after close. */
	flock(fd, LOCK_UN);
	close(fd);
	return s;
}

struct state *state_open(const char *path, char *err, size_t errlen)
{
	return open_state(path, OPEN_WORKER, err, errlen);
}

struct state *state_open_report(const char *path, char *err, size_t errlen)
{
	return open_state(path, OPEN_REPORT, err, errlen);
}

int state_check(const char *path, char *msg, size_t msglen)
{
	return check_state(path, msg, msglen);
}

void state_close(struct state *s)
{
	if (!s)
		return;
	munmap(s->f, sizeof *s->f);
	free(s);
}


/* Takes the lock; 0 when held, ETIMEDOUT (or another error) when not. A dead
 * owner's lock is taken over. */
static int lock(struct state *s)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)LOCK_WAIT_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
	}
	int rc = pthread_mutex_timedlock(&s->f->lock, &until);
	if (rc == EOWNERDEAD) {
		pthread_mutex_consistent(&s->f->lock);
		s->f->m.lock_recoveries++;
		rc = 0;
	}
	if (rc)
		__atomic_fetch_add(&s->f->m.lock_errors, 1, __ATOMIC_RELAXED);
	return rc;
}

static void unlock(struct state *s)
{
	pthread_mutex_unlock(&s->f->lock);
}

/* Readers of a read-only mapping take no lock; everyone else does. */
static bool read_lock(struct state *s)
{
	return s->readonly || lock(s) == 0;
}

static void read_unlock(struct state *s)
{
	if (!s->readonly)
		unlock(s);
}

static bool valid_name(const char *name)
{
	return name && name[0] && strlen(name) <= NAME_MAX_LEN;
}

static void warn_stderr(const char *msg)
{
	fprintf(stderr, "imgsvc: warning: %s\n", msg);
}

static void (*warn_fn)(const char *msg) = warn_stderr;

void state_set_warn(void (*fn)(const char *msg))
{
	warn_fn = fn ? fn : warn_stderr;
}

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	warn_fn(msg);
}

/*
 * A stored name as imgsvc writes one: NUL-terminated within the field and
 * not empty, NULs after it. Anything else is damage (the file is shared,
 * writable, and outlives the processes that wrote it).
 */
static bool sound_name(const char *name, size_t size)
{
	const char *end = memchr(name, '\0', size);
	if (!end || end == name)
		return false;
	for (const char *p = end; p < name + size; p++)
		if (*p)
			return false;
	return true;
}

/* Far beyond any real count or clock, yet far from overflowing. */
#define SANE_MAX ((int64_t)1 << 52)

static bool sound_key(const struct key_rec *k)
{
	return k->used == 1 && sound_name(k->name, sizeof k->name) && k->bucket.last_ms >= 0 &&
	       k->bucket.last_ms < SANE_MAX && k->bucket.tokens > -SANE_MAX &&
	       k->bucket.tokens < SANE_MAX && k->quota.period_start >= 0 &&
	       k->quota.period_start < SANE_MAX && k->quota.count >= 0 &&
	       k->quota.count < SANE_MAX && k->limited >= 0 && k->limited < SANE_MAX;
}

static bool sound_usage(const struct usage_rec *u)
{
	if (u->used != 1 || !sound_name(u->name, sizeof u->name) || u->day < 0 ||
	    u->day > SANE_MAX || u->bytes < 0 || u->bytes > SANE_MAX || u->limited < 0 ||
	    u->limited > SANE_MAX)
		return false;
	for (size_t i = 0; i < sizeof u->requests / sizeof u->requests[0]; i++)
		if (u->requests[i] < 0 || u->requests[i] > SANE_MAX)
			return false;
	return true;
}

/* The metrics are int64 counters only; damage shows as values out of range. */
_Static_assert(sizeof(struct metrics) % sizeof(int64_t) == 0, "metrics: int64 counters only");

static bool sound_metrics(const struct metrics *m)
{
	const int64_t *v = (const int64_t *)m;
	for (size_t i = 0; i < sizeof *m / sizeof *v; i++)
		if (v[i] < 0 || v[i] > SANE_MAX)
			return false;
	return true;
}

/*
 * Checks every record under the flock of opening: a damaged one is cleared
 * (its key starts again as a new key would: a full burst, a new quota
 * period) and the tables' counts are made true again. Returns how many
 * records were cleared.
 */
static size_t check_records(struct state_file *f)
{
	size_t bad = 0;
	uint32_t keys = 0, usage = 0;
	for (size_t i = 0; i < KEY_SLOTS; i++) {
		struct key_rec *k = &f->keys[i];
		if (k->used == 0 && !k->name[0])
			continue;
		if (sound_key(k)) {
			keys++;
			continue;
		}
		memset(k, 0, sizeof *k);
		bad++;
	}
	for (size_t i = 0; i < USAGE_SLOTS; i++) {
		struct usage_rec *u = &f->usage[i];
		if (u->used == 0 && !u->name[0])
			continue;
		if (sound_usage(u)) {
			usage++;
			continue;
		}
		memset(u, 0, sizeof *u);
		bad++;
	}
	f->h.keys_used = keys;
	f->h.usage_used = usage;
	if (!sound_metrics(&f->m)) {
		memset(&f->m, 0, sizeof f->m);
		bad++;
	}
	return bad;
}

static uint64_t hash(const char *name, int64_t day)
{
	uint64_t h = 14695981039346656037ULL;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	for (int i = 0; i < 8; i++)
		h = (h ^ (uint8_t)((uint64_t)day >> (8 * i))) * 1099511628211ULL;
	return h;
}

static bool is_used(const uint32_t *used)
{
	return __atomic_load_n(used, __ATOMIC_ACQUIRE) != 0;
}

/* Damaged metrics start again from zero (counters may reset, never overflow). */
static void reset_metrics_if_damaged(struct state_file *f)
{
	if (sound_metrics(&f->m))
		return;
	memset(&f->m, 0, sizeof f->m);
	warn("state file: damaged metrics counters reset to zero");
}

/* Counts no table can reach: damage since opening; every record is checked. */
static void recount_if_damaged(struct state_file *f)
{
	if (f->h.keys_used <= KEY_LIMIT && f->h.usage_used <= USAGE_LIMIT)
		return;
	size_t bad = check_records(f);
	warn("state file: impossible record counts; every record checked, %zu damaged cleared",
	     bad);
}

/* The key's record, created if new and there is room; NULL if full. */
static struct key_rec *key_find(struct state_file *f, const char *name)
{
	size_t i = hash(name, 0) & (KEY_SLOTS - 1);
	for (size_t n = 0; n < KEY_SLOTS; n++, i = (i + 1) & (KEY_SLOTS - 1)) {
		struct key_rec *k = &f->keys[i];
		if (!is_used(&k->used)) {
			if (f->h.keys_used >= KEY_LIMIT)
				return NULL;
			memset(k, 0, sizeof *k);
			strcpy(k->name, name);
			f->h.keys_used++;
			__atomic_store_n(&k->used, 1, __ATOMIC_RELEASE);
			return k;
		}
		if (!sound_key(k)) {
			/* Damaged since the file was opened: the key starts over. */
			warn("state file: a damaged plan record (slot %zu) cleared", i);
			memset(k, 0, sizeof *k);
			strcpy(k->name, name);
			__atomic_store_n(&k->used, 1, __ATOMIC_RELEASE);
			return k;
		}
		if (strcmp(k->name, name) == 0)
			return k;
	}
	return NULL;
}

static struct usage_rec *usage_find(struct state_file *f, const char *name, int64_t day)
{
	size_t i = hash(name, day) & (USAGE_SLOTS - 1);
	for (size_t n = 0; n < USAGE_SLOTS; n++, i = (i + 1) & (USAGE_SLOTS - 1)) {
		struct usage_rec *u = &f->usage[i];
		if (!is_used(&u->used)) {
			if (f->h.usage_used >= USAGE_LIMIT)
				return NULL;
			memset(u, 0, sizeof *u);
			strcpy(u->name, name);
			u->day = day;
			f->h.usage_used++;
			__atomic_store_n(&u->used, 1, __ATOMIC_RELEASE);
			return u;
		}
		if (!sound_usage(u)) {
			warn("state file: a damaged usage record (slot %zu) cleared", i);
			memset(u, 0, sizeof *u);
			strcpy(u->name, name);
			u->day = day;
			__atomic_store_n(&u->used, 1, __ATOMIC_RELEASE);
			return u;
		}
		if (u->day == day && strcmp(u->name, name) == 0)
			return u;
	}
	return NULL;
}

static bool unlimited(const struct plan *p)
{
	return !p || (!(p->rate > 0) && (p->quota <= 0 || p->period == PERIOD_NONE));
}

enum plan_verdict state_admit(struct state *s, const char *key_name, const struct plan *plan,
			      int64_t now_ms, int64_t *retry_after_s, bool *unavailable)
{
	*unavailable = false;
	enum plan_verdict v = PLAN_ALLOW;
	if (retry_after_s)
		*retry_after_s = 0;
	if (unlimited(plan) || s->readonly)
		return PLAN_ALLOW;
	if (!valid_name(key_name)) {
		__atomic_fetch_add(&s->f->m.bad_names, 1, __ATOMIC_RELAXED);
		return PLAN_ALLOW;
	}
	/* A lock that cannot be taken in time: the caller applies the
	 * configured failure policy (lock_errors counts it). */
	if (lock(s) != 0) {
		*unavailable = true;
		return PLAN_ALLOW;
	}
	recount_if_damaged(s->f);
	reset_metrics_if_damaged(s->f);
	struct key_rec *k = key_find(s->f, key_name);
	if (!k) {
		s->f->m.keys_full++;
	} else {
		v = plan_admit(plan, &k->bucket, &k->quota, now_ms, retry_after_s);
		if (v != PLAN_ALLOW)
			k->limited++;
	}
	unlock(s);
	return v;
}

static size_t status_index(const struct state *s, int status)
{
	for (size_t i = 0; i < s->ncodes; i++)
		if (s->codes[i] == status)
			return i;
	return N_STATUS - 1;
}

static void observe(struct histogram *h, double seconds)
{
	if (!(seconds >= 0)) /* negative or NaN */
		seconds = 0;
	if (seconds > 1e9)
		seconds = 1e9;
	size_t i = 0;
	while (i < N_BOUNDS && seconds > bucket_bounds[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum_us += (int64_t)(seconds * 1e6 + 0.5);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void state_record(struct state *s, const struct state_request *r)
{
	if (s->readonly)
		return;
	bool named = r->key_name && valid_name(r->key_name);
	if (r->no_wait) {
		int rc = pthread_mutex_trylock(&s->f->lock);
		if (rc == EOWNERDEAD) {
			pthread_mutex_consistent(&s->f->lock);
			s->f->m.lock_recoveries++;
		} else if (rc) {
			return;
		}
	} else if (lock(s) != 0) {
		return;
	}
	recount_if_damaged(s->f);
	reset_metrics_if_damaged(s->f);
	struct metrics *m = &s->f->m;
	m->status[status_index(s, r->status)]++;
	observe(&m->latency, r->total_s);
	if (r->s3_s >= 0)
		observe(&m->s3, r->s3_s);
	if (r->cache == 1)
		m->cache_hits++;
	else if (r->cache == 2)
		m->cache_misses++;
	if (r->bytes > 0)
		m->bytes_out += r->bytes;
	if (r->key_name && !named) {
		m->bad_names++;
	} else if (named) {
		struct usage_rec *u = usage_find(s->f, r->key_name, floor_div(r->now_ms, DAY_MS));
		if (!u) {
			m->usage_full++;
		} else {
			u->requests[0]++;
			if (r->status >= 100 && r->status < 600)
				u->requests[r->status / 100]++;
			if (r->bytes > 0)
				u->bytes += r->bytes;
			if (r->status == 429)
				u->limited++;
		}
	}
	unlock(s);
}

static int usage_order(const void *a, const void *b)
{
	const struct state_usage *x = a, *y = b;
	int c = strcmp(x->key_name, y->key_name);
	if (c)
		return c;
	return x->day < y->day ? -1 : x->day > y->day;
}

size_t state_usage(struct state *s, const char *key_name, int64_t from_day, int64_t to_day,
		   void (*fn)(const struct state_usage *row, void *ctx), void *ctx)
{
	struct state_usage *rows = NULL;
	size_t n = 0, cap = 0;

	if (key_name && !valid_name(key_name))
		return 0;
	if (!read_lock(s))
		return 0;
	for (size_t i = 0; i < USAGE_SLOTS; i++) {
		const struct usage_rec *u = &s->f->usage[i];
		if (!is_used(&u->used) || !sound_usage(u) || u->day < from_day || u->day > to_day ||
		    (key_name && strcmp(u->name, key_name) != 0))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			rows = xrealloc(rows, cap * sizeof *rows);
		}
		struct state_usage *row = &rows[n++];
		memcpy(row->key_name, u->name, sizeof row->key_name);
		row->key_name[NAME_MAX_LEN] = '\0';
		row->day = u->day;
		memcpy(row->requests, u->requests, sizeof row->requests);
		row->bytes = u->bytes;
		row->limited = u->limited;
	}
	read_unlock(s);
	if (n)
		qsort(rows, n, sizeof *rows, usage_order);
	for (size_t i = 0; i < n; i++)
		fn(&rows[i], ctx);
	free(rows);
	return n;
}

/* --- Prometheus text exposition format 0.0.4 ------------------------------ */

struct key_count {
	char name[NAME_MAX_LEN + 1];
	int64_t limited;
};

static int key_count_order(const void *a, const void *b)
{
	return strcmp(((const struct key_count *)a)->name, ((const struct key_count *)b)->name);
}

/* Length of the valid UTF-8 sequence at p (up to end), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t n;
	unsigned min;
	unsigned c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, min = 0x10000;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	unsigned cp = c & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A label value: \ " and newline escaped, as the format requires; bytes
 * that are not UTF-8 (key names are whatever the config says) become U+FFFD
 * so the output stays valid. */
static void put_label_value(struct buf *out, const char *v)
{
	const unsigned char *p = (const unsigned char *)v, *end = p + strlen(v);
	while (p < end) {
		size_t n = utf8_len(p, end);
		if (n == 0) {
			buf_puts(out, "\xef\xbf\xbd");
			p++;
		} else if (*p == '\\' || *p == '"') {
			buf_putc(out, '\\');
			buf_putc(out, (char)*p++);
		} else if (*p == '\n') {
			buf_puts(out, "\\n");
			p++;
		} else {
			buf_append(out, p, n);
			p += n;
		}
	}
}

static void family(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_seconds(struct buf *out, int64_t us)
{
	buf_printf(out, "%lld.%06lld", (long long)(us / 1000000), (long long)(us % 1000000));
}

static void put_histogram(struct buf *out, const char *name, const char *help,
			  const struct histogram *h)
{
	int64_t cumulative = 0;
	family(out, name, "histogram", help);
	for (size_t i = 0; i <= N_BOUNDS; i++) {
		cumulative += h->bucket[i];
		if (i < N_BOUNDS)
			buf_printf(out, "%s_bucket{le=\"%g\"} %lld\n", name, bucket_bounds[i],
				   (long long)cumulative);
		else
			buf_printf(out, "%s_bucket{le=\"+Inf\"} %lld\n", name,
				   (long long)cumulative);
	}
	buf_printf(out, "%s_sum ", name);
	put_seconds(out, h->sum_us);
	buf_printf(out, "\n%s_count %lld\n", name, (long long)h->count);
}

void state_metrics(struct state *s, struct buf *out)
{
	struct metrics m;
	struct key_count *keys = NULL;
	size_t nkeys = 0;
	uint32_t keys_used, usage_used;

	if (!read_lock(s))
		return;
	memcpy(&m, &s->f->m, sizeof m);
	if (!sound_metrics(&m)) /* damaged; the next request resets them */
		memset(&m, 0, sizeof m);
	keys_used = s->f->h.keys_used;
	usage_used = s->f->h.usage_used;
	if (keys_used > KEY_SLOTS) /* damaged; the next admission recounts */
		keys_used = KEY_SLOTS;
	keys = xcalloc(keys_used ? keys_used : 1, sizeof *keys);
	for (size_t i = 0; i < KEY_SLOTS && nkeys < keys_used; i++) {
		const struct key_rec *k = &s->f->keys[i];
		if (!is_used(&k->used) || !sound_key(k))
			continue;
		memcpy(keys[nkeys].name, k->name, sizeof keys[nkeys].name);
		keys[nkeys].name[NAME_MAX_LEN] = '\0';
		keys[nkeys++].limited = k->limited;
	}
	read_unlock(s);
	qsort(keys, nkeys, sizeof *keys, key_count_order);

	family(out, "imgsvc_requests_total", "counter",
	       "Requests answered, by HTTP status (other: any status not listed).");
	for (size_t i = 0; i < s->ncodes; i++)
		buf_printf(out, "imgsvc_requests_total{status=\"%d\"} %lld\n", s->codes[i],
			   (long long)m.status[i]);
	buf_printf(out, "imgsvc_requests_total{status=\"other\"} %lld\n",
		   (long long)m.status[N_STATUS - 1]);
	put_histogram(out, "imgsvc_request_duration_seconds",
		      "Time from the request to the end of the response.", &m.latency);
	put_histogram(out, "imgsvc_s3_duration_seconds",
		      "Time a request waited for S3 (requests that asked S3).", &m.s3);
	family(out, "imgsvc_cache_hits_total", "counter",
	       "Derivative requests answered from the derivative cache.");
	buf_printf(out, "imgsvc_cache_hits_total %lld\n", (long long)m.cache_hits);
	family(out, "imgsvc_cache_misses_total", "counter",
	       "Derivative requests that had to be made from the original.");
	buf_printf(out, "imgsvc_cache_misses_total %lld\n", (long long)m.cache_misses);
	family(out, "imgsvc_response_bytes_total", "counter", "Response body bytes sent.");
	buf_printf(out, "imgsvc_response_bytes_total %lld\n", (long long)m.bytes_out);
	family(out, "imgsvc_rate_limited_total", "counter",
	       "Requests refused with 429 by the key's usage plan (rate, burst or quota).");
	for (size_t i = 0; i < nkeys; i++) {
		buf_puts(out, "imgsvc_rate_limited_total{key=\"");
		put_label_value(out, keys[i].name);
		buf_printf(out, "\"} %lld\n", (long long)keys[i].limited);
	}
	family(out, "imgsvc_state_records", "gauge",
	       "Records in the shared state file's tables, which stop growing at their capacity.");
	buf_printf(out, "imgsvc_state_records{table=\"keys\"} %u\n", keys_used);
	buf_printf(out, "imgsvc_state_records{table=\"usage\"} %u\n", usage_used);
	family(out, "imgsvc_state_capacity", "gauge",
	       "Capacity of the shared state file's tables.");
	buf_printf(out, "imgsvc_state_capacity{table=\"keys\"} %d\n", KEY_LIMIT);
	buf_printf(out, "imgsvc_state_capacity{table=\"usage\"} %d\n", USAGE_LIMIT);
	family(out, "imgsvc_state_dropped_total", "counter",
	       "Updates the shared state could not keep (a table full, a key name too long).");
	buf_printf(out, "imgsvc_state_dropped_total{reason=\"keys_full\"} %lld\n",
		   (long long)m.keys_full);
	buf_printf(out, "imgsvc_state_dropped_total{reason=\"usage_full\"} %lld\n",
		   (long long)m.usage_full);
	buf_printf(out, "imgsvc_state_dropped_total{reason=\"bad_key_name\"} %lld\n",
		   (long long)m.bad_names);
	family(out, "imgsvc_state_lock_recoveries_total", "counter",
	       "Times a worker took over the state lock from a process that died holding it.");
	buf_printf(out, "imgsvc_state_lock_recoveries_total %lld\n", (long long)m.lock_recoveries);
	family(out, "imgsvc_state_lock_errors_total", "counter",
	       "Times the state lock could not be taken in time (the request was answered "
	       "by [limits] redis_failure).");
	buf_printf(out, "imgsvc_state_lock_errors_total %lld\n", (long long)m.lock_errors);
	free(keys);
}

#ifdef STATE_TESTING
int state_test_lock(struct state *s)
{
	return lock(s);
}

/* glibc's futex word: a thread id that cannot exist (pid_max < 2^22),
 * without the "owner died" bit a dying owner's kernel would have set. */
void state_test_stale_lock(struct state *s, bool keep_boot_id)
{
	s->f->lock.__data.__lock = 0x3ffffffe;
	s->f->lock.__data.__owner = 0x3ffffffe;
	if (!keep_boot_id)
		snprintf(s->f->h.boot_id, sizeof s->f->h.boot_id, "a-previous-boot");
}
void state_test_layout(FILE *out)
{
	fprintf(out, "magic %zu %zu\n", offsetof(struct state_file, h.magic), sizeof(char[8]));
	fprintf(out, "counts %zu %zu\n", offsetof(struct state_file, h.keys_used),
		2 * sizeof(uint32_t));
	fprintf(out, "lock %zu %zu\n", offsetof(struct state_file, lock), sizeof(pthread_mutex_t));
	fprintf(out, "metrics %zu %zu\n", offsetof(struct state_file, m), sizeof(struct metrics));
	fprintf(out, "keys %zu %zu\n", offsetof(struct state_file, keys),
		sizeof(((struct state_file *)0)->keys));
	fprintf(out, "usage %zu %zu\n", offsetof(struct state_file, usage),
		sizeof(((struct state_file *)0)->usage));
}
#endif
