/*
 * derivative.h - an image made from an original by the request's
 * parameters: from the cache when it was made from the original as it is
 * now, else computed and kept, its write to S3 deferred until the
 * response is finished.
 */
#ifndef IMGSVC_DERIVATIVE_H
#define IMGSVC_DERIVATIVE_H

#include <stdbool.h>

#include "app.h"
#include "buf.h"
#include "img.h"
#include "params.h"
#include "request.h"

/* A derivative to write to the cache once the response is finished. */
struct deferred {
	bool pending;
	struct buf key;                /* its object key */
	struct buf source_etag;        /* x-amz-meta-source-etag: the original's ETag, unquoted */
	char variant[32];              /* x-amz-meta-imgsvc-variant */
	char source_last_modified[64]; /* x-amz-meta-source-last-modified */
	struct img_output out;         /* its bytes */
};

/*
 * A derivative: from the cache when made from the original as it is now,
 * else computed from the original and kept. What to send is decide()'s
 * answer, once the source is known.
 */
enum status deriv_serve(const struct request *rq, struct params *p, const struct params_limits *lim,
			struct deferred *later);
/* Writes the derivative later holds to the cache, and frees later. */
void deriv_write(const struct app *app, struct deferred *later);
void deriv_free(struct deferred *later);

#endif
