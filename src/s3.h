/*
 * s3.h - S3 GetObject, HeadObject and PutObject over libcurl, signed with SigV4.
 *
 * A client belongs to one thread. It holds one curl multi handle, whose
 * connections to S3 are kept alive and reused across the thread's
 * requests (libcurl cannot share connections between threads). Up to
 * S3_CONCURRENT_MAX operations can run at once (s3_request_all): a
 * derivative's cache read and the check of its original cost one round
 * trip, not two. Each operation retries 500, 503 and
 * connection failures with jittered exponential backoff while the request
 * deadline allows, but once body bytes have been handed to the sink only
 * if the sink can start over: by then the response may already be on its
 * way to the caller.
 */
#ifndef IMGSVC_S3_H
#define IMGSVC_S3_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "creds.h"
#include "s3req.h"
#include "status.h"

/*
 * Receives a successful GET. on_head is called once, before the first body
 * byte; on_data for each piece of body. Either returns 0 to go on, or -1 to
 * stop the transfer (s3_request then returns the status in stop).
 * on_restart (may be NULL) is asked when the connection breaks off in the
 * body: 0 when the sink has forgotten what it got and can take the object
 * again from the start (a retry, with on_head again), -1 when it cannot.
 */
struct s3_sink {
	int (*on_head)(void *ctx, const struct s3_object *obj);
	int (*on_data)(void *ctx, const void *data, size_t len);
	int (*on_restart)(void *ctx);
	void *ctx;
	enum status stop; /* set by the sink before returning -1 */
};

/* How many operations one s3_request_all runs at once. */
#define S3_CONCURRENT_MAX 2

/* One S3 operation: a GET into a sink, a HEAD (headers only), or a PUT from memory. */
struct s3_op {
	const char *method;            /* "GET", "HEAD" or "PUT" */
	const char *key;               /* the full object key, unencoded */
	struct s3_sink *sink;          /* GET */
	const char *if_none_match;     /* GET: conditional (S3 answers 304), or NULL */
	const char *if_modified_since; /* GET: likewise */
	const void *body;              /* PUT */
	size_t body_len;
	const char *content_type;         /* PUT */
	const char *source_etag;          /* PUT: stored as x-amz-meta-source-etag */
	const char *variant;              /* PUT: stored as x-amz-meta-imgsvc-variant */
	const char *source_last_modified; /* PUT: x-amz-meta-source-last-modified */
	long long deadline; /* clock_mono_ms() by which it ends; 0: timeout_ms from now */
	bool lead;          /* s3_request_all: the others are needed only if this one is ST_OK */
};

struct s3_result {
	enum status status; /* what s3_request returns */
	long http_status;   /* of the last attempt; 0 if none got through */
	char code[64];      /* S3 error code (NoSuchKey...), or a curl error */
	int attempts;
	long ms;              /* wall time of the whole exchange */
	bool body_started;    /* the sink saw body bytes */
	char detail[1024];    /* why credentials could not be had, for the log */
	struct s3_object obj; /* headers of the last response (200 or 304) */
};

struct s3_client;

/*
 * A client is used by one thread. share (may be NULL) is a libcurl share
 * handle whose DNS cache and TLS sessions the clients of every thread of
 * the process use (s3_share_new): a thread's new connection resumes a TLS
 * session another thread made.
 */
struct s3_client *s3_client_new(const struct cfg_s3 *cfg, struct creds_provider *creds,
				void *share);

/* The share handle for a process's clients; NULL when libcurl cannot. */
void *s3_share_new(void);
void s3_share_free(void *share);
void s3_client_free(struct s3_client *c);

/*
 * Runs op with retries within the deadline. Returns ST_OK (200),
 * ST_NOT_MODIFIED (a conditional GET's 304), the sink's stop status, or an
 * error status (ST_NOT_FOUND, ST_S3_ERROR, ST_S3_TIMEOUT).
 */
enum status s3_request(struct s3_client *c, const struct s3_op *op, struct s3_result *res);

/*
 * Runs n operations (at most S3_CONCURRENT_MAX) at the same time, each
 * with its own retries as s3_request's, and returns when all have ended;
 * res[i].status is what s3_request would have returned for ops[i]. When
 * an operation marked lead ends other than ST_OK, the others are stopped
 * where they are (ST_S3_ERROR, code "abandoned"): a caller that has no
 * use for them then does not wait for them. A HEAD has no body to read an
 * error code from: a 403 on it is ST_S3_ERROR.
 */
void s3_request_all(struct s3_client *c, const struct s3_op *ops, struct s3_result *res, size_t n);

#endif
