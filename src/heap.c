/*
 * heap.c - glibc's own count of the heap (mallinfo2), over all arenas.
 *
 * uordblks is what the arenas have handed out and not had back, hblkhd what
 * is mmapped for blocks over M_MMAP_THRESHOLD; their sum is the live heap.
 * arena + hblkhd is what the allocator holds from the system, free holes
 * included, i.e. roughly the heap's part of VmRSS. Blocks parked in a
 * thread's tcache count as in use (up to 7 of each small size a thread),
 * so with tcache on the figure rises a little until the caches are full.
 * mallinfo2 takes the arena locks: call it between requests, never from a
 * signal handler.
 */
#include "heap.h"

#include <malloc.h>

#include "reqlog.h"

struct heap_usage heap_usage(void)
{
#ifdef HAVE_MALLINFO2
	struct mallinfo2 m = mallinfo2();
#else
	/* glibc before 2.33: the same counts as int (wrap past 2 GB). */
	struct mallinfo m = mallinfo();
#endif
	return (struct heap_usage){(size_t)m.uordblks + (size_t)m.hblkhd,
				   (size_t)m.arena + (size_t)m.hblkhd};
}

void heap_log_line(unsigned long long requests, struct heap_usage u)
{
	log_msg("info", "heap requests=%llu inuse_bytes=%zu system_bytes=%zu", requests, u.inuse,
		u.system);
}
