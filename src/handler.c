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
 */
#include "handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <errno.h>
#include <fastcgi.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "auth.h"
#include "buf.h"
#include "clock.h"
#include "crypto.h"
#include "gate.h"
#include "http.h"
#include "img.h"
#include "json.h"
#include "params.h"
#include "path.h"
#include "probe.h"
#include "reqlog.h"
#include "slots.h"
#ifdef HAVE_REDIS
#include "redislimit.h"
#endif
#include "status.h"

/* How much of an original may be held while looking for its dimensions. */
#define SNIFF_MAX (512 * 1024)

/*
 * What shapes a derivative besides the source and its parameters. Bump the
 * pipeline version when the output of the same request changes.
 */
#define PIPELINE_VERSION "1"

/* The request's view of the client: what it sent and what it gets. */
struct response {
	FCGX_Stream *out;
	FCGX_Request *rq; /* for writing large bodies straight to the socket */
	struct buf head;  /* the status and headers, until the first write */
	struct buf stage; /* body bytes not yet written (see send_body) */
	bool head_only;   /* HEAD: headers, no body */
	bool head_sent;   /* the status is decided (it may not be written yet) */
	bool committed;   /* bytes have gone to the web server: no going back */
	bool client_gone; /* the web server stopped taking our output */
	int code;         /* the status sent */
	long long bytes;
	const char *if_none_match; /* NULL when absent */
	const char *if_modified_since;
};

/* Headers of an image response. */
struct image_meta {
	const char *type;
	long long length; /* -1: unknown */
	const char *etag;
	const char *last_modified;
	const char *cache; /* "hit", "miss" or NULL (an original) */
	bool vary_accept;
};

enum mode { MODE_SNIFF, MODE_PASS, MODE_CLAMP };

/* An original on its way from S3, streamed or collected. */
struct fetch {
	const struct app *app;
	struct response *resp;
	struct s3_object obj;
	enum mode mode;
	bool collect_only; /* derivative source: collect, never stream */
	struct buf data;   /* sniffed bytes, or the whole original */
	struct probe_info info;
	enum probe_result probed;
	bool judge_here;    /* the client's conditions are judged here, not by S3 */
	long long deadline; /* of the S3 reads (see s3_op); 0: the GET's own */
	const char *detail;
	struct s3_sink sink; /* ctx points back at this fetch */
};

/*
 * Asks the key's usage plan whether this request may go on. When Redis
 * cannot be asked the configured policy decides, and the failure is logged
 * (at most once a minute per process, so a Redis outage does not flood the
 * log).
 */
static enum status admit(const struct app *app, const struct auth_key *who, long long *retry_after)
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
			*retry_after = open ? 0 : 1;
			return open ? ST_OK : ST_UNAVAILABLE;
		}
#endif
	} else if (app->state) {
		v = state_admit(app->state, who->name, plan, clock_wall_ms(), &retry);
	}
	*retry_after = retry;
	return v == PLAN_ALLOW          ? ST_OK
	       : v == PLAN_RATE_LIMITED ? ST_RATE_LIMITED
					: ST_QUOTA_EXCEEDED;
}

static void put_header(struct buf *h, const char *name, const char *value)
{
	if (value && *value)
		buf_printf(h, "%s: %s\r\n", name, value);
}

/*
 * Decides the status and headers. They are held, with the first body
 * bytes (see send_body), until the first write: a source that fails before
 * then can still be answered with an error instead (take_back).
 */
static void send_headers(struct response *r, int code, const char *reason, struct buf *extra)
{
	buf_reset(&r->head);
	buf_printf(&r->head, "Status: %d %s\r\n", code, reason);
	if (extra)
		buf_append(&r->head, extra->data, extra->len);
	buf_puts(&r->head, "\r\n");
	r->head_sent = true;
	r->code = code;
}

/* Writes the held status and headers: from here on the response is the client's. */
static void commit(struct response *r)
{
	if (r->committed || !r->head_sent)
		return;
	if (FCGX_PutStr(r->head.data, (int)r->head.len, r->out) < 0)
		r->client_gone = true;
	r->committed = true;
	buf_free(&r->head);
}

