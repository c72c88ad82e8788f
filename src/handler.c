/*
 * handler.c - the path of a request through imgsvc, top to bottom.
 *
 * handle_request owns the order: method → reserved paths → path → API key →
 * fetch from S3 → (clamp) → respond → log. Modules do not call each other
 * sideways; this file is where they meet.
 *
 * An original is streamed: the first bytes from S3 are held only until the
 * image header says how wide it is. An image no wider than max_width (or
 * anything that is not a recognised image) is passed through unchanged as
 * it arrives, with S3's Content-Length; a wider one is collected (within
 * max_source_bytes and max_source_pixels) and downscaled once complete.
 */
#include "handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "buf.h"
#include "crypto.h"
#include "img.h"
#include "path.h"
#include "probe.h"
#include "reqlog.h"
#include "status.h"

/* How much of an original may be held while looking for its dimensions. */
#define SNIFF_MAX (512 * 1024)

/* The response under construction: headers go out once, then the body. */
struct response {
	FCGX_Stream *out;
	bool head_only; /* HEAD: headers, no body */
	bool head_sent;
	bool client_gone; /* the web server stopped taking our output */
	int code;         /* the status sent */
	long long bytes;
};

enum mode { MODE_SNIFF, MODE_PASS, MODE_CLAMP };

/* The state of one original on its way from S3. */
struct fetch {
	const struct app *app;
	struct response *resp;
	struct s3_object obj;
	enum mode mode;
	struct buf data; /* sniffed bytes, or the whole original to clamp */
	struct probe_info info;
	const char *detail;
	struct s3_sink sink; /* ctx points back at this fetch */
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_header(struct buf *h, const char *name, const char *value)
{
	if (value && *value)
		buf_printf(h, "%s: %s\r\n", name, value);
}

static void send_headers(struct response *r, int code, const char *reason, struct buf *extra)
{
	struct buf h = BUF_INIT;
	buf_printf(&h, "Status: %d %s\r\n", code, reason);
	if (extra)
		buf_append(&h, extra->data, extra->len);
	buf_puts(&h, "\r\n");
	if (FCGX_PutStr(h.data, (int)h.len, r->out) < 0)
		r->client_gone = true;
	r->head_sent = true;
	r->code = code;
	buf_free(&h);
}

static void send_body(struct response *r, const void *data, size_t len)
{
	if (r->head_only || r->client_gone)
		return;
	while (len > 0) {
		int n = len > (1 << 30) ? 1 << 30 : (int)len;
		if (FCGX_PutStr(data, n, r->out) < 0) {
			r->client_gone = true;
			return;
		}
		data = (const char *)data + n;
		len -= (size_t)n;
		r->bytes += n;
	}
}

static void json_escape(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_printf(b, "\\%c", *p);
		else if (*p < 0x20)
			buf_printf(b, "\\u%04x", *p);
		else
			buf_putc(b, (char)*p);
	}
}

static void send_error(struct response *r, enum status st, const char *message)
{
	struct buf body = BUF_INIT, h = BUF_INIT;
	buf_puts(&body, "{\"message\":\"");
	json_escape(&body, message ? message : status_message(st));
	buf_puts(&body, "\"}\n");
	put_header(&h, "Content-Type", "application/json");
	buf_printf(&h, "Content-Length: %zu\r\n", body.len);
	put_header(&h, "Cache-Control", "no-store");
	if (st == ST_BAD_METHOD)
		put_header(&h, "Allow", "GET, HEAD");
	send_headers(r, status_http(st), status_reason(st), &h);
	send_body(r, body.data, body.len);
	buf_free(&body);
	buf_free(&h);
}

/* Headers of an image response: from S3's object, or of a clamped copy. */
static void send_image_headers(struct fetch *f, const char *type, long long length,
			       const char *etag)
{
	struct buf h = BUF_INIT;
	put_header(&h, "Content-Type", *type ? type : "application/octet-stream");
	if (length >= 0)
		buf_printf(&h, "Content-Length: %lld\r\n", length);
	put_header(&h, "ETag", etag);
	put_header(&h, "Last-Modified", f->obj.last_modified);
	put_header(&h, "Cache-Control", f->app->cfg->server.cache_control);
	send_headers(f->resp, 200, "OK", &h);
	buf_free(&h);
}

/* Switches to pass-through: headers from S3, then what was held back. */
static void start_pass(struct fetch *f)
{
	f->mode = MODE_PASS;
	send_image_headers(f, f->obj.content_type, f->obj.content_length, f->obj.etag);
	send_body(f->resp, f->data.data, f->data.len);
	buf_free(&f->data);
}

/* Decides, once the header is read, whether this original needs the clamp. */
static enum status choose_mode(struct fetch *f, bool complete)
{
	const struct cfg_server *srv = &f->app->cfg->server;
	enum probe_result pr =
	    probe_image((const unsigned char *)f->data.data, f->data.len, &f->info);

	if (pr == PROBE_NEED_MORE && !complete && f->data.len < SNIFF_MAX)
		return ST_OK; /* keep reading */
	if (pr != PROBE_OK || f->info.width <= (unsigned long)srv->max_width) {
		start_pass(f);
		return ST_OK;
	}
	if ((long long)f->info.width * (long long)f->info.height > srv->max_source_pixels) {
		f->detail = "source over max_source_pixels";
		return ST_TOO_LARGE;
	}
	if (f->obj.content_length > srv->max_source_bytes) {
		f->detail = "source over max_source_bytes";
		return ST_TOO_LARGE;
	}
	f->mode = MODE_CLAMP;
	return ST_OK;
}

