/*
 * handler.h - one FastCGI request, from parameters to response.
 */
#ifndef IMGSVC_HANDLER_H
#define IMGSVC_HANDLER_H

#include <fcgiapp.h>

#include "app.h"
#include "buf.h"
#include "img.h"

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
