/*
 * heap.h - the worker's live heap bytes, for its log.
 *
 * A worker's VmRSS is the allocator's high-water mark, which moves with
 * fragmentation; the bytes in use between two requests move only when
 * something outlives its request. main.c writes both with heap_log_line()
 * after every [server] heap_log_every requests, at the first moment no
 * request is in work, so a soak (or a sysadmin) can tell a
 * leak from allocator noise per worker PID.
 */
#ifndef IMGSVC_HEAP_H
#define IMGSVC_HEAP_H

#include <stddef.h>

struct heap_usage {
	size_t inuse;  /* allocated now: arena chunks in use + mmapped blocks */
	size_t system; /* taken from the system: arenas + mmapped blocks */
};

struct heap_usage heap_usage(void);
/* "heap requests=N inuse_bytes=... system_bytes=..." on the log, of u. */
void heap_log_line(unsigned long long requests, struct heap_usage u);

#endif
