/*
 * original.c - an original from S3, and the fetch a derivative's source
 * uses too.
 *
 * The first bytes from S3 are held only until the image header says how
 * wide the image is. One no wider than max_width, or anything that is not
 * a recognised image, passes through as it arrives; a wider one is
 * downscaled like ?w=max_width: with the derivative cache on, the transfer
 * stops there and the request is handed back to be served as that
 * derivative (cached, or computed once and kept); without it, the rest is
 * collected and downscaled here. The S3 callbacks only
 * collect bytes and ask decide() (decide.c) what they call for: pass,
 * downscale, 304, keep reading, or a refusal.
 */
#include "original.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "http.h"
#include "probe.h"
#include "slots.h"
#include "strip.h"

/*
 * What shapes a derivative besides the source and its parameters. Bump the
 * pipeline version when the output of the same request changes.
 */
#define PIPELINE_VERSION "1"

static int stop(struct fetch *f, enum status st)
{
	f->sink.stop = st;
	return -1;
}

void orig_variant(const struct app *app, char *out, size_t len)
{
	snprintf(out, len, "v" PIPELINE_VERSION "-q%lld", app->cfg->server.quality);
}

void orig_fetch_init(struct fetch *f, const struct request *rq, bool derivative, const char *var)
{
	const struct cfg_server *srv = &rq->app->cfg->server;
	*f = (struct fetch){.rq = rq, .act = ACT_KEEP_READING};
	f->in = (struct decide_in){.derivative = derivative,
				   .if_none_match = rq->resp->if_none_match,
				   .if_modified_since = rq->resp->if_modified_since,
				   .now = clock_wall_ms() / 1000,
				   .variant = var,
				   .probed = PROBE_NEED_MORE,
				   .max_width = derivative ? 0 : srv->max_width,
				   .strip = !derivative && srv->strip_originals,
				   .max_source_pixels = srv->max_source_pixels,
				   .max_source_bytes = srv->max_source_bytes,
				   .formats = srv->formats,
				   .budget = {srv->max_image_memory, srv->max_output_pixels},
				   .etag = f->obj.etag,
				   .last_modified = f->obj.last_modified,
				   .length = -1};
}

/* Passes the original through: headers from S3, then what was held back. */
static void start_pass(struct fetch *f)
{
	struct image_meta m = {f->obj.content_type,
			       f->obj.content_length,
			       f->obj.etag,
			       f->obj.last_modified,
			       NULL,
			       false};
	resp_image(f->rq->resp, &m, f->data.data, f->data.len);
	buf_free(&f->data);
}

/*
 * Asks decide() what the bytes held call for, and starts on it: a pass
 * streams from here on, a 304 or an error ends the transfer, the rest
 * keeps collecting. 0 to go on, -1 to stop (see struct s3_sink).
 */
static int fetch_decide(struct fetch *f)
{
	struct response *resp = f->rq->resp;
	enum action was = f->act;

	if (was == ACT_KEEP_READING) {
		/*
		 * Never more than max_source_bytes: bytes past it must not decide,
		 * or the answer would depend on how far the last chunk reached.
		 */
		size_t n = f->data.len;
		if (f->in.max_source_bytes >= 0 && (long long)n > f->in.max_source_bytes)
			n = (size_t)f->in.max_source_bytes;
		f->in.probed = probe_image((const unsigned char *)f->data.data, n, &f->in.info);
	}
	f->in.have = f->data.len;
	f->act = decide(&f->in, &f->out);
	switch (f->act) {
	case ACT_PASS:
		start_pass(f);
		/* HEAD has all it needs, and a vanished client wants nothing more. */
		return resp->head_only || resp->client_gone ? stop(f, ST_OK) : 0;
	case ACT_NOT_MODIFIED:
		return stop(f, ST_OK); /* answered once the transfer has stopped */
	case ACT_ERROR:
		failure_note(f->rq->fail, f->out.detail);
		if (f->out.message)
			f->rq->fail->message = f->out.message;
		return stop(f, f->out.st);
	case ACT_CLAMP:
		if (f->hand_over)
			return stop(f, ST_OK); /* the derivative ?w=max_width, from the cache */
		/* Collected whole, like an original to strip. */
		__attribute__((fallthrough));
	case ACT_STRIP:
		/* One allocation for the rest of a source that will be collected whole. */
		if (was == ACT_KEEP_READING && f->obj.content_length > (long long)f->data.len)
			buf_reserve(&f->data, (size_t)f->obj.content_length - f->data.len);
		return 0;
	default:
		return 0;
	}
}