/*
 * Ends a response that failed after its first bytes were written. The
 * connection to the web server is shut down before libfcgi can send
 * FastCGI's END_REQUEST, so the web server sees the response break off and
 * closes the client's connection at once: the client gets fewer bytes than
 * Content-Length and an error. (A response simply ended short would leave
 * the client waiting for the rest until the web server's idle timeout.)
 * libfcgi's own finish then fails to write and closes the connection.
 */
static void abort_response(struct response *r)
{
	if (r->rq && r->rq->ipcFd >= 0)
		shutdown(r->rq->ipcFd, SHUT_WR);
}

/* Forgets a response nothing of which has been written yet. */
static void take_back(struct response *r)
{
	buf_reset(&r->head);
	buf_reset(&r->stage);
	r->head_sent = false;
	r->code = 0;
}

/*
 * Writes body bytes as FastCGI STDOUT records straight to the connection:
 * libfcgi's stream copies everything through an 8 KiB buffer and a write
 * per 8 KiB, which for a megabyte original is hundreds of copies and
 * system calls. Its buffer is flushed first, so the records stay in order;
 * libfcgi still writes the closing records in FCGX_Finish_r.
 */
static bool write_records(struct response *r, const unsigned char *data, size_t len)
{
	if (FCGX_FFlush(r->out) < 0)
		return false;
	while (len > 0) {
		size_t n = len > 65528 ? 65528 : len;
		unsigned char hdr[8] = {FCGI_VERSION_1,
					FCGI_STDOUT,
					(unsigned char)(r->rq->requestId >> 8),
					(unsigned char)r->rq->requestId,
					(unsigned char)(n >> 8),
					(unsigned char)n,
					0,
					0};
		struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)data, n}};
		size_t want = sizeof hdr + n;
		while (want > 0) {
			ssize_t w = writev(r->rq->ipcFd, iov, 2);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return false;
			want -= (size_t)w;
			for (int i = 0; i < 2 && w > 0; i++) {
				size_t k = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;
				iov[i].iov_base = (char *)iov[i].iov_base + k;
				iov[i].iov_len -= k;
				w -= (ssize_t)k;
			}
		}
		data += n;
		len -= n;
		r->bytes += (long long)n;
	}
	return true;
}

/* Body bytes are gathered up to this much, then written as records. */
#define STAGE_MAX (256 * 1024)

static void flush_body(struct response *r)
{
	commit(r);
	if (r->stage.len && !r->client_gone) {
		bool ok = r->rq && r->rq->ipcFd >= 0
			      ? write_records(r, (const unsigned char *)r->stage.data, r->stage.len)
			      : FCGX_PutStr(r->stage.data, (int)r->stage.len, r->out) >= 0;
		if (!ok)
			r->client_gone = true;
		else if (!(r->rq && r->rq->ipcFd >= 0))
			r->bytes += (long long)r->stage.len;
	}
	buf_reset(&r->stage);
}

/*
 * Queues body bytes. libcurl hands over an original 16 KiB at a time;
 * gathering them here turns a 3 MB original into a dozen writes.
 */
static void send_body(struct response *r, const void *data, size_t len)
{
	if (r->head_only || r->client_gone)
		return;
	if (len >= STAGE_MAX && r->rq && r->rq->ipcFd >= 0) {
		/* Already large (an encoded image): no need to copy it again. */
		flush_body(r);
		if (!r->client_gone && !write_records(r, data, len))
			r->client_gone = true;
		return;
	}
	buf_append(&r->stage, data, len);
	if (r->stage.len >= STAGE_MAX)
		flush_body(r);
}

static void send_error(struct response *r, enum status st, const char *message,
		       long long retry_after)
{
	struct buf body = BUF_INIT, h = BUF_INIT;
	buf_puts(&body, "{\"message\":");
	json_append_string(&body, message ? message : status_message(st));
	buf_puts(&body, "}\n");
	put_header(&h, "Content-Type", "application/json");
	buf_printf(&h, "Content-Length: %zu\r\n", body.len);
	put_header(&h, "Cache-Control", "no-store");
	if (st == ST_BAD_METHOD)
		put_header(&h, "Allow", "GET, HEAD");
	if (retry_after > 0)
		buf_printf(&h, "Retry-After: %lld\r\n", retry_after);
	send_headers(r, status_http(st), status_reason(st), &h);
	send_body(r, body.data, body.len);
	buf_free(&body);
	buf_free(&h);
}

