/*
 * app.h - what a serving thread's requests use: the process's
 * configuration, state and image slots, and the thread's own S3 client and
 * Redis link. main.c fills one per thread; the request's modules are passed
 * it and read what they need from it.
 */
#ifndef IMGSVC_APP_H
#define IMGSVC_APP_H

struct cfg;
struct gate;
struct redis_limiter;
struct s3_client;
struct slots;
struct state;

struct app {
	const struct cfg *cfg;
	struct s3_client *s3;
	struct state *state;         /* the host's shared state; NULL when none */
	struct redis_limiter *redis; /* usage-plan counters in Redis; NULL when local */
	struct gate *sources;        /* originals held for image work in this process */
	struct slots *slots;         /* image_workers, host-wide with a state file */
};

#endif