static int fetch_on_head(void *ctx, const struct s3_object *obj)
{
	struct fetch *f = ctx;
	f->obj = *obj;
	f->in.length = obj->content_length;
	/* One allocation for a source that will be collected whole. */
	if (f->in.derivative && obj->content_length > 0 &&
	    obj->content_length <= f->in.max_source_bytes)
		buf_reserve(&f->data, (size_t)obj->content_length);
	return fetch_decide(f);
}

static int fetch_on_data(void *ctx, const void *data, size_t len)
{
	struct fetch *f = ctx;
	struct response *resp = f->rq->resp;

	if (f->act == ACT_PASS) {
		resp_body(resp, data, len);
		return resp->head_only || resp->client_gone ? stop(f, ST_OK) : 0;
	}
	buf_append(&f->data, data, len);
	return fetch_decide(f);
}

/*
 * The connection to S3 broke off in the body: start over, unless bytes
 * have already gone to the web server (then the client's response breaks
 * off too; see resp_finish).
 */
static int fetch_on_restart(void *ctx)
{
	struct fetch *f = ctx;
	if (f->rq->resp->committed)
		return -1;
	resp_take_back(f->rq->resp);
	buf_reset(&f->data);
	f->act = ACT_KEEP_READING;
	f->in.probed = PROBE_NEED_MORE;
	buf_reset(&f->rq->fail->detail);
	return 0;
}

/* Describes a failed S3 exchange for the log. */
static void describe_s3(const struct s3_result *res, struct failure *fail)
{
	failure_notef(fail, "S3 %ld %s after %d attempt(s)%s%s", res->http_status,
		      res->code[0] ? res->code : "-", res->attempts, res->detail[0] ? ": " : "",
		      res->detail);
	if (strcmp(res->code, "AccessDenied") == 0)
		log_msg("warning",
			"S3 said AccessDenied for an object: reported as 404; "
			"the likely cause is a missing s3:ListBucket permission on the bucket");
}

enum status orig_fetch(struct fetch *f, const char *inm)
{
	struct s3_result res;
	struct s3_op op = {.method = "GET",
			   .key = f->rq->key,
			   .sink = &f->sink,
			   .if_none_match = inm,
			   .deadline = f->deadline};

	f->sink = (struct s3_sink){fetch_on_head, fetch_on_data, fetch_on_restart, f, ST_OK};
	enum status st = s3_request(f->rq->app->s3, &op, &res);
	f->rq->log->s3_ms += res.ms;
	if (st == ST_NOT_MODIFIED)
		f->obj = res.obj;
	if (st == ST_OK && f->act != ACT_PASS && f->act != ACT_NOT_MODIFIED) {
		f->in.complete = true;
		fetch_decide(f);
		st = f->sink.stop;
	}
	if (st != ST_OK && st != ST_NOT_MODIFIED)
		describe_s3(&res, f->rq->fail);
	return st;
}