/* The validators and caching headers shared by 200 and 304 answers. */
static void put_cache_headers(struct buf *h, const struct app *app, const struct image_meta *m)
{
	put_header(h, "ETag", m->etag);
	put_header(h, "Last-Modified", m->last_modified);
	put_header(h, "Cache-Control", app->cfg->server.cache_control);
	if (m->vary_accept)
		put_header(h, "Vary", "Accept");
	put_header(h, "X-Cache", m->cache);
}

/*
 * true when the client's copy is current: If-None-Match against the ETag,
 * else If-Modified-Since against Last-Modified (RFC 9110 §13.2.2).
 */
static bool client_has(const struct response *r, const char *etag, const char *last_modified)
{
	return r->if_none_match ? http_etag_matches(r->if_none_match, etag)
				: http_not_modified_since(r->if_modified_since, last_modified);
}

/* Answers 304 when the client's copy is current. */
static bool answer_not_modified(const struct app *app, struct response *r,
				const struct image_meta *m)
{
	if (!client_has(r, m->etag, m->last_modified))
		return false;
	struct buf h = BUF_INIT;
	put_cache_headers(&h, app, m);
	send_headers(r, 304, "Not Modified", &h);
	buf_free(&h);
	return true;
}

/*
 * The Content-Type an object is served with: S3's, when it names a raster
 * image. Anything else a browser could run as a page from this origin —
 * text/html, SVG, XML, script, or no type — goes out as
 * application/octet-stream: the bucket may hold files uploaded by others.
 */
static const char *served_type(const char *type)
{
	if (!type || strncasecmp(type, "image/", 6) != 0)
		return "application/octet-stream";
	for (const char *p = type; *p; p++)
		if (strncasecmp(p, "svg", 3) == 0 || strncasecmp(p, "xml", 3) == 0)
			return "application/octet-stream";
	return type;
}

static void send_image(const struct app *app, struct response *r, const struct image_meta *m,
		       const void *body, size_t len)
{
	struct buf h = BUF_INIT;
	put_header(&h, "Content-Type", served_type(m->type));
	put_header(&h, "X-Content-Type-Options", "nosniff");
	if (m->length >= 0)
		buf_printf(&h, "Content-Length: %lld\r\n", m->length);
	put_cache_headers(&h, app, m);
	send_headers(r, 200, "OK", &h);
	if (body)
		send_body(r, body, len);
	buf_free(&h);
}

static int stop(struct fetch *f, enum status st)
{
	f->sink.stop = st;
	return -1;
}

/* Switches to pass-through: headers from S3, then what was held back. */
static void start_pass(struct fetch *f)
{
	struct image_meta m = {f->obj.content_type,
			       f->obj.content_length,
			       f->obj.etag,
			       f->obj.last_modified,
			       NULL,
			       false};
	f->mode = MODE_PASS;
	if (f->judge_here && answer_not_modified(f->app, f->resp, &m)) {
		/* 304: no body; the transfer from S3 stops at the next piece. */
		f->resp->head_only = true;
	} else {
		send_image(f->app, f->resp, &m, f->data.data, f->data.len);
	}
	buf_free(&f->data);
}

/* The variant string: what beyond source and parameters shapes output. */
static void variant(const struct app *app, char *out, size_t len)
{
	snprintf(out, len, "v" PIPELINE_VERSION "-q%lld", app->cfg->server.quality);
}

/* Checks the header of a source that is to be decoded. */
static enum status check_source(struct fetch *f)
{
	const struct cfg_server *srv = &f->app->cfg->server;
	return probe_admit(f->probed, &f->info, srv->formats, srv->max_source_pixels,
			   f->obj.content_length, srv->max_source_bytes, &f->detail);
}

/* The ETag of an original downscaled to max_width: that of ?w=max_width. */
static void clamp_etag(const struct app *app, const char *source_etag, char out[HTTP_ETAG_LEN])
{
	char canon[32], var[32];
	snprintf(canon, sizeof canon, "w-%lld", app->cfg->server.max_width);
	variant(app, var, sizeof var);
	http_derived_etag(source_etag, canon, var, out);
}

/*
 * Decides, once the header is read (or the object has ended), what to do
 * with an original: pass it through, or collect it to downscale.
 */
