/*
 * decide.h - what to do with a request's image, decided in one place.
 *
 * The request's conditions (If-None-Match, If-Modified-Since, and whether
 * S3 judged them), the probe of the original's first bytes, the limits,
 * the original's metadata from S3 and, for a derivative, whether the cache
 * holds one made from the original as it is now: from these, one action.
 * Pure: no network, no FastCGI; the S3 callbacks collect bytes and ask
 * again as they arrive, and the handler acts on the answer.
 */
#ifndef IMGSVC_DECIDE_H
#define IMGSVC_DECIDE_H

#include <stdbool.h>
#include <stddef.h>

#include "budget.h"
#include "http.h"
#include "params.h"
#include "probe.h"
#include "status.h"

enum action {
	ACT_KEEP_READING, /* the probe needs more of the original's bytes */
	ACT_PASS,         /* an original as it is: stream it */
	ACT_CLAMP,        /* an original wider than max_width: collect, downscale */
	ACT_STRIP,        /* an original to serve without its metadata: collect, strip */
	ACT_NOT_MODIFIED, /* 304: the client's copy is current */
	ACT_SERVE_CACHED, /* the cached derivative as it is */
	ACT_TRANSFORM,    /* a derivative's source: collect it, then transform */
	ACT_ERROR,        /* refuse: see decide_out's st and detail */
};

struct decide_in {
	/* The request. */
	bool derivative;               /* parameters: the original is a source, never passed */
	const char *if_none_match;     /* NULL when absent */
	const char *if_modified_since; /* NULL when absent */
	long long now;                 /* the wall clock (s, UTC): a later If-Modified-Since is ignored */
	bool judge_here;               /* an original's conditions were not sent to S3 */
	bool s3_not_modified;          /* S3 answered our conditional GET with 304 */
	const char *canonical;         /* a derivative's canonical parameters */
	const char *variant;           /* what else shapes a derivative (pipeline, quality) */
	/* The probe of the bytes held so far. */
	enum probe_result probed;
	struct probe_info info;
	size_t have;   /* bytes of the original held */
	bool complete; /* the original has ended (or no body comes) */
	/* The limits. */
	long long max_width; /* 0: originals pass at any width */
	bool strip;          /* strip_originals: images that pass lose their metadata */
	long long max_source_pixels;
	long long max_source_bytes;
	unsigned formats; /* a bit 1 << format for each format allowed */
	struct budget_limits budget;
	const struct params *params; /* a derivative's; an original's clamp is w=max_width */
	/* The original as S3 described it (for a cache hit: the derivative's source). */
	const char *etag; /* quoted, as S3 sends it */
	const char *last_modified;
	long long length; /* -1: unknown */
	/* The derivative cache. */
	bool cached; /* holds this derivative, made from the original as it is now */
};

struct decide_out {
	enum status st;           /* ACT_ERROR: the answer */
	const char *detail;       /* ACT_ERROR: why, for the log */
	const char *message;      /* ACT_ERROR: for the client; NULL: the status's own */
	char etag[HTTP_ETAG_LEN]; /* the ETag of what is served, or of what the 304 confirms */
};

enum action decide(const struct decide_in *in, struct decide_out *out);

/*
 * Whether the client's copy is current when what would be served has this
 * ETag (If-None-Match, else If-Modified-Since against Last-Modified): for
 * a stripped original, whose ETag is known once its bytes are.
 */
bool decide_client_has(const struct decide_in *in, const char *etag);

/* "PASS", "CLAMP", ...: for tests and the fuzzer's messages. */
const char *decide_name(enum action a);

#endif
