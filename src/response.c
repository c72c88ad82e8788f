/*
 * response.c - writing a response to the web server over FastCGI.
 *
 * Every response goes through resp_status, which takes its code and reason
 * from the status table (status.c). The status and headers are held, with
 * the first body bytes, until the first write: a source that fails before
 * then can still be answered with an error instead (resp_take_back). Body
 * bytes are gathered and written as FastCGI records straight to the
 * connection (write_records).
 */
#include "response.h"

#include <errno.h>
#include <fastcgi.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "json.h"

void resp_header(struct buf *h, const char *name, const char *value)
{
	if (value && *value)
		buf_printf(h, "%s: %s\r\n", name, value);
}

void resp_status(struct response *r, enum status st, const struct buf *headers)
{
	int code = status_http(st);
	buf_reset(&r->head);
	buf_printf(&r->head, "Status: %d %s\r\n", code, status_reason(st));
	if (headers)
		buf_append(&r->head, headers->data, headers->len);
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

void resp_take_back(struct response *r)
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

/* libcurl hands over an original 16 KiB at a time: gathered here, a 3 MB
 * original is a dozen writes. */
void resp_body(struct response *r, const void *data, size_t len)
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

void resp_error(struct response *r, const struct failure *fail)
{
	enum status st = fail->st;
	struct buf body = BUF_INIT, h = BUF_INIT;
	buf_puts(&body, "{\"message\":");
	json_append_string(&body, fail->message ? fail->message : status_message(st));
	buf_puts(&body, "}\n");
	resp_header(&h, "Content-Type", "application/json");
	buf_printf(&h, "Content-Length: %zu\r\n", body.len);
	resp_header(&h, "Cache-Control", "no-store");
	if (st == ST_BAD_METHOD)
		resp_header(&h, "Allow", "GET, HEAD");
	if (fail->retry_after > 0)
		buf_printf(&h, "Retry-After: %lld\r\n", fail->retry_after);
	resp_status(r, st, &h);
	resp_body(r, body.data, body.len);
	buf_free(&body);
	buf_free(&h);
}

/* The validators and caching headers shared by 200 and 304 answers. */
static void put_cache_headers(struct buf *h, const struct response *r, const struct image_meta *m)
{
	resp_header(h, "ETag", m->etag);
	resp_header(h, "Last-Modified", m->last_modified);
	resp_header(h, "Cache-Control", r->cache_control);
	if (m->vary_accept)
		resp_header(h, "Vary", "Accept");
	resp_header(h, "X-Cache", m->cache);
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

void resp_image(struct response *r, const struct image_meta *m, const void *body, size_t len)
{
	struct buf h = BUF_INIT;
	resp_header(&h, "Content-Type", served_type(m->type));
	resp_header(&h, "X-Content-Type-Options", "nosniff");
	if (m->length >= 0)
		buf_printf(&h, "Content-Length: %lld\r\n", m->length);
	put_cache_headers(&h, r, m);
	resp_status(r, ST_OK, &h);
	if (body)
		resp_body(r, body, len);
	buf_free(&h);
}

void resp_not_modified(struct response *r, const struct image_meta *m)
{
	struct buf h = BUF_INIT;
	put_cache_headers(&h, r, m);
	resp_status(r, ST_NOT_MODIFIED, &h);
	buf_free(&h);
}

void resp_text(struct response *r, const char *type, const void *body, size_t len)
{
	struct buf h = BUF_INIT;
	resp_header(&h, "Content-Type", type);
	buf_printf(&h, "Content-Length: %zu\r\n", len);
	resp_header(&h, "Cache-Control", "no-store");
	resp_status(r, ST_OK, &h);
	resp_body(r, body, len);
	buf_free(&h);
}

void resp_finish(struct response *r, bool broken)
{
	flush_body(r);
	if (broken)
		abort_response(r);
	buf_free(&r->stage);
	buf_free(&r->head);
}
