/*
 * slots.c - image_workers slots shared by every worker of the host (see
 * slots.h).
 *
 * The file is one struct slot_file. A slot is free when its owner is 0 and
 * taken by the process id that swapped itself in; threads of one process
 * share its id, which is all reclaiming needs (a process dies whole).
 * Releasing bumps `wake` and wakes one sleeper; sleepers also wake every
 * POLL_MS on their own, so a slot freed by a death, or a wake-up that went
 * to a waiter whose deadline had just passed, costs a short delay, never a
 * hang. Opening takes flock(LOCK_EX) to check or (re)build the header, so
 * workers starting together build it once; a file of another boot has its
 * owners cleared, since their process ids mean nothing any more.
 */
#include "slots.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "state.h"

#define SLOTS_MAGIC "imgsvcL1"
#define POLL_MS 50

struct slot_file {
	char magic[8];
	uint32_t size; /* sizeof(struct slot_file): another build's layout differs */
	char boot_id[STATE_BOOT_ID_LEN];
	uint32_t wake __attribute__((aligned(64))); /* the futex word */
	int32_t owner[SLOTS_MAX] __attribute__((aligned(64)));
};

struct slots {
	struct slot_file *f;
	bool mapped; /* f is the shared file's mapping, not private memory */
	int total;
	int32_t pid;
};

static void fail(char *err, size_t errlen, const char *what, const char *path)
{
	snprintf(err, errlen, "%s: %s: %s", path, what, strerror(errno));
}

/* Checks the open file, rebuilding it when it is not this boot's slots. */
static int check_or_build(int fd, char *err, size_t errlen, const char *path)
{
	struct slot_file h;
	struct stat st;
	char boot[STATE_BOOT_ID_LEN];

	if (fstat(fd, &st) < 0) {
		fail(err, errlen, "fstat", path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	state_boot_id(boot);
	size_t head = offsetof(struct slot_file, wake);
	bool ours = st.st_size == (off_t)sizeof h && pread(fd, &h, head, 0) == (ssize_t)head &&
		    memcmp(h.magic, SLOTS_MAGIC, sizeof h.magic) == 0 && h.size == sizeof h &&
		    memcmp(h.boot_id, boot, sizeof boot) == 0;
	if (ours)
		return 0;
	/* Start again from zeros: every slot free. */
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, sizeof h) < 0) {
		fail(err, errlen, "cannot size the image slots file", path);
		return -1;
	}
	memset(&h, 0, head);
	memcpy(h.magic, SLOTS_MAGIC, sizeof h.magic);
	h.size = sizeof h;
	memcpy(h.boot_id, boot, sizeof boot);
	if (pwrite(fd, &h, head, 0) != (ssize_t)head) {
		fail(err, errlen, "cannot write the image slots file", path);
		return -1;
	}
	return 0;
}

struct slots *slots_open(const char *path, int total, char *err, size_t errlen)
{
	struct slots *s;
	if (total < 1 || total > SLOTS_MAX) {
		snprintf(err, errlen, "image_workers %d out of range 1..%d", total, SLOTS_MAX);
		return NULL;
	}
	s = xcalloc(1, sizeof *s);
	s->total = total;
	s->pid = (int32_t)getpid();
	if (!path) {
		s->f = xcalloc(1, sizeof *s->f);
		return s;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		fail(err, errlen, "cannot open", path);
		free(s);
		return NULL;
	}
	void *m = MAP_FAILED;
	if (flock(fd, LOCK_EX) < 0)
		fail(err, errlen, "flock", path);
	else if (check_or_build(fd, err, errlen, path) == 0) {
		m = mmap(NULL, sizeof *s->f, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			fail(err, errlen, "mmap", path);
	}
	flock(fd, LOCK_UN);
	close(fd);
	if (m == MAP_FAILED) {
		free(s);
		return NULL;
	}
	s->f = m;
	s->mapped = true;
	return s;
}

void slots_close(struct slots *s)
{
	if (!s)
		return;
	if (s->mapped)
		munmap(s->f, sizeof *s->f);
	else
		free(s->f);
	free(s);
}

/* Swaps this process into a free slot; its index, or -1 when all are taken. */
static int try_take(struct slots *s)
{
	for (int i = 0; i < s->total; i++) {
		int32_t free_id = 0;
		if (__atomic_load_n(&s->f->owner[i], __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&s->f->owner[i], &free_id, s->pid, false,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return i;
	}
	return -1;
}

/* Frees the slots of processes that no longer exist; how many. */
static int reclaim_dead(struct slots *s)
{
	int freed = 0;
	for (int i = 0; i < s->total; i++) {
		int32_t owner = __atomic_load_n(&s->f->owner[i], __ATOMIC_RELAXED);
		if (owner == 0 || owner == s->pid)
			continue;
		if (kill((pid_t)owner, 0) == 0 || errno != ESRCH)
			continue;
		if (__atomic_compare_exchange_n(&s->f->owner[i], &owner, 0, false,
						__ATOMIC_RELEASE, __ATOMIC_RELAXED))
			freed++;
	}
	return freed;
}

static void futex_wait(uint32_t *word, uint32_t seen, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	syscall(SYS_futex, word, FUTEX_WAIT, seen, &ts, NULL, 0);
}

int slots_acquire(struct slots *s, long long deadline_ms)
{
	for (;;) {
		/* Read before trying: a release after the try changes it, and
		 * the futex then returns at once instead of sleeping. */
		uint32_t seen = __atomic_load_n(&s->f->wake, __ATOMIC_ACQUIRE);
		int slot = try_take(s);
		if (slot >= 0)
			return slot;
		if (reclaim_dead(s) > 0)
			continue;
		long long left = deadline_ms - clock_mono_ms();
		if (left <= 0)
			return -1;
		futex_wait(&s->f->wake, seen, left < POLL_MS ? (long)left : POLL_MS);
	}
}

void slots_release(struct slots *s, int slot)
{
	if (slot < 0 || slot >= SLOTS_MAX)
		return;
	int32_t mine = s->pid;
	__atomic_compare_exchange_n(&s->f->owner[slot], &mine, 0, false, __ATOMIC_RELEASE,
				    __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->f->wake, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &s->f->wake, FUTEX_WAKE, 1, NULL, NULL, 0);
}

int slots_busy(struct slots *s)
{
	int n = 0;
	for (int i = 0; i < SLOTS_MAX; i++)
		n += __atomic_load_n(&s->f->owner[i], __ATOMIC_RELAXED) != 0;
	return n;
}

int slots_default_total(void)
{
	cpu_set_t set;
	int n = 0;
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		n = CPU_COUNT(&set);
	if (n < 1)
		n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > SLOTS_MAX ? SLOTS_MAX : n;
}
