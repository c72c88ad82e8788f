/*
 * handler.c - the path of a request through imgsvc, top to bottom.
 *
 * handle_request owns the order: method → reserved paths → path →
 * parameters → API key → fetch from S3 → transform → respond → log. The
 * derivative's write to S3 is deferred until the response is finished
 * (handle_deferred). Modules do not call each other sideways; this file is
 * where they meet.
 *
 * An original (no parameters) is streamed: the first bytes from S3 are held
 * only until the image header says how wide it is. One no wider than
 * max_width, or anything that is not a recognised image, passes through as
 * it arrives; a wider one is collected and downscaled like ?w=max_width.
 *
 * A derivative (parameters) is looked up in the cache, and at the same
 * time the original's current ETag is asked for (a HEAD): a hit costs one
 * round trip. When the source ETag stored with the derivative is the
 * original's current one, the derivative is served without decoding;
 * otherwise the original is fetched and transformed: a changed original
 * is never served through its old derivative. A HEAD that fails leaves
 * the check to a conditional GET of the original (304: the derivative is
 * served), and a miss does not wait for the HEAD at all.
 *
 * Which of these happens (pass, downscale, 304, the cached derivative, a
 * transform, or a refusal) is decided in one pure function, decide()
 * (decide.c), from the client's conditions, the probe of the first bytes,
 * the limits and S3's metadata: the S3 callbacks here only collect bytes
 * and ask it, and the serving functions act on its answer.
 */
#include "handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "crypto.h"
#include "decide.h"
#include "failure.h"
#include "http.h"
#include "img.h"
#include "params.h"
#include "path.h"
#include "probe.h"
#include "reqlog.h"
#include "response.h"
#include "s3.h"
#include "slots.h"
#include "state.h"
#ifdef HAVE_REDIS
#include "redislimit.h"
#endif
#include "status.h"

/*
 * What shapes a derivative besides the source and its parameters. Bump the
 * pipeline version when the output of the same request changes.
 */
#define PIPELINE_VERSION "1"

/* One request as the serving functions see it. */
struct request {
	const struct app *app;
	struct response *resp;
	struct reqlog *log;
	struct failure *fail;
	const char *key;    /* the original's S3 key */
	const char *rel;    /* its path below the originals prefix */
	const char *accept; /* the Accept header, for fm=auto */
};

/*
 * An original on its way from S3. The callbacks collect its bytes and ask
 * decide() what they call for; only a pass-through streams as it arrives.
 */
struct fetch {
	const struct request *rq;
	struct s3_object obj;
	struct decide_in in; /* what decide() knows so far */
	struct decide_out out;
	enum action act;     /* its last answer */
	struct buf data;     /* sniffed bytes, or the whole original */
	long long deadline;  /* of the S3 reads (see s3_op); 0: the GET's own */
	struct s3_sink sink; /* ctx points back at this fetch */
};

/*
 * Asks the key's usage plan whether this request may go on. When Redis
 * cannot be asked the configured policy decides, and the failure is logged
 * (at most once a minute per process, so a Redis outage does not flood the
 * log).
 */
static enum status admit(const struct app *app, const struct auth_key *who, struct failure *fail)
{
	const struct plan *plan = &app->cfg->plans[who->plan];
	enum plan_verdict v = PLAN_ALLOW;
	int64_t retry = 0;

