/*
 * decide.c - from what is known of a request's image to one action (see
 * decide.h).
 *
 * An original passes as it is when max_width is 0, when it is no wider,
 * or when it is not a recognised image; with strip_originals an image
 * that would pass is collected whole to lose its metadata (strip.h); a wider one is downscaled like
 * ?w=max_width, under that request's ETag. A derivative's source must be
 * admitted by the limits before it is decoded: its bytes, format and
 * pixels, then what the work on it will take (budget.h), all known from
 * its header. The client's copy is
 * current when its If-None-Match matches the ETag of what would be served,
 * else when If-Modified-Since is not before Last-Modified (and not after
 * the present, which would say nothing of the client's copy).
 */
#include "decide.h"

#include <stdio.h>

bool decide_client_has(const struct decide_in *in, const char *etag)
{
	return in->if_none_match
		   ? http_etag_matches(in->if_none_match, etag)
		   : http_not_modified_since(in->if_modified_since, in->last_modified, in->now);
}

static bool client_has(const struct decide_in *in, const char *etag)
{
	return decide_client_has(in, etag);
}

static enum action refuse(struct decide_out *out, enum status st, const char *detail)
{
	out->st = st;
	out->detail = detail;
	return ACT_ERROR;
}

/* The original unchanged, or a 304 when the client's copy is current. */
static enum action pass(const struct decide_in *in, struct decide_out *out)
{
	snprintf(out->etag, sizeof out->etag, "%s", in->etag ? in->etag : "");
	return in->judge_here && client_has(in, out->etag) ? ACT_NOT_MODIFIED : ACT_PASS;
}

/*
 * The probe has not decided yet, and more bytes may still decide it. The
 * bound is max_source_bytes, not a fixed sniff size: a JPEG may carry more
 * than half a megabyte of APPn segments before its frame header, and a
 * fixed bound made the answer depend on where S3's chunks happened to end
 * (the caller probes at most max_source_bytes bytes, so the outcome is the
 * same however the bytes arrive).
 */
static bool need_more(const struct decide_in *in)
{
	return in->probed == PROBE_NEED_MORE && !in->complete &&
	       (long long)in->have < in->max_source_bytes;
}

/*
 * Whether a source may be decoded: its bytes, its format, its pixels, and
 * the memory the work p asks of it will take.
 */
static enum action admit(const struct decide_in *in, const struct params *p,
			 struct decide_out *out, enum action next)
{
	if ((long long)in->have > in->max_source_bytes)
		return refuse(out, ST_TOO_LARGE, "source over max_source_bytes");
	const char *why = NULL;
	enum status st = probe_admit(in->probed, &in->info, in->formats, in->max_source_pixels,
				     in->length, in->max_source_bytes, &why);
	if (st != ST_OK)
		return refuse(out, st, why);
	if (!p)
		return next;
	long long need;
	st = budget_check(&in->info, p, in->length, &in->budget, &need, &out->message);
	if (st == ST_BAD_REQUEST)
		return refuse(out, st, out->message);
	if (st != ST_OK)
		return refuse(out, st, "the work would take more than max_image_memory");
	return next;
}

static enum action original(const struct decide_in *in, struct decide_out *out)
{
	if (in->s3_not_modified) {
		/* S3 matched its own ETag: the client holds the unchanged original. */
		snprintf(out->etag, sizeof out->etag, "%s", in->etag ? in->etag : "");
		return ACT_NOT_MODIFIED;
	}
	if (in->max_width <= 0 && !in->strip)
		return pass(in, out);
	if (need_more(in))
		return ACT_KEEP_READING;
	if (in->probed != PROBE_OK)
		return pass(in, out);
	if (in->max_width <= 0 || in->info.width <= (unsigned long)in->max_width) {
		if (!in->strip)
			return pass(in, out);
		/*
		 * Its ETag (S3's, or a derived one when anything is left out)
		 * and so any 304 wait for the whole file; more than
		 * max_source_bytes is refused rather than served with its
		 * metadata.
		 */
		snprintf(out->etag, sizeof out->etag, "%s", in->etag ? in->etag : "");
		if (in->length > in->max_source_bytes || (long long)in->have > in->max_source_bytes)
			return refuse(out, ST_TOO_LARGE,
				      "strip_originals: original over max_source_bytes");
		return ACT_STRIP;
	}
	char canon[32];
	snprintf(canon, sizeof canon, "w-%lld", in->max_width);
	http_derived_etag(in->etag ? in->etag : "", canon, in->variant ? in->variant : "",
			  out->etag);
	struct params clamp = {.w = (unsigned long)in->max_width, .any = true};
	if (admit(in, &clamp, out, ACT_CLAMP) == ACT_ERROR)
		return ACT_ERROR;
	/* A client holding the current downscaled copy needs no bytes. */
	return client_has(in, out->etag) ? ACT_NOT_MODIFIED : ACT_CLAMP;
}

static enum action derivative(const struct decide_in *in, struct decide_out *out)
{
	http_derived_etag(in->etag ? in->etag : "", in->canonical ? in->canonical : "",
			  in->variant ? in->variant : "", out->etag);
	if (in->cached)
		return client_has(in, out->etag) ? ACT_NOT_MODIFIED : ACT_SERVE_CACHED;
	if (in->s3_not_modified)
		/* A revalidation: S3 confirmed the source the client's tag names. */
		return client_has(in, out->etag)
			   ? ACT_NOT_MODIFIED
			   : refuse(out, ST_INTERNAL,
				    "S3 answered 304 to a condition not the client's");
	/* Refuse what is too large before reading any of it. */
	if (in->length > in->max_source_bytes)
		return refuse(out, ST_TOO_LARGE, "source over max_source_bytes (Content-Length)");
	if (need_more(in))
		return ACT_KEEP_READING;
	if (admit(in, in->params, out, ACT_TRANSFORM) == ACT_ERROR)
		return ACT_ERROR;
	return in->complete && client_has(in, out->etag) ? ACT_NOT_MODIFIED : ACT_TRANSFORM;
}

enum action decide(const struct decide_in *in, struct decide_out *out)
{
	out->st = ST_OK;
	out->detail = NULL;
	out->message = NULL;
	out->etag[0] = '\0';
	return in->derivative ? derivative(in, out) : original(in, out);
}

const char *decide_name(enum action a)
{
	static const char *const names[] = {
	    [ACT_KEEP_READING] = "KEEP_READING",
	    [ACT_PASS] = "PASS",
	    [ACT_CLAMP] = "CLAMP",
	    [ACT_STRIP] = "STRIP",
	    [ACT_NOT_MODIFIED] = "NOT_MODIFIED",
	    [ACT_SERVE_CACHED] = "SERVE_CACHED",
	    [ACT_TRANSFORM] = "TRANSFORM",
	    [ACT_ERROR] = "ERROR",
	};
	return (unsigned)a < sizeof names / sizeof *names ? names[a] : "?";
}
