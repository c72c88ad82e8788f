/*
 * params.h - transformation parameters: parsing and the canonical form.
 *
 * All parsing of the query string happens here, into one struct (imgproxy's
 * "options"); nothing downstream looks at the query string again. Every
 * request with parameters reduces to one canonical string (fixed order,
 * defaults dropped, values normalised) that names its derivative in the
 * cache and feeds its ETag, so equivalent requests share both.
 *
 * Pure: no I/O, unit-tested.
 */
#ifndef IMGSVC_PARAMS_H
#define IMGSVC_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

enum fit_mode { FIT_INSIDE, FIT_COVER, FIT_FILL };

/* Output format as asked: FM_SOURCE = no fm given (keep the source's). */
enum out_format { FM_SOURCE, FM_JPEG, FM_PNG, FM_WEBP, FM_AUTO };

struct params {
	unsigned long w, h; /* 0: not given */
	enum fit_mode fit;  /* default FIT_INSIDE */
	int rotate;         /* 0, 90, 180, 270 */
	int q;              /* 0: not given (config default applies) */
	enum out_format fm;
	bool any; /* at least one parameter was given */
};

struct params_limits {
	unsigned long max_dimension; /* w and h: 1 .. max_dimension */
	int default_quality;         /* q equal to it is dropped from the canonical form */
};

/*
 * Parses query (QUERY_STRING without '?', may be NULL or ""). Names and
 * values may be percent-encoded. On error returns false and writes a
 * message naming the parameter into err ("Unknown parameter 'x'",
 * "Parameter 'w' must be a whole number from 1 to 4000", "Parameter 'w'
 * given more than once", ...).
 */
bool params_parse(const char *query, const struct params_limits *lim, struct params *p, char *err,
		  size_t errlen);

/*
 * true when p asks for nothing beyond the original: no size, no rotation,
 * no format or quality change once defaults are dropped (w/h/fit/rotate/q/fm
 * all default). Such a request is served as the original.
 */
bool params_is_identity(const struct params *p, const struct params_limits *lim);

/*
 * Appends the canonical form of p to out, with fm already resolved (FM_AUTO
 * is resolved by the caller to FM_WEBP, or left as FM_AUTO meaning "JPEG, or
 * PNG for a source with alpha"). Only unreserved URL characters are used,
 * so it can be an S3 key segment as it is: e.g. "w-400_h-300_fit-cover_rotate-90_q-75_fm-webp".
 * Order: w, h, fit, rotate, q, fm; fit=inside, rotate=0, q=default and an
 * absent fm are dropped; q is dropped when the output is PNG.
 */
void params_canonical(const struct params *p, const struct params_limits *lim, struct buf *out);

/*
 * true when an Accept header value admits image/webp: an explicit
 * "image/webp" media range with q > 0 (wildcards such as image/ANY or
 * ANY/ANY do not count, so curl's default keeps getting JPEG). Parameters
 * and case are handled as RFC 9110
 * says.
 */
bool params_accepts_webp(const char *accept);

#endif
