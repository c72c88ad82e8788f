/*
 * original.h - an original image from S3: streamed through, downscaled
 * when wider than max_width, or collected whole as a derivative's source
 * (derivative.c). What to do with its bytes is decide()'s answer.
 */
#ifndef IMGSVC_ORIGINAL_H
#define IMGSVC_ORIGINAL_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "decide.h"
#include "img.h"
#include "params.h"
#include "request.h"
#include "response.h"
#include "s3.h"

/*
 * An original on its way from S3. The callbacks collect its bytes and ask
 * decide() what they call for; only a pass-through streams as it arrives.
 */
struct fetch {
	const struct request *rq;
	struct s3_object obj;
	struct decide_in in; /* what decide() knows so far */
	struct decide_out out;
	enum action act;     /* its last answer */
	struct buf data;     /* sniffed bytes, or the whole original */
	long long deadline;  /* of the S3 reads (see s3_op); 0: the GET's own */
	bool hand_over;      /* an original to downscale: stop, to serve it as a derivative */
	struct s3_sink sink; /* ctx points back at this fetch */
};

/* The variant string: what beyond source and parameters shapes output. */
void orig_variant(const struct app *app, char *out, size_t len);
/*
 * A fetch of the original for rq: the client's conditions, the limits and
 * the original's headers (once they arrive) are what decide() is given.
 * var is the variant string; derivative: the original is a source, read
 * whole and never passed through.
 */
void orig_fetch_init(struct fetch *f, const struct request *rq, bool derivative, const char *var);
/*
 * GETs the original into f, streamed or collected as decide() says. inm
 * is forwarded to S3 as a condition; S3's 304 comes back as
 * ST_NOT_MODIFIED with the object's headers in f->obj. Once the object
 * has ended, decide() has the last word on what was collected (f->act).
 */
enum status orig_fetch(struct fetch *f, const char *inm);
/* Runs the pipeline on a collected source and answers with the result (m's headers). */
enum status orig_transform(struct fetch *f, const struct params *p, const struct image_meta *m,
			   struct img_output *out);
/*
 * An original, streamed, or downscaled when wider than max_width. With
 * the derivative cache on, a wider one is not downscaled here: *clamp
 * gets ?w=max_width (clamp->any set) and nothing has been sent; the
 * caller serves that derivative, the same image under the same ETag,
 * which the cache then keeps like any other.
 */
enum status orig_serve(const struct request *rq, struct params *clamp);

#endif
