/*
 * s3req.h - the pure parts of talking to S3 (src/s3req.c): an object's
 * headers as S3 sends them, where an object lives, and what a response
 * header line or an XML error body says. No network: s3.c, the unit tests
 * and the fuzzers use it.
 */
#ifndef IMGSVC_S3REQ_H
#define IMGSVC_S3REQ_H

#include <stddef.h>

#include "buf.h"
#include "config.h"

/* The headers of an object (or derivative) that imgsvc uses. */
struct s3_object {
	long long content_length; /* -1 when S3 sent none */
	char content_type[128];
	char etag[160];
	char last_modified[64];
	char source_etag[160];         /* x-amz-meta-source-etag of a derivative */
	char variant[64];              /* x-amz-meta-imgsvc-variant of a derivative */
	char source_last_modified[64]; /* x-amz-meta-source-last-modified */
};

/*
 * Builds the request URL and the canonical URI (what SigV4 signs) for key.
 * Pure; exposed for the unit tests.
 */
void s3_build_url(const struct cfg_s3 *cfg, const char *key, struct buf *url, struct buf *host,
		  struct buf *canonical_uri);

/*
 * Reads one response header line as libcurl hands it over ("Name: value\r\n",
 * len bytes, not NUL-terminated). A status line ("HTTP/1.1 200 OK") sets
 * *status (0 when malformed) and clears obj for a new response; the headers
 * struct s3_object holds are copied into it, trimmed and truncated to fit.
 * Pure; the fuzzer and on_header in s3.c both call it.
 */
void s3_parse_header(const char *line, size_t len, long *status, struct s3_object *obj);

/* Extracts <Code> from an S3 XML error body into code (empty if none). */
void s3_error_code(const char *body, size_t len, char *code, size_t codelen);

#endif