static enum status choose_mode(struct fetch *f, bool complete)
{
	const struct cfg_server *srv = &f->app->cfg->server;

	f->probed = probe_image((const unsigned char *)f->data.data, f->data.len, &f->info);
	if (f->probed == PROBE_NEED_MORE && !complete && f->data.len < SNIFF_MAX)
		return ST_OK; /* keep reading */
	if (f->collect_only) {
		f->mode = MODE_CLAMP;
		return check_source(f);
	}
	if (srv->max_width == 0 || f->probed != PROBE_OK ||
	    f->info.width <= (unsigned long)srv->max_width) {
		start_pass(f);
		return ST_OK;
	}
	enum status st = check_source(f);
	if (st != ST_OK)
		return st;
	/* A client holding the current downscaled copy needs no bytes. */
	char etag[HTTP_ETAG_LEN];
	clamp_etag(f->app, f->obj.etag, etag);
	if (client_has(f->resp, etag, f->obj.last_modified))
		return ST_NOT_MODIFIED;
	f->mode = MODE_CLAMP;
	if (f->obj.content_length > (long long)f->data.len)
		buf_reserve(&f->data, (size_t)f->obj.content_length - f->data.len);
	return ST_OK;
}

static int fetch_on_head(void *ctx, const struct s3_object *obj)
{
	struct fetch *f = ctx;
	f->obj = *obj;
	/* Refuse what is too large before reading any of it. */
	if (f->collect_only && obj->content_length > f->app->cfg->server.max_source_bytes) {
		f->detail = "source over max_source_bytes (Content-Length)";
		return stop(f, ST_TOO_LARGE);
	}
	/* One allocation for a source that will be collected whole. */
	if (f->collect_only && obj->content_length > 0)
		buf_reserve(&f->data, (size_t)obj->content_length);
	if (!f->collect_only && f->app->cfg->server.max_width == 0)
		start_pass(f);
	return 0;
}

static int fetch_on_data(void *ctx, const void *data, size_t len)
{
	struct fetch *f = ctx;
	enum status st;

	switch (f->mode) {
	case MODE_PASS:
		send_body(f->resp, data, len);
		/* HEAD has all it needs, and a vanished client wants nothing more. */
		if (f->resp->head_only || f->resp->client_gone)
			return stop(f, ST_OK);
		return 0;
	case MODE_SNIFF:
		buf_append(&f->data, data, len);
		st = choose_mode(f, false);
		if (st != ST_OK)
			return stop(f, st);
		if (f->mode == MODE_PASS && (f->resp->head_only || f->resp->client_gone))
			return stop(f, ST_OK);
		return 0;
	case MODE_CLAMP:
		if ((long long)(f->data.len + len) > f->app->cfg->server.max_source_bytes) {
			f->detail = "source over max_source_bytes";
			return stop(f, ST_TOO_LARGE);
		}
		buf_append(&f->data, data, len);
		return 0;
	}
	return 0;
}

/*
 * The connection to S3 broke off in the body: start over, unless bytes
 * have already gone to the web server (then the client's response breaks
 * off too; see abort_response).
 */
static int fetch_on_restart(void *ctx)
{
	struct fetch *f = ctx;
	if (f->resp->committed)
		return -1;
	take_back(f->resp);
	buf_reset(&f->data);
	f->mode = MODE_SNIFF;
	f->probed = PROBE_NEED_MORE;
	f->detail = NULL;
	return 0;
}

/* Describes a failed S3 exchange for the log. */
static void describe_s3(const struct s3_result *res, struct buf *detail)
{
	buf_reset(detail);
	buf_printf(detail, "S3 %ld %s after %d attempt(s)%s%s", res->http_status,
		   res->code[0] ? res->code : "-", res->attempts, res->detail[0] ? ": " : "",
		   res->detail);
	if (strcmp(res->code, "AccessDenied") == 0)
		log_msg("warning",
			"S3 said AccessDenied for an object: reported as 404; "
			"the likely cause is a missing s3:ListBucket permission on the bucket");
}

/*
 * GETs the original at key into f (streamed or collected, by f->mode).
 * inm/ims are forwarded to S3 as conditions; S3's 304 comes back as
 * ST_NOT_MODIFIED with the object's headers in f->obj.
 */
