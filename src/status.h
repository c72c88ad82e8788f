/*
 * status.h - one enum for what went wrong, mapped to HTTP once.
 *
 * Modules return a status; only the handler turns it into a response, with
 * the code and reason phrase from the single table in status.c.
 */
#ifndef IMGSVC_STATUS_H
#define IMGSVC_STATUS_H

#include <stddef.h>

enum status {
	ST_OK,
	ST_NOT_MODIFIED,   /* conditional request matched: 304 */
	ST_BAD_REQUEST,    /* bad path or parameters */
	ST_FORBIDDEN,      /* missing, unknown or disabled API key */
	ST_NOT_FOUND,      /* no such object */
	ST_BAD_METHOD,     /* not GET or HEAD */
	ST_TOO_LARGE,      /* source over max_source_bytes / max_source_pixels */
	ST_UNSUPPORTED,    /* source is not an allowed image format */
	ST_RATE_LIMITED,   /* usage plan: rate or burst exceeded */
	ST_QUOTA_EXCEEDED, /* usage plan: quota of the period used up */
	ST_UNAVAILABLE,    /* the limits backend is down and the policy is fail closed */
	ST_S3_ERROR,       /* S3 answered with an error or could not be reached */
	ST_S3_TIMEOUT,     /* S3 did not answer within the deadline */
	ST_INTERNAL,       /* anything else */
	ST_COUNT           /* how many there are */
};

/* The HTTP status code for s (200, 400, ...). */
int status_http(enum status s);
/* "Bad Request", ... for the Status: line. */
const char *status_reason(enum status s);
/* The default message for the JSON error body. */
const char *status_message(enum status s);
/* The distinct HTTP codes of all statuses into codes, ascending; how many. */
size_t status_http_codes(int codes[ST_COUNT]);

#endif