static int fetch_on_head(void *ctx, const struct s3_object *obj)
{
	struct fetch *f = ctx;
	f->obj = *obj;
	if (f->app->cfg->server.max_width == 0)
		start_pass(f);
	return 0;
}

/* Stops the S3 transfer with st as the request's outcome. */
static int stop(struct fetch *f, enum status st)
{
	f->sink.stop = st;
	return -1;
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

/* A derived ETag for a clamped original: it is not S3's bytes any more. */
static void clamp_etag(const char *etag, long long max_width, char out[40])
{
	struct buf b = BUF_INIT;
	unsigned char d[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	buf_printf(&b, "%s|max_width=%lld", etag, max_width);
	crypto_sha256(b.data, b.len, d);
	crypto_hex(d, SHA256_LEN, hex);
	snprintf(out, 40, "\"%.32s\"", hex);
	buf_free(&b);
}

static enum status finish_clamp(struct fetch *f, long *img_ms)
{
	struct img_output out;
	const char *why = NULL;
	long long t0 = now_ms();
	enum status st = img_clamp_width(f->data.data, f->data.len, &f->info,
					 (unsigned long)f->app->cfg->server.max_width, &out, &why);
	*img_ms = (long)(now_ms() - t0);
	if (st != ST_OK) {
		f->detail = why;
		return st;
	}
	char etag[40];
	clamp_etag(f->obj.etag, f->app->cfg->server.max_width, etag);
	send_image_headers(f, probe_mime(out.format), (long long)out.len, etag);
	send_body(f->resp, out.data, out.len);
	img_output_free(&out);
	return ST_OK;
}

/* Fetches the original at key and answers with it (or its clamped copy). */
static enum status serve_original(const struct app *app, struct response *resp, const char *key,
				  struct reqlog *log, struct buf *detail)
{
	struct fetch f = {.app = app, .resp = resp, .mode = MODE_SNIFF};
	struct s3_result res;
	enum status st;

	f.sink = (struct s3_sink){fetch_on_head, fetch_on_data, &f, ST_OK};
	st = s3_get(app->s3, key, &f.sink, &res);
	log->s3_ms = res.ms;
	if (st == ST_OK && f.mode == MODE_SNIFF)
		st = choose_mode(&f, true); /* the object ended before the probe decided */
	if (st == ST_OK && f.mode == MODE_CLAMP)
		st = finish_clamp(&f, &log->img_ms);
	if (st != ST_OK && !f.detail) {
		buf_printf(detail, "S3 %ld %s after %d attempt(s)%s%s", res.http_status,
			   res.code[0] ? res.code : "-", res.attempts, res.detail[0] ? ": " : "",
			   res.detail);
		f.detail = detail->data;
	}
	if (st == ST_NOT_FOUND && strcmp(res.code, "AccessDenied") == 0)
		log_msg("warning",
			"S3 said AccessDenied for an object: reported as 404; "
			"the likely cause is a missing s3:ListBucket permission on the bucket");
	log->detail = f.detail;
	buf_free(&f.data);
	return st;
}

static enum status serve_reserved(struct response *resp, const char *path, const char **why)
{
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

/* Defence in depth: an encoded NUL cannot survive into a C string intact. */
static bool has_encoded_nul(const char *uri)
{
	for (const char *p = uri; p && (p = strchr(p, '%')); p++)
		if (p[1] == '0' && p[2] == '0')
			return true;
	return false;
}

void handle_request(const struct app *app, FCGX_Request *rq)
{
	long long t0 = now_ms();
	const char *method = FCGX_GetParam("REQUEST_METHOD", rq->envp);
	const char *path = FCGX_GetParam("PATH_INFO", rq->envp);
	const char *uri = FCGX_GetParam("REQUEST_URI", rq->envp);
	const char *presented = FCGX_GetParam("HTTP_X_API_KEY", rq->envp);
	struct response resp = {.out = rq->out};
	struct reqlog log = {.method = method, .path = path, .s3_ms = -1, .img_ms = -1};
	struct buf key = BUF_INIT, detail = BUF_INIT;
	const struct auth_key *who = NULL;
	const char *why = NULL;
	enum status st;

	if (!method || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)) {
		st = ST_BAD_METHOD;
		goto done;
	}
	resp.head_only = strcmp(method, "HEAD") == 0;
	if (path && strncmp(path, PATH_RESERVED, strlen(PATH_RESERVED)) == 0) {
		st = serve_reserved(&resp, path, &why);
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
	st = serve_original(app, &resp, key.data, &log, &detail);
done:
	if (st != ST_OK && !resp.head_sent)
		send_error(&resp, st, why);
	if (!log.detail && why)
		log.detail = why;
	if (st != ST_OK && resp.code == 200) {
		/* Too late for an error status: the client sees a short body. */
		struct buf late = BUF_INIT;
		buf_printf(&late, "failed after the response started (%d): %s", status_http(st),
			   log.detail ? log.detail : status_message(st));
		buf_free(&detail);
		detail = late;
		log.detail = detail.data;
	}
	log.status = resp.code;
	log.bytes = resp.bytes;
	log.total_ms = (long)(now_ms() - t0);
	reqlog_write(&log);
	buf_free(&key);
	buf_free(&detail);
}