static enum status get_original(struct fetch *f, const char *key, const char *inm, const char *ims,
				struct reqlog *log, struct buf *detail)
{
	struct s3_result res;
	struct s3_op op = {.method = "GET", .key = key, .sink = &f->sink, .deadline = f->deadline};

	f->sink = (struct s3_sink){fetch_on_head, fetch_on_data, fetch_on_restart, f, ST_OK};
	op.if_none_match = inm;
	op.if_modified_since = ims;
	enum status st = s3_request(f->app->s3, &op, &res);
	log->s3_ms += res.ms;
	if (st == ST_NOT_MODIFIED)
		f->obj = res.obj;
	if (st == ST_OK && f->mode == MODE_SNIFF)
		st = choose_mode(f, true); /* the object ended before the probe decided */
	if (st != ST_OK && st != ST_NOT_MODIFIED && !f->detail) {
		describe_s3(&res, detail);
		f->detail = detail->data;
	}
	return st;
}

/* Runs the pipeline on a collected source and answers with the result. */
static enum status transform_and_send(struct fetch *f, const struct params *p,
				      const struct image_meta *m, struct reqlog *log,
				      struct img_output *out)
{
	const char *why = NULL;
	long long t0 = clock_mono_ms();
	int quality = p->q ? p->q : (int)f->app->cfg->server.quality;
	/* The image work, and only it, holds one of the host's image slots. */
	long long wait_until = f->deadline ? f->deadline : t0 + f->app->cfg->s3.timeout_ms;
	int slot = slots_acquire(f->app->slots, wait_until);
	if (slot < 0) {
		log->img_ms = (long)(clock_mono_ms() - t0);
		f->detail = "no image slot came free before the deadline (timeout_ms): host busy";
		return ST_UNAVAILABLE;
	}
	long long t1 = clock_mono_ms(); /* img_ms is the work, not the wait */
	enum status st = img_transform(f->data.data, f->data.len, &f->info, p, quality, out, &why);
	slots_release(f->app->slots, slot);

	log->img_ms = (long)(clock_mono_ms() - t1);
	if (st != ST_OK) {
		f->detail = why;
		return st;
	}
	struct image_meta om = *m;
	om.type = probe_mime(out->format);
	om.length = (long long)out->len;
	send_image(f->app, f->resp, &om, out->data, out->len);
	return ST_OK;
}

/* An original, streamed, or downscaled when wider than max_width. */
static enum status serve_original(const struct app *app, struct response *resp, const char *key,
				  struct reqlog *log, struct buf *detail)
{
	struct fetch f = {.app = app, .resp = resp, .mode = MODE_SNIFF, .probed = PROBE_NEED_MORE};
	char etag[HTTP_ETAG_LEN];
	/*
	 * One strong tag, the form browsers send back, S3 judges exactly as we
	 * would: forward it, so a 304 costs no body. Anything else (a list,
	 * weak tags, "*", If-Modified-Since alone) is judged here once S3's
	 * headers arrive, then the transfer stops.
	 */
	const char *forward =
	    http_single_strong_etag(resp->if_none_match) ? resp->if_none_match : NULL;
	f.judge_here = !forward && (resp->if_none_match || resp->if_modified_since);
	enum status st = get_original(&f, key, forward, NULL, log, detail);