enum status orig_transform(struct fetch *f, const struct params *p, const struct image_meta *m,
			   struct img_output *out)
{
	const struct app *app = f->rq->app;
	struct reqlog *log = f->rq->log;
	const char *why = NULL;
	long long t0 = clock_mono_ms();
	int quality = p->q ? p->q : (int)app->cfg->server.quality;
	/* The image work, and only it, holds one of the host's image slots. */
	long long wait_until = f->deadline ? f->deadline : t0 + app->cfg->s3.timeout_ms;
	int slot = slots_acquire(app->slots, wait_until);
	if (slot < 0) {
		log->img_ms = (long)(clock_mono_ms() - t0);
		return failure_busy(f->rq->fail, "no image slot came free before the deadline "
						 "(timeout_ms): host busy");
	}
	long long t1 = clock_mono_ms(); /* img_ms is the work, not the wait */
	enum status st =
	    img_transform(f->data.data, f->data.len, &f->in.info, p, quality, out, &why);
	slots_release(app->slots, slot);

	log->img_ms = (long)(clock_mono_ms() - t1);
	if (st != ST_OK) {
		failure_note(f->rq->fail, why);
		return st;
	}
	struct image_meta om = *m;
	om.type = probe_mime(out->format);
	om.length = (long long)out->len;
	resp_image(f->rq->resp, &om, out->data, out->len);
	return ST_OK;
}

/*
 * An original collected whole for strip_originals: without its metadata
 * under an ETag of its own (S3's names the bytes in the bucket), or, when
 * it had none, as it is under S3's. The client's conditions are judged
 * here, now that the ETag is known.
 */
static void serve_stripped(struct fetch *f, const char *var)
{
	struct response *resp = f->rq->resp;
	struct buf out = BUF_INIT;
	bool changed = strip_metadata((const unsigned char *)f->data.data, f->data.len,
				      f->in.info.format, f->in.info.orientation, &out);
	char etag[HTTP_ETAG_LEN];
	if (changed)
		http_derived_etag(f->obj.etag, "strip", var, etag);
	else
		snprintf(etag, sizeof etag, "%s", f->obj.etag);
	const struct buf *body = changed ? &out : &f->data;
	struct image_meta m = {f->obj.content_type, (long long)body->len, etag,
			       f->obj.last_modified, NULL, false};
	if ((resp->if_none_match || resp->if_modified_since) && decide_client_has(&f->in, etag))
		resp_not_modified(resp, &m);
	else
		resp_image(resp, &m, body->data, body->len);
	buf_free(&out);
}

enum status orig_serve(const struct request *rq, struct params *clamp)
{
	const struct app *app = rq->app;
	struct response *resp = rq->resp;
	struct fetch f;
	char var[32];

	*clamp = (struct params){0};
	orig_variant(app, var, sizeof var);
	orig_fetch_init(&f, rq, false, var);
	f.hand_over = app->cfg->server.derivative_cache;
	/*
	 * One strong tag, the form browsers send back, S3 judges exactly as we
	 * would: forward it, so a 304 costs no body. Anything else (a list,
	 * weak tags, "*", If-Modified-Since alone) is judged here once S3's
	 * headers arrive, then the transfer stops.
	 */
	const char *forward =
	    http_single_strong_etag(resp->if_none_match) ? resp->if_none_match : NULL;
	f.in.judge_here = !forward && (resp->if_none_match || resp->if_modified_since);
	enum status st = orig_fetch(&f, forward);
	if (st == ST_NOT_MODIFIED) {
		f.in.s3_not_modified = true;
		f.act = decide(&f.in, &f.out);
		st = ST_OK;
	}
	if (st == ST_OK) {
		struct image_meta m = {NULL, -1, f.out.etag, f.obj.last_modified, NULL, false};
		struct params p = {.w = (unsigned long)app->cfg->server.max_width, .any = true};
		if (f.act == ACT_NOT_MODIFIED) {
			resp_not_modified(resp, &m);
		} else if (f.act == ACT_CLAMP && f.hand_over) {
			*clamp = p;
		} else if (f.act == ACT_CLAMP) {
			struct img_output out;
			st = orig_transform(&f, &p, &m, &out);
			img_output_free(&out);
		} else if (f.act == ACT_STRIP) {
			serve_stripped(&f, var);
		}
	}
	buf_free(&f.data);
	return st;
}
