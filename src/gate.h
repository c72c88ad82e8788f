/*
 * gate.h - a count of things a process lets its threads hold at once.
 *
 * A derivative's original is fetched whole before its image work, which
 * waits for one of the host's image slots. With many threads and few
 * slots, every thread could hold an original while it waits: the process
 * would peak at threads × the largest original, a figure reached only
 * under the worst burst, so RSS would creep up for as long as bursts grow.
 * The gate lets [server] threads overlap their S3 waits, but only so many
 * of them hold an original meant for image work at once: enough to keep
 * the slots busy, few enough that the peak is reached at once and stays.
 */
#ifndef IMGSVC_GATE_H
#define IMGSVC_GATE_H

#include <stdbool.h>

struct gate;

/* A gate that lets n (at least 1) holders through at once. */
struct gate *gate_new(int n);
void gate_free(struct gate *g);

/*
 * Waits until a place is free or deadline_ms (clock_mono_ms) has passed.
 * true: the caller holds a place until gate_leave. NULL g always admits.
 */
bool gate_enter(struct gate *g, long long deadline_ms);
void gate_leave(struct gate *g);

#endif