	if (st == ST_NOT_MODIFIED && f.mode == MODE_SNIFF && f.probed == PROBE_OK) {
		/* Judged here against the downscaled copy's ETag (choose_mode). */
		clamp_etag(app, f.obj.etag, etag);
		struct image_meta m = {.etag = etag, .last_modified = f.obj.last_modified};
		answer_not_modified(app, resp, &m);
		st = ST_OK;
	} else if (st == ST_NOT_MODIFIED) {
		/* S3 matched its own ETag: the client holds the unchanged original. */
		struct image_meta m = {.etag = f.obj.etag, .last_modified = f.obj.last_modified};
		struct buf h = BUF_INIT;
		put_cache_headers(&h, app, &m);
		send_headers(resp, 304, "Not Modified", &h);
		buf_free(&h);
		st = ST_OK;
	} else if (st == ST_OK && f.mode == MODE_CLAMP) {
		struct params p = {.w = (unsigned long)app->cfg->server.max_width, .any = true};
		struct img_output out;
		clamp_etag(app, f.obj.etag, etag);
		struct image_meta m = {NULL, -1, etag, f.obj.last_modified, NULL, false};
		st = transform_and_send(&f, &p, &m, log, &out);
		img_output_free(&out);
	}
	if (f.detail && st != ST_OK && !detail->len)
		buf_puts(detail, f.detail);
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
 * headers of its original at key (a HEAD): both answers arrive in about
 * one round trip. A derivative is usable when this pipeline and variant
 * made it; the HEAD's ETag then says whether its source is the original
 * as it is now. Once the derivative is known missing or unreadable the
 * HEAD is stopped: the original must be read whole anyway, and a HEAD
 * that hangs or fails must not hold up or fail that read. *dobj holds the
 * derivative's headers, *src the original's when the HEAD answered.
 */
static enum cache_found cache_lookup(const struct app *app, const char *dkey, const char *key,
				     const char *var, long long deadline, struct collected *c,
				     struct s3_object *dobj, struct s3_object *src,
				     struct reqlog *log)
{
	struct s3_sink sink = {collect_head, collect_data, collect_restart, c, ST_S3_ERROR};
	struct s3_op ops[2] = {
	    {.method = "GET", .key = dkey, .sink = &sink, .deadline = deadline, .lead = true},
	    {.method = "HEAD", .key = key, .deadline = deadline},
	};
	struct s3_result res[2];
	char bare[160];

	s3_request_all(app->s3, ops, res, 2);
	/* The two ran side by side: S3 was waited on for the longer one. */
	log->s3_ms += res[0].ms > res[1].ms ? res[0].ms : res[1].ms;
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

/* A derivative: from the cache when fresh, else computed and kept. */
static enum status serve_derivative(const struct app *app, struct response *resp, const char *key,
				    const char *rel, struct params *p,
				    const struct params_limits *lim, const char *accept,
				    struct reqlog *log, struct buf *detail, struct deferred *later)
{
	struct buf canon = BUF_INIT, dkey = BUF_INIT;
	struct collected cached = {BUF_INIT, app->cfg->server.max_source_bytes};
	/*
	 * The cache read and the original share one deadline: an S3 that does
	 * not answer costs the client timeout_ms, not twice that.
	 */
	struct fetch f = {.app = app,
			  .resp = resp,
			  .mode = MODE_SNIFF,
			  .collect_only = true,
			  .probed = PROBE_NEED_MORE,
			  .deadline = clock_mono_ms() + app->cfg->s3.timeout_ms};
	struct s3_object dobj, src;
	enum cache_found found = CACHE_MISS;
	bool holds_source = false; /* a place in app->sources */
	struct image_meta m = {.vary_accept = p->fm == FM_AUTO};
	char etag[HTTP_ETAG_LEN], var[32], inm[HTTP_ETAG_LEN];
	enum status st;

	if (p->fm == FM_AUTO && params_accepts_webp(accept))
		p->fm = FM_WEBP;
	params_canonical(p, lim, &canon);
	variant(app, var, sizeof var);
	buf_printf(&dkey, "%s%s/%s", app->cfg->s3.resized_prefix, canon.data, rel);
	log->cache = "miss";

