/*
 * sigv4.h - AWS Signature Version 4, header signing, as S3 does it.
 *
 * Pure functions over strings: no clock, no network. The caller supplies the
 * request parts, the credentials and the timestamp; the signer returns the
 * canonical request, the string to sign, the signature and the value of the
 * Authorization header. S3 style means the path is used as given (already
 * URI-encoded once by sigv4_uri_encode(..., keep_slash), never normalised, never
 * encoded a second time).
 */
#ifndef IMGSVC_SIGV4_H
#define IMGSVC_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* sha256("") in hex: the payload hash of a GET. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct sigv4_header {
	const char *name;  /* any case; lowercased for signing */
	const char *value; /* trimmed, inner runs of spaces folded, for signing */
};

struct sigv4_request {
	const char *method; /* "GET" */
	const char *path;   /* canonical URI, already encoded: "/bucket/a%20b.jpg" */
	const char *query;  /* raw query string without '?', or NULL/"" */
	const struct sigv4_header *headers; /* every header to sign, host included */
	size_t n_headers;
	const char *payload_hash; /* hex SHA-256 of the body (SIGV4_EMPTY_SHA256) */
};

struct sigv4_credentials {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token; /* NULL or "" when none; the caller adds the
				      x-amz-security-token header itself */
};

struct sigv4_result {
	struct buf canonical_request;
	struct buf string_to_sign;
	char signature[65];
	struct buf
	    authorization; /* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
};

/*
 * Signs req. amz_date is the ISO 8601 basic timestamp "20150830T123600Z"
 * (the same value as the x-amz-date header). Returns 0, or -1 when an
 * argument is malformed (NULL field, bad date). result must be released with
 * sigv4_result_free() in every case.
 */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_credentials *cred,
	       const char *region, const char *service, const char *amz_date,
	       struct sigv4_result *result);
void sigv4_result_free(struct sigv4_result *result);

/*
 * Appends the URI encoding of s[0..len) to out: every byte except the
 * unreserved A-Z a-z 0-9 - . _ ~ becomes %XX (uppercase hex). With keep_slash,
 * '/' is kept (object key paths); without it, it becomes %2F (query values).
 */
void sigv4_uri_encode(struct buf *out, const char *s, size_t len, bool keep_slash);

/* Formats t (seconds since the epoch, UTC) as "20150830T123600Z" into out[17]. */
void sigv4_amz_date(long long t, char out[17]);

#endif
