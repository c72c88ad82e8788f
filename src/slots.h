/*
 * slots.h - the host-wide limit on image work: image_workers slots.
 *
 * Decoding, resizing and encoding are the CPU- and memory-heavy part of a
 * request; everything else (waiting on S3, writing to a slow client) is
 * waiting. A request takes a slot for its image work only, so however many
 * requests the threads of every worker process hold, at most image_workers
 * images are in work on the host at once.
 *
 * The slots live in a small file beside the state file, mapped MAP_SHARED
 * by every worker of the host: an array of owner process ids, taken by
 * compare-and-swap and given back by storing 0, and a wake-up counter that
 * waiters sleep on with a futex. The kernel keeps nothing of a process
 * that dies holding a slot; the next waiter that finds every slot taken
 * frees those whose owner no longer exists. With no state file the slots
 * are the process's own (the limit is then per process).
 */
#ifndef IMGSVC_SLOTS_H
#define IMGSVC_SLOTS_H

#include <stdbool.h>
#include <stddef.h>

#define SLOTS_MAX 1024

struct slots;

/*
 * Opens the host's slots file at path (created if missing or rebuilt if
 * not a slots file: it holds no history), or private slots when path is
 * NULL. total is this process's image_workers (1..SLOTS_MAX); processes
 * may disagree while a configuration changes, each counting to its own.
 */
struct slots *slots_open(const char *path, int total, char *err, size_t errlen);
void slots_close(struct slots *s);

/*
 * Takes a slot, waiting until deadline_ms (clock_mono_ms) at the most.
 * Returns the slot's index, or -1 when none came free in time.
 */
int slots_acquire(struct slots *s, long long deadline_ms);
void slots_release(struct slots *s, int slot);

/* Slots in use now, by every process (for metrics and tests). */
int slots_busy(struct slots *s);

/* The default image_workers: the cores this process may run on. */
int slots_default_total(void);

#endif