	/*
	 * A revalidation names, in its ETag, the source its copy was made
	 * from: one bodyless conditional GET of the original settles it.
	 */
	if (http_derived_source(resp->if_none_match, canon.data, var, inm, sizeof inm)) {
		st = get_original(&f, key, inm, NULL, log, detail);
		if (st == ST_NOT_MODIFIED) {
			http_derived_etag(inm, canon.data, var, etag);
			struct image_meta rm = {.etag = etag,
						.last_modified = f.obj.last_modified,
						.vary_accept = m.vary_accept};
			answer_not_modified(app, resp, &rm);
			log->cache = "revalidated";
			st = ST_OK;
			goto out;
		}
		if (st != ST_OK)
			goto out;
		goto fresh; /* the original changed, and here it is */
	}
	if (app->cfg->server.derivative_cache)
		found =
		    cache_lookup(app, dkey.data, key, var, f.deadline, &cached, &dobj, &src, log);
	if (found != CACHE_MISS)
		snprintf(inm, sizeof inm, "\"%s\"", dobj.source_etag);
	if (found != CACHE_FRESH) {
		/*
		 * A miss: the original, whole. A derivative the HEAD could not
		 * vouch for: a conditional GET, which S3 answers 304 when the
		 * original is still the derivative's source, else with the new one.
		 * Either may bring a whole original to work on: it waits for a
		 * place among the process's sources first.
		 */
		holds_source = gate_enter(app->sources, f.deadline);
		if (!holds_source) {
			f.detail = "no place for another original before the deadline "
				   "(timeout_ms): host busy";
			st = ST_UNAVAILABLE;
			goto out;
		}
		st = get_original(&f, key, found == CACHE_UNCONFIRMED ? inm : NULL, NULL, log,
				  detail);
		if (st == ST_NOT_MODIFIED && found == CACHE_UNCONFIRMED) {
			found = CACHE_FRESH;
			src = f.obj;
		} else if (st != ST_OK) {
			goto out;
		}
	}
	if (found == CACHE_FRESH) {
		/* The original is the one the derivative was made from. */
		http_derived_etag(inm, canon.data, var, etag);
		m.type = dobj.content_type;
		m.length = (long long)cached.data.len;
		m.etag = etag;
		/* S3 sends Last-Modified with a HEAD or 304; not every S3-compatible store does. */
		m.last_modified =
		    *src.last_modified ? src.last_modified : dobj.source_last_modified;
		m.cache = log->cache = "hit";
		if (!answer_not_modified(app, resp, &m))
			send_image(app, resp, &m, cached.data.data, cached.data.len);
		st = ST_OK;
		goto out;
	}
fresh:
	http_derived_etag(f.obj.etag, canon.data, var, etag);
	m.etag = etag;
	m.last_modified = f.obj.last_modified;
	m.cache = "miss";
	if (answer_not_modified(app, resp, &m))
		goto out;
	st = transform_and_send(&f, p, &m, log, &later->out);
	if (st == ST_OK && app->cfg->server.derivative_cache && dkey.len <= PATH_MAX_KEY) {
		char bare[160];
		http_unquote_etag(f.obj.etag, bare, sizeof bare);
		buf_puts(&later->source_etag, bare);
		snprintf(later->variant, sizeof later->variant, "%s", var);
		snprintf(later->source_last_modified, sizeof later->source_last_modified, "%s",
			 f.obj.last_modified);
		buf_append(&later->key, dkey.data, dkey.len);
		later->pending = true;
	}
out:
	if (holds_source)
		gate_leave(app->sources);
	if (f.detail && st != ST_OK && !detail->len)
		buf_puts(detail, f.detail);
	buf_free(&f.data);
	buf_free(&cached.data);
	buf_free(&canon);
	buf_free(&dkey);
	return st;
}

/* Prometheus metrics of the whole host, for the holder of the metrics key. */
static enum status serve_metrics(const struct app *app, struct response *resp,
				 const char *presented, const char *authorization, const char **why)
{
	const struct auth_key *who;

	/* Scrapers that can only send a bearer token (Prometheus) may. */
	if ((!presented || !*presented) && authorization &&
	    strncasecmp(authorization, "Bearer ", 7) == 0)
		presented = authorization + 7;

	if (!app->cfg->metrics_keys.n || !app->state) {
		*why = "Metrics are not enabled (see [metrics] in the configuration)";
		return ST_NOT_FOUND;
	}
	if (auth_check(&app->cfg->metrics_keys, presented, &who) != AUTH_OK)
		return ST_FORBIDDEN;
	struct buf body = BUF_INIT, h = BUF_INIT;
	state_metrics(app->state, &body);
	put_header(&h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	buf_printf(&h, "Content-Length: %zu\r\n", body.len);
	put_header(&h, "Cache-Control", "no-store");
	send_headers(resp, 200, "OK", &h);
	send_body(resp, body.data, body.len);
	buf_free(&body);
	buf_free(&h);
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
				  FCGX_Request *rq, const char **why)
{
	bool several;
	const char *presented = api_key(rq, &several);
	if (strcmp(path, PATH_RESERVED "metrics") == 0)
		return several ? ST_FORBIDDEN
			       : serve_metrics(app, resp, presented,
					       FCGX_GetParam("HTTP_AUTHORIZATION", rq->envp), why);
	if (strcmp(path, PATH_RESERVED "health") == 0) {
		static const char body[] = "{\"status\":\"ok\"}\n";
		struct buf h = BUF_INIT;
		put_header(&h, "Content-Type", "application/json");
		buf_printf(&h, "Content-Length: %zu\r\n", sizeof body - 1);
		put_header(&h, "Cache-Control", "no-store");
		send_headers(resp, 200, "OK", &h);
		send_body(resp, body, sizeof body - 1);
		buf_free(&h);
		return ST_OK;
	}
	*why = "No such service path";
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
	struct response resp = {.out = rq->out, .rq = rq};
	struct reqlog log = {.method = method, .path = path, .s3_ms = -1, .img_ms = -1};
	struct buf key = BUF_INIT, detail = BUF_INIT;
	struct params_limits lim = {(unsigned long)app->cfg->server.max_output_dimension,
				    (int)app->cfg->server.quality};
	struct params params;
	const struct auth_key *who = NULL;
	const char *why = NULL;
	char perr[160];
	enum status st;
	long long retry_after = 0;

	memset(later, 0, sizeof *later);
	if (!method || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)) {
		st = ST_BAD_METHOD;
		goto done;
	}
	resp.head_only = strcmp(method, "HEAD") == 0;
	resp.if_none_match = header(rq, "HTTP_IF_NONE_MATCH");
	resp.if_modified_since = header(rq, "HTTP_IF_MODIFIED_SINCE");
	if (path && strncmp(path, PATH_RESERVED, strlen(PATH_RESERVED)) == 0) {
		st = serve_reserved(app, &resp, path, rq, &why);
		goto done;
	}
	if (has_encoded_nul(uri)) {
		st = ST_BAD_REQUEST;
		why = "Path contains a control character";
		goto done;
	}
	st = path_to_key(path, app->cfg->s3.originals_prefix, &key, &why);
	if (st != ST_OK)
		goto done;
	if (!params_parse(query, &lim, &params, perr, sizeof perr)) {
		st = ST_BAD_REQUEST;
		why = perr;
		goto done;
	}
	if (several_keys) {
		log.detail = "more than one X-API-Key header";
		st = ST_FORBIDDEN;
		goto done;
	}
	switch (auth_check(&app->cfg->keys, presented, &who)) {
	case AUTH_OK:
		break;
	case AUTH_MISSING:
		log.detail = "no API key";
		st = ST_FORBIDDEN;
		goto done;
	case AUTH_UNKNOWN:
		log.detail = "unknown API key";
		st = ST_FORBIDDEN;
		goto done;
	case AUTH_DISABLED:
		log.key_name = who->name;
		log.detail = "disabled API key";
		st = ST_FORBIDDEN;
		goto done;
	}
	log.key_name = who->name;
	if (who->plan >= 0) {
		st = admit(app, who, &retry_after);
		if (st != ST_OK)
			goto done;
	}
	log.s3_ms = 0;
	if (params_is_identity(&params, &lim))
		st = serve_original(app, &resp, key.data, &log, &detail);
	else
		st = serve_derivative(app, &resp, key.data, path + 1, &params, &lim,
				      FCGX_GetParam("HTTP_ACCEPT", rq->envp), &log, &detail, later);
	if (detail.len)
		log.detail = detail.data;
done:
	if (st == ST_NOT_MODIFIED && !resp.head_sent)
		st = ST_INTERNAL; /* every 304 is sent where it is decided */
	/* Nothing written yet (an original under STAGE_MAX): the error status still can be. */
	if (st != ST_OK && resp.head_sent && !resp.committed)
		take_back(&resp);
	if (st != ST_OK && !resp.head_sent)
		send_error(&resp, st, why, retry_after);
	if (!log.detail && why)
		log.detail = why;
	bool aborted = st != ST_OK && resp.code == 200;
	if (aborted) {
		/* Too late for an error status: the client sees a short body. */
		struct buf late = BUF_INIT;
		buf_printf(&late, "failed after the response started (%d): %s", status_http(st),
			   log.detail ? log.detail : status_message(st));
		buf_free(&detail);
		detail = late;
		log.detail = detail.data;
	}
	if (later->pending && (resp.code != 200 || st != ST_OK))
		handle_deferred_free(later);
	flush_body(&resp);
	if (aborted)
		abort_response(&resp);
	buf_free(&resp.stage);
	buf_free(&resp.head);
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
	buf_free(&detail);
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