	if (app->redis) {
#ifdef HAVE_REDIS
		static long long last_warning; /* shared by the threads: atomic */
		char err[256];
		if (redis_admit(app->redis, who->name, plan, &v, &retry, err, sizeof err) < 0) {
			bool open = app->cfg->limits.redis_fail_open;
			long long now = clock_mono_ms();
			long long last = __atomic_load_n(&last_warning, __ATOMIC_RELAXED);
			/* One thread of the process wins the minute's warning. */
			if ((last == 0 || now - last > 60000) &&
			    __atomic_compare_exchange_n(&last_warning, &last, now, false,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				log_msg("warning",
					"usage-plan backend Redis unavailable (%s): failing %s",
					err,
					open ? "open (admitting)" : "closed (refusing with 503)");
			fail->retry_after = open ? 0 : 1;
			return open ? ST_OK : ST_UNAVAILABLE;
		}
#endif
	} else if (app->state) {
		v = state_admit(app->state, who->name, plan, clock_wall_ms(), &retry);
	}
	fail->retry_after = retry;
	return v == PLAN_ALLOW          ? ST_OK
	       : v == PLAN_RATE_LIMITED ? ST_RATE_LIMITED
					: ST_QUOTA_EXCEEDED;
}

static int stop(struct fetch *f, enum status st)
{
	f->sink.stop = st;
	return -1;
}

/* The variant string: what beyond source and parameters shapes output. */
static void variant(const struct app *app, char *out, size_t len)
{
	snprintf(out, len, "v" PIPELINE_VERSION "-q%lld", app->cfg->server.quality);
}

/*
 * A fetch of the original for rq: the client's conditions, the limits and
 * the original's headers (once they arrive) are what decide() is given.
 */
static void fetch_init(struct fetch *f, const struct request *rq, bool derivative, const char *var)
{
	const struct cfg_server *srv = &rq->app->cfg->server;
	*f = (struct fetch){.rq = rq, .act = ACT_KEEP_READING};
	f->in = (struct decide_in){.derivative = derivative,
				   .if_none_match = rq->resp->if_none_match,
				   .if_modified_since = rq->resp->if_modified_since,
				   .variant = var,
				   .probed = PROBE_NEED_MORE,
				   .max_width = derivative ? 0 : srv->max_width,
				   .max_source_pixels = srv->max_source_pixels,
				   .max_source_bytes = srv->max_source_bytes,
				   .formats = srv->formats,
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

	if (was == ACT_KEEP_READING)
		f->in.probed =
		    probe_image((const unsigned char *)f->data.data, f->data.len, &f->in.info);
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
		return stop(f, f->out.st);
	case ACT_CLAMP:
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

/*
 * GETs the original into f, streamed or collected as decide() says. inm
 * is forwarded to S3 as a condition; S3's 304 comes back as
 * ST_NOT_MODIFIED with the object's headers in f->obj. Once the object
 * has ended, decide() has the last word on what was collected.
 */
static enum status get_original(struct fetch *f, const char *inm)
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

/* Runs the pipeline on a collected source and answers with the result. */
static enum status transform_and_send(struct fetch *f, const struct params *p,
				      const struct image_meta *m, struct img_output *out)
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
		failure_note(f->rq->fail,
			     "no image slot came free before the deadline (timeout_ms): host busy");
		return ST_UNAVAILABLE;
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

/* An original, streamed, or downscaled when wider than max_width. */
static enum status serve_original(const struct request *rq)
{
	const struct app *app = rq->app;
	struct response *resp = rq->resp;
	struct fetch f;
	char var[32];

	variant(app, var, sizeof var);
	fetch_init(&f, rq, false, var);
	/*
	 * One strong tag, the form browsers send back, S3 judges exactly as we
	 * would: forward it, so a 304 costs no body. Anything else (a list,
	 * weak tags, "*", If-Modified-Since alone) is judged here once S3's
	 * headers arrive, then the transfer stops.
	 */
	const char *forward =
	    http_single_strong_etag(resp->if_none_match) ? resp->if_none_match : NULL;
	f.in.judge_here = !forward && (resp->if_none_match || resp->if_modified_since);
	enum status st = get_original(&f, forward);
	if (st == ST_NOT_MODIFIED) {
		f.in.s3_not_modified = true;
		f.act = decide(&f.in, &f.out);
		st = ST_OK;
	}
	if (st == ST_OK) {
		struct image_meta m = {NULL, -1, f.out.etag, f.obj.last_modified, NULL, false};
		if (f.act == ACT_NOT_MODIFIED) {
			resp_not_modified(resp, &m);
		} else if (f.act == ACT_CLAMP) {
			struct params p = {.w = (unsigned long)app->cfg->server.max_width,
					   .any = true};
			struct img_output out;
			st = transform_and_send(&f, &p, &m, &out);
			img_output_free(&out);
		}
	}
	buf_free(&f.data);
	return st;
}

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

/*
 * A derivative: from the cache when made from the original as it is now,
 * else computed from the original and kept. What to send is decide()'s
 * answer, once the source is known.
 */
static enum status serve_derivative(const struct request *rq, struct params *p,
				    const struct params_limits *lim, struct deferred *later)
{
	const struct app *app = rq->app;
	struct buf canon = BUF_INIT, dkey = BUF_INIT;
	struct collected cached = {BUF_INIT, app->cfg->server.max_source_bytes};
	struct fetch f;
	struct s3_object dobj, src;
	enum cache_found found = CACHE_MISS;
	bool vary_accept = p->fm == FM_AUTO;
	char var[32], inm[HTTP_ETAG_LEN];
	enum status st = ST_OK;

	if (p->fm == FM_AUTO && params_accepts_webp(rq->accept))
		p->fm = FM_WEBP;
	params_canonical(p, lim, &canon);
	variant(app, var, sizeof var);
	buf_printf(&dkey, "%s%s/%s", app->cfg->s3.resized_prefix, canon.data, rq->rel);
	fetch_init(&f, rq, true, var);
	f.in.canonical = canon.data;
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
		st = get_original(&f, inm);
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
		if (found != CACHE_FRESH)
			st = get_original(&f, found == CACHE_UNCONFIRMED ? inm : NULL);
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
			st = transform_and_send(&f, p, &m, &later->out);
			if (st == ST_OK && app->cfg->server.derivative_cache &&
			    dkey.len <= PATH_MAX_KEY)
				defer_write(&f, &dkey, var, later);
			break;
		case ACT_ERROR:
			failure_note(rq->fail, f.out.detail);
			st = f.out.st;
			break;
		default:
			st = ST_INTERNAL;
			break;
		}
	}
	buf_free(&f.data);
	buf_free(&cached.data);
	buf_free(&canon);
	buf_free(&dkey);
	return st;
}

/* Prometheus metrics of the whole host, for the holder of the metrics key. */
static enum status serve_metrics(const struct app *app, struct response *resp,
				 const char *presented, const char *authorization,
				 struct failure *fail)
{
	const struct auth_key *who;

	/* Scrapers that can only send a bearer token (Prometheus) may. */
	if ((!presented || !*presented) && authorization &&
	    strncasecmp(authorization, "Bearer ", 7) == 0)
		presented = authorization + 7;

	if (!app->cfg->metrics_keys.n || !app->state) {
		fail->message = "Metrics are not enabled (see [metrics] in the configuration)";
		return ST_NOT_FOUND;
	}
	if (auth_check(&app->cfg->metrics_keys, presented, &who) != AUTH_OK)
		return ST_FORBIDDEN;
	struct buf body = BUF_INIT;
	state_metrics(app->state, &body);
	resp_text(resp, "text/plain; version=0.0.4; charset=utf-8", body.data, body.len);
	buf_free(&body);
	return ST_OK;
}

/*
 * The X-API-Key header (NULL when absent); *several is set when the request
 * carries HTTP_X_API_KEY more than once. Web servers join repeated headers
 * into one value, but lighttpd maps both "X-API-Key" and "X_API_Key" onto
 * HTTP_X_API_KEY and passes each, and libfcgi would hand over whichever
 * came first: two keys in one request are refused, never one picked.
 */
static const char *api_key(FCGX_Request *rq, bool *several)
{
	static const char name[] = "HTTP_X_API_KEY=";
	const char *found = NULL;

	*several = false;
	for (char **e = rq->envp; e && *e; e++) {
		if (strncmp(*e, name, sizeof name - 1) != 0)
			continue;
		if (found)
			*several = true;
		else
			found = *e + sizeof name - 1;
	}
	return found;
}

static enum status serve_reserved(const struct app *app, struct response *resp, const char *path,
				  FCGX_Request *rq, struct failure *fail)
{
	bool several;
	const char *presented = api_key(rq, &several);
	if (strcmp(path, PATH_RESERVED "metrics") == 0)
		return several ? ST_FORBIDDEN
			       : serve_metrics(app, resp, presented,
					       FCGX_GetParam("HTTP_AUTHORIZATION", rq->envp), fail);
	if (strcmp(path, PATH_RESERVED "health") == 0) {
		static const char body[] = "{\"status\":\"ok\"}\n";
		resp_text(resp, "application/json", body, sizeof body - 1);
		return ST_OK;
	}
	fail->message = "No such service path";
	return ST_NOT_FOUND;
}

/*
 * Defence in depth: an encoded NUL in the path cannot survive into
 * PATH_INFO intact (libfcgi's parameters are C strings). Only the path part
 * of the URI is looked at: in the query "%00" reaches params_parse still
 * encoded, which refuses it as the bad parameter it is.
 */
static bool has_encoded_nul(const char *uri)
{
	for (const char *p = uri; p && *p && *p != '?'; p++)
		if (p[0] == '%' && p[1] == '0' && p[2] == '0')
			return true;
	return false;
}

/* A request header worth forwarding or comparing, else NULL. */
static const char *header(FCGX_Request *rq, const char *name)
{
	const char *v = FCGX_GetParam(name, rq->envp);
	return http_value_safe(v, 1024) ? v : NULL;
}

/* For the metrics: 1 a cache hit, 2 a miss, 0 neither (originals, 304s). */
static int cache_kind(const char *cache)
{
	if (!cache)
		return 0;
	return strcmp(cache, "hit") == 0 ? 1 : strcmp(cache, "miss") == 0 ? 2 : 0;
}

void handle_request(const struct app *app, FCGX_Request *rq, struct deferred *later)
{
	long long t0 = clock_mono_ms();
	const char *method = FCGX_GetParam("REQUEST_METHOD", rq->envp);
	const char *path = FCGX_GetParam("PATH_INFO", rq->envp);
	const char *uri = FCGX_GetParam("REQUEST_URI", rq->envp);
	const char *query = FCGX_GetParam("QUERY_STRING", rq->envp);
	bool several_keys;
	const char *presented = api_key(rq, &several_keys);
	struct response resp = {
	    .out = rq->out, .rq = rq, .cache_control = app->cfg->server.cache_control};
	struct reqlog log = {.method = method, .path = path, .s3_ms = -1, .img_ms = -1};
	struct buf key = BUF_INIT;
	struct failure fail = FAILURE_INIT;
	struct params_limits lim = {(unsigned long)app->cfg->server.max_output_dimension,
				    (int)app->cfg->server.quality};
	struct params params;
	const struct auth_key *who = NULL;
	char perr[160];
	enum status st;

	memset(later, 0, sizeof *later);
	if (!method || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)) {
		st = ST_BAD_METHOD;
		goto done;
	}
	resp.head_only = strcmp(method, "HEAD") == 0;
	resp.if_none_match = header(rq, "HTTP_IF_NONE_MATCH");
	resp.if_modified_since = header(rq, "HTTP_IF_MODIFIED_SINCE");
	if (path && strncmp(path, PATH_RESERVED, strlen(PATH_RESERVED)) == 0) {
		st = serve_reserved(app, &resp, path, rq, &fail);
		goto done;
	}
	if (has_encoded_nul(uri)) {
		st = ST_BAD_REQUEST;
		fail.message = "Path contains a control character";
		goto done;
	}
	st = path_to_key(path, app->cfg->s3.originals_prefix, &key, &fail.message);
	if (st != ST_OK)
		goto done;
	if (!params_parse(query, &lim, &params, perr, sizeof perr)) {
		st = ST_BAD_REQUEST;
		fail.message = perr;
		goto done;
	}
	if (several_keys) {
		failure_note(&fail, "more than one X-API-Key header");
		st = ST_FORBIDDEN;
		goto done;
	}
	switch (auth_check(&app->cfg->keys, presented, &who)) {
	case AUTH_OK:
		break;
	case AUTH_MISSING:
		failure_note(&fail, "no API key");
		st = ST_FORBIDDEN;
		goto done;
	case AUTH_UNKNOWN:
		failure_note(&fail, "unknown API key");
		st = ST_FORBIDDEN;
		goto done;
	case AUTH_DISABLED:
		log.key_name = who->name;
		failure_note(&fail, "disabled API key");
		st = ST_FORBIDDEN;
		goto done;
	}
	log.key_name = who->name;
	if (who->plan >= 0) {
		st = admit(app, who, &fail);
		if (st != ST_OK)
			goto done;
	}
	log.s3_ms = 0;
	struct request req = {
	    app, &resp, &log, &fail, key.data, path + 1, FCGX_GetParam("HTTP_ACCEPT", rq->envp)};
	if (params_is_identity(&params, &lim))
		st = serve_original(&req);
	else
		st = serve_derivative(&req, &params, &lim, later);
done:
	if (st == ST_NOT_MODIFIED && !resp.head_sent)
		st = ST_INTERNAL; /* every 304 is sent where it is decided */
	/* Nothing written yet (an original under STAGE_MAX): the error status still can be. */
	if (st != ST_OK && resp.head_sent && !resp.committed)
		resp_take_back(&resp);
	fail.st = st;
	if (st != ST_OK && !resp.head_sent)
		resp_error(&resp, &fail);
	bool aborted = st != ST_OK && resp.code == 200;
	if (aborted) {
		/* Too late for an error status: the client sees a short body. */
		struct buf late = BUF_INIT;
		const char *reason = failure_reason(&fail);
		buf_printf(&late, "failed after the response started (%d): %s", status_http(st),
			   reason ? reason : status_message(st));
		buf_free(&fail.detail);
		fail.detail = late;
	}
	log.detail = failure_reason(&fail);
	if (later->pending && (resp.code != 200 || st != ST_OK))
		handle_deferred_free(later);
	resp_finish(&resp, aborted);
	log.status = resp.code;
	log.bytes = resp.bytes;
	log.total_ms = (long)(clock_mono_ms() - t0);
	reqlog_write(&log);
	if (app->state) {
		struct state_request r = {
		    .key_name = who && !(st == ST_FORBIDDEN) ? who->name : NULL,
		    .status = resp.code,
		    .bytes = resp.bytes,
		    .total_s = (double)(clock_mono_ms() - t0) / 1000,
		    .s3_s = log.s3_ms >= 0 ? (double)log.s3_ms / 1000 : -1,
		    .cache = cache_kind(log.cache),
		    .now_ms = clock_wall_ms(),
		};
		state_record(app->state, &r);
	}
	buf_free(&key);
	failure_free(&fail);
}

void handle_deferred(const struct app *app, struct deferred *later)
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
	handle_deferred_free(later);
}

void handle_deferred_free(struct deferred *later)
{
	img_output_free(&later->out);
	buf_free(&later->key);
	buf_free(&later->source_etag);
	later->pending = false;
}
