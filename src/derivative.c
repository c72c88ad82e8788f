/*
 * derivative.c - a derivative: the cache, else the original transformed.
 *
 * The derivative is looked up in the cache, and at the same time the
 * original's current ETag is asked for (a HEAD): a hit costs one round
 * trip. When the source ETag stored with the derivative is the original's
 * current one, the derivative is served without decoding; otherwise the
 * original is fetched (original.c) and transformed: a changed original is
 * never served through its old derivative. A HEAD that fails leaves the
 * check to a conditional GET of the original (304: the derivative is
 * served), and a miss does not wait for the HEAD at all. What is sent is
 * decide()'s answer once the source is known.
 */
#include "derivative.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "decide.h"
#include "gate.h"
#include "http.h"
#include "original.h"
#include "path.h"
#include "probe.h"
#include "reqlog.h"
#include "s3.h"

/* A derivative read from the cache: all of it, up to limit bytes. */
struct collected {
	struct buf data;
	long long limit;
};

static int collect_head(void *ctx, const struct s3_object *obj)
{
	struct collected *c = ctx;
	return obj->content_length > c->limit ? -1 : 0;
}

static int collect_data(void *ctx, const void *data, size_t len)
{
	struct collected *c = ctx;
	if ((long long)(c->data.len + len) > c->limit)
		return -1;
	buf_append(&c->data, data, len);
	return 0;
}

static int collect_restart(void *ctx)
{
	struct collected *c = ctx;
	buf_reset(&c->data);
	return 0;
}

/* What the cache holds for a request, as far as one round trip can tell. */
enum cache_found {
	CACHE_MISS,        /* nothing usable, or made from another version of the original */
	CACHE_FRESH,       /* made from the original as it is now */
	CACHE_UNCONFIRMED, /* usable if the original is unchanged: the HEAD failed */
};

/*
 * Reads the derivative at dkey from the cache and, at the same time, the
 * headers of its original (a HEAD): both answers arrive in about one
 * round trip. A derivative is usable when this pipeline and variant made
 * it; the HEAD's ETag then says whether its source is the original as it
 * is now. Once the derivative is known missing or unreadable the HEAD is
 * stopped: the original must be read whole anyway, and a HEAD that hangs
 * or fails must not hold up or fail that read. *dobj holds the
 * derivative's headers, *src the original's when the HEAD answered.
 */
static enum cache_found cache_lookup(const struct request *rq, const char *dkey, const char *var,
				     long long deadline, struct collected *c,
				     struct s3_object *dobj, struct s3_object *src)
{
	struct s3_sink sink = {collect_head, collect_data, collect_restart, c, ST_S3_ERROR};
	struct s3_op ops[2] = {
	    {.method = "GET", .key = dkey, .sink = &sink, .deadline = deadline, .lead = true},
	    {.method = "HEAD", .key = rq->key, .deadline = deadline},
	};
	struct s3_result res[2];
	char bare[160];

	s3_request_all(rq->app->s3, ops, res, 2);
	/* The two ran side by side: S3 was waited on for the longer one. */
	rq->log->s3_ms += res[0].ms > res[1].ms ? res[0].ms : res[1].ms;
	if (res[0].status != ST_OK) {
		if (res[0].status != ST_NOT_FOUND)
			log_msg("warning",
				"derivative cache read failed (S3 %ld %s): computing afresh",
				res[0].http_status, res[0].code[0] ? res[0].code : "-");
		return CACHE_MISS;
	}
	*dobj = res[0].obj;
	if (!*dobj->source_etag || strcmp(dobj->variant, var) != 0)
		return CACHE_MISS;
	/*
	 * A HEAD that failed (a 503, a timeout, a 404 or 403 with no body to
	 * say which) vouches for nothing: a conditional GET will.
	 */
	if (res[1].status != ST_OK)
		return CACHE_UNCONFIRMED;
	*src = res[1].obj;
	http_unquote_etag(src->etag, bare, sizeof bare);
	return strcmp(bare, dobj->source_etag) == 0 ? CACHE_FRESH : CACHE_MISS;
}

/* Keeps a derivative just sent, to be written to the cache after the response. */
static void defer_write(const struct fetch *f, const struct buf *dkey, const char *var,
			struct deferred *later)
{
	char bare[160];
	http_unquote_etag(f->obj.etag, bare, sizeof bare);
	buf_puts(&later->source_etag, bare);
	snprintf(later->variant, sizeof later->variant, "%s", var);
	snprintf(later->source_last_modified, sizeof later->source_last_modified, "%s",
		 f->obj.last_modified);
	buf_append(&later->key, dkey->data, dkey->len);
	later->pending = true;
}

enum status deriv_serve(const struct request *rq, struct params *p, const struct params_limits *lim,
			struct deferred *later)
{
	const struct app *app = rq->app;
	struct buf canon = BUF_INIT, dkey = BUF_INIT;
	struct collected cached = {BUF_INIT, app->cfg->server.max_source_bytes};
	struct fetch f;
	struct s3_object dobj, src;
	enum cache_found found = CACHE_MISS;
	bool holds_source = false; /* a place in app->sources */
	bool vary_accept = p->fm == FM_AUTO;
	char var[32], inm[HTTP_ETAG_LEN];
	enum status st = ST_OK;

