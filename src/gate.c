/*
 * gate.c - a counting gate with a deadline: a mutex, a condition variable
 * on the monotonic clock (clock_mono_ms's), and the free places.
 */
#include "gate.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "buf.h"

struct gate {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	int free_places;
};

struct gate *gate_new(int n)
{
	struct gate *g = xcalloc(1, sizeof *g);
	pthread_condattr_t attr;

	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&g->freed, &attr);
	pthread_condattr_destroy(&attr);
	g->free_places = n > 0 ? n : 1;
	return g;
}

void gate_free(struct gate *g)
{
	if (!g)
		return;
	pthread_cond_destroy(&g->freed);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

bool gate_enter(struct gate *g, long long deadline_ms)
{
	if (!g)
		return true;
	struct timespec until = {deadline_ms / 1000, (deadline_ms % 1000) * 1000000};
	bool in = true;

	pthread_mutex_lock(&g->lock);
	while (g->free_places == 0 && in)
		in = pthread_cond_timedwait(&g->freed, &g->lock, &until) == 0 || g->free_places > 0;
	if (in)
		g->free_places--;
	pthread_mutex_unlock(&g->lock);
	return in;
}

void gate_leave(struct gate *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->free_places++;
	pthread_cond_signal(&g->freed);
	pthread_mutex_unlock(&g->lock);
}
