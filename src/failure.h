/*
 * failure.h - why a request failed, as one value: the status (mapped to
 * HTTP in status.c), the message the client reads, and the detail only
 * the log gets. Modules record into the request's failure; the handler
 * sends the error response from it, once, and logs its reason.
 */
#ifndef IMGSVC_FAILURE_H
#define IMGSVC_FAILURE_H

#include "buf.h"
#include "status.h"

struct failure {
	enum status st;        /* ST_OK until something fails */
	const char *message;   /* public (the JSON body); NULL: the status's own */
	struct buf detail;     /* for the log only; empty: the message is logged */
	long long retry_after; /* seconds for Retry-After; 0: none sent */
};

#define FAILURE_INIT                                                                               \
	{                                                                                          \
		ST_OK, NULL, BUF_INIT, 0                                                           \
	}

/*
 * Notes the log's reason, unless one is noted already: the first cause
 * found is the one logged (a stopped transfer's, not the S3 call's that
 * reports the stop). NULL notes nothing.
 */
void failure_note(struct failure *f, const char *detail);
void failure_notef(struct failure *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* What the log says: the detail, else the public message, else NULL. */
const char *failure_reason(const struct failure *f);
/*
 * The host had no capacity for the request's image work before its
 * deadline: a 503 that tells the client so and to retry (Retry-After: 1),
 * with DETAIL, which wait ran out, for the log.
 */
enum status failure_busy(struct failure *f, const char *detail);
void failure_free(struct failure *f);

#endif
