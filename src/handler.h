/*
 * handler.h - one FastCGI request, from parameters to response.
 */
#ifndef IMGSVC_HANDLER_H
#define IMGSVC_HANDLER_H

#include <fcgiapp.h>

#include "buf.h"
#include "config.h"
#include "img.h"
#include "s3.h"
#include "state.h"

struct redis_limiter;
struct gate;
struct slots;

/* What a serving thread's requests use: its own S3 client and Redis link,
 * the process's configuration, state and image slots. */
struct app {
	const struct cfg *cfg;
	struct s3_client *s3;
	struct state *state;         /* the host's shared state; NULL when none */
	struct redis_limiter *redis; /* usage-plan counters in Redis; NULL when local */
	struct gate *sources;        /* originals held for image work in this process */
	struct slots *slots;         /* image_workers, host-wide with a state file */
};

/* A derivative to write to the cache once the response is finished. */
struct deferred {
	bool pending;
	struct buf key;                /* its object key */
	struct buf source_etag;        /* x-amz-meta-source-etag: the original's ETag, unquoted */
	char variant[32];              /* x-amz-meta-imgsvc-variant */
	char source_last_modified[64]; /* x-amz-meta-source-last-modified */
	struct img_output out;         /* its bytes */
};

/* Answers one request; fills later with work to do after FCGX_Finish_r. */
void handle_request(const struct app *app, FCGX_Request *rq, struct deferred *later);
/* Does that work (the cache write) and frees later. */
void handle_deferred(const struct app *app, struct deferred *later);
void handle_deferred_free(struct deferred *later);

#endif
