/*
 * http.h - entity tags and conditional requests (RFC 9110 §8.8, §13).
 *
 * Pure functions: the derived ETag of a derivative, If-None-Match matching
 * (weak comparison, "*", lists) and If-Modified-Since against a
 * Last-Modified date. Unit-tested.
 */
#ifndef IMGSVC_HTTP_H
#define IMGSVC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_ETAG_LEN 200

/*
 * The strong ETag of a derivative: "SOURCE:DIGEST", the source's ETag
 * (unquoted, at most 160 bytes) and 16 hex digits of a digest of the
 * canonical parameters and the variant (what else shapes the output: the
 * pipeline version and the default quality). Carrying the source's ETag
 * lets a revalidation be answered with one bodyless conditional request
 * for the original (http_derived_source).
 */
void http_derived_etag(const char *source_etag, const char *canonical, const char *variant,
		       char out[HTTP_ETAG_LEN]);

/*
 * When If-None-Match is one strong tag that http_derived_etag made for this
 * canonical form and variant, writes the source ETag it carries, quoted,
 * into src and returns true.
 */
bool http_derived_source(const char *if_none_match, const char *canonical, const char *variant,
			 char *src, size_t srclen);

/* true when an If-None-Match value ("*", or a list of tags) matches etag. */
bool http_etag_matches(const char *if_none_match, const char *etag);

/*
 * true when If-Modified-Since (an HTTP-date) is at or after last_modified;
 * false when either is missing or not a valid date, and when
 * If-Modified-Since is later than now (seconds since 1970, UTC): a date
 * from the future says nothing of the client's copy, and RFC 9110 has the
 * server ignore it.
 */
bool http_not_modified_since(const char *if_modified_since, const char *last_modified,
			     long long now);

/* true when an If-None-Match value is exactly one strong tag ("abc"), the
 * form a browser sends back and any S3 store judges as RFC 9110 does. */
bool http_single_strong_etag(const char *v);

/* true when v is 1..max bytes of printable ASCII (safe to forward). */
bool http_value_safe(const char *v, size_t max);

/* Copies etag into out without surrounding quotes (S3 metadata form). */
void http_unquote_etag(const char *etag, char *out, size_t outlen);

#endif