	if (p->fm == FM_AUTO && params_accepts_webp(rq->accept))
		p->fm = FM_WEBP;
	params_canonical(p, lim, &canon);
	orig_variant(app, var, sizeof var);
	buf_printf(&dkey, "%s%s/%s", app->cfg->s3.resized_prefix, canon.data, rq->rel);
	orig_fetch_init(&f, rq, true, var);
	f.in.canonical = canon.data;
	f.in.params = p;
	/*
	 * The cache read and the original share one deadline: an S3 that does
	 * not answer costs the client timeout_ms, not twice that.
	 */
	f.deadline = clock_mono_ms() + app->cfg->s3.timeout_ms;
	rq->log->cache = "miss";

	if (http_derived_source(rq->resp->if_none_match, canon.data, var, inm, sizeof inm)) {
		/*
		 * A revalidation names, in its ETag, the source its copy was made
		 * from: one bodyless conditional GET of the original settles it.
		 */
		st = orig_fetch(&f, inm);
		if (st == ST_NOT_MODIFIED) {
			f.in.s3_not_modified = true;
			f.in.etag = inm;
			f.act = decide(&f.in, &f.out);
			rq->log->cache = "revalidated";
			st = ST_OK;
		}
	} else {
		if (app->cfg->server.derivative_cache)
			found = cache_lookup(rq, dkey.data, var, f.deadline, &cached, &dobj, &src);
		if (found != CACHE_MISS)
			snprintf(inm, sizeof inm, "\"%s\"", dobj.source_etag);
		/*
		 * A miss: the original, whole. A derivative the HEAD could not
		 * vouch for: a conditional GET, which S3 answers 304 when the
		 * original is still the derivative's source, else with the new one.
		 */
		if (found != CACHE_FRESH) {
			/*
			 * Either may bring a whole original to work on: it waits
			 * for a place among the process's sources first, and not
			 * to the very end: a place that comes free with less than
			 * a quarter of timeout_ms (at most 1 s) left would start a
			 * fetch and a transform that cannot finish in time, and
			 * turn "busy" into an S3 timeout.
			 */
			long long reserve = app->cfg->s3.timeout_ms / 4;
			if (reserve > 1000)
				reserve = 1000;
			holds_source = gate_enter(app->sources, f.deadline - reserve);
			if (holds_source) {
				st = orig_fetch(&f, found == CACHE_UNCONFIRMED ? inm : NULL);
			} else {
				st = failure_busy(rq->fail, "no place for another original before "
							    "the deadline (timeout_ms): host busy");
			}
		}
		if (st == ST_NOT_MODIFIED && found == CACHE_UNCONFIRMED) {
			found = CACHE_FRESH;
			src = f.obj;
			st = ST_OK;
		}
		if (st == ST_OK && found == CACHE_FRESH) {
			/* The original is the one the derivative was made from. */
			f.in.cached = true;
			f.in.etag = inm;
			/* S3 sends Last-Modified with a HEAD or 304; not every
			 * S3-compatible store does. */
			f.in.last_modified =
			    *src.last_modified ? src.last_modified : dobj.source_last_modified;
			f.act = decide(&f.in, &f.out);
			rq->log->cache = "hit";
		}
	}
	if (st == ST_OK) {
		struct image_meta m = {.etag = f.out.etag,
				       .last_modified = f.in.last_modified,
				       .cache = found == CACHE_FRESH   ? "hit"
						: f.in.s3_not_modified ? NULL
								       : "miss",
				       .vary_accept = vary_accept};
		switch (f.act) {
		case ACT_NOT_MODIFIED:
			resp_not_modified(rq->resp, &m);
			break;
		case ACT_SERVE_CACHED:
			m.type = dobj.content_type;
			m.length = (long long)cached.data.len;
			resp_image(rq->resp, &m, cached.data.data, cached.data.len);
			break;
		case ACT_TRANSFORM:
			st = orig_transform(&f, p, &m, &later->out);
			if (st == ST_OK && app->cfg->server.derivative_cache &&
			    dkey.len <= PATH_MAX_KEY)
				defer_write(&f, &dkey, var, later);
			break;
		case ACT_ERROR:
			failure_note(rq->fail, f.out.detail);
			if (f.out.message)
				rq->fail->message = f.out.message;
			st = f.out.st;
			break;
		default:
			st = ST_INTERNAL;
			break;
		}
	}
	if (holds_source)
		gate_leave(app->sources);
	buf_free(&f.data);
	buf_free(&cached.data);
	buf_free(&canon);
	buf_free(&dkey);
	return st;
}

void deriv_write(const struct app *app, struct deferred *later)
{
	if (later->pending) {
		struct s3_op op = {.method = "PUT",
				   .key = later->key.data,
				   .body = later->out.data,
				   .body_len = later->out.len,
				   .content_type = probe_mime(later->out.format),
				   .source_etag = later->source_etag.data,
				   .variant = later->variant,
				   .source_last_modified = later->source_last_modified};
		struct s3_result res;
		enum status st = s3_request(app->s3, &op, &res);
		if (st != ST_OK)
			log_msg("warning",
				"derivative cache write failed (S3 %ld %s after %d attempt(s)); "
				"the request was served, the next one computes it again",
				res.http_status, res.code[0] ? res.code : "-", res.attempts);
	}
	deriv_free(later);
}

void deriv_free(struct deferred *later)
{
	img_output_free(&later->out);
	buf_free(&later->key);
	buf_free(&later->source_etag);
	later->pending = false;
}
