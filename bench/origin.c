/*
 * origin.c - the S3 stand-in of bench/run: a small HTTP/1.1 object store,
 * path-style, that answers every request after a fixed first-byte delay,
 * as a real S3 does, while spending almost no CPU of its own.
 *
 * At start-up every file under DIR is read into memory; its key is its
 * path below DIR ("BUCKET/original-images/photo.jpg" answers
 * /BUCKET/original-images/photo.jpg). Then, one thread, one epoll loop,
 * keep-alive connections, many at once:
 *
 *   GET      200 with ETag, Last-Modified, Content-Length, Content-Type and
 *            the object's x-amz-meta-* headers; 304 for If-None-Match
 *            (one of the ETags, or *) or If-Modified-Since; 404 NoSuchKey
 *   HEAD     the same, without the body
 *   PUT      stores the body and its Content-Type and x-amz-meta-* headers
 *            in memory (later GETs and HEADs serve them back); 412 for
 *            If-None-Match: * on an existing key
 *
 * SigV4 headers and the query string are ignored. Each PUT is logged on
 * stderr ("origin: PUT /KEY N bytes"), nothing else per request. A request is answered
 * DELAY_MS after it has been read in full (PUT: after its body): the
 * answer is prepared at once, then waits in a queue. The delay is the same
 * for every request, so the queue is in due order and one epoll timeout
 * serves it all (epoll's millisecond timeout, rounded up: the wait is
 * DELAY_MS to DELAY_MS + 1). Bodies are written from memory with writev, never copied.
 *
 * Build: cc -O2 -o origin origin.c
 * Usage: origin PORT DIR DELAY_MS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX (64 * 1024)         /* request line and headers */
#define BODY_MAX (100 * 1024 * 1024) /* a PUT's body */
#define BUCKETS 4096

/* One object: its bytes and what S3 says about them. */
struct object {
	char *key;
	unsigned char *body;
	size_t len;
	char etag[24]; /* quoted */
	char last_modified[32];
	time_t mtime;
	char content_type[128];
	char *meta; /* "x-amz-meta-NAME: VALUE\r\n" lines, or "" */
	int refs;   /* the table's and each response's in flight */
	struct object *next;
};

enum conn_state { READING, WAITING, WRITING };

/* One client connection, with at most one request in hand. */
struct conn {
	int fd;
	enum conn_state state;
	char *in; /* bytes read, not yet consumed */
	size_t in_len, in_cap;
	size_t request_len; /* bytes of in the current request takes */
	char *head;         /* the answer: status line, headers (and a small body) */
	size_t head_len, head_off;
	struct object *obj; /* the body to send after head, or NULL */
	size_t body_off;
	bool close_after;
	long long due_us;
	bool head_only; /* HEAD: no body, not even an error's */
	bool watched;   /* in the epoll set (not while it waits) */
	bool continued; /* 100 Continue sent for the request in hand */
	struct conn *wait_next;
};

static struct object *table[BUCKETS];
static long long delay_ms;
static int epfd;
static struct conn *wait_head, *wait_tail;
static const char *load_root;
static size_t load_root_len;
static unsigned long long served;

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "origin: out of memory\n");
		exit(1);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

/* FNV-1a, 64 bits: the ETag and the table's hash. */
static uint64_t fnv(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static void http_date(time_t t, char *out, size_t size)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static const char *type_of(const char *key)
{
	const char *dot = strrchr(key, '.');
	if (!dot)
		return "binary/octet-stream";
	if (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"))
		return "image/jpeg";
	if (!strcasecmp(dot, ".png"))
		return "image/png";
	if (!strcasecmp(dot, ".webp"))
		return "image/webp";
	if (!strcasecmp(dot, ".gif"))
		return "image/gif";
	return "binary/octet-stream";
}

static void object_unref(struct object *o)
{
	if (o && --o->refs == 0) {
		free(o->key);
		free(o->body);
		free(o->meta);
		free(o);
	}
}

static struct object *lookup(const char *key)
{
	for (struct object *o = table[fnv(key, strlen(key)) % BUCKETS]; o; o = o->next)
		if (strcmp(o->key, key) == 0)
			return o;
	return NULL;
}

/* Takes ownership of body and meta; replaces an object of the same key. */
static void store(const char *key, unsigned char *body, size_t len, time_t mtime,
		  const char *content_type, char *meta)
{
	struct object *o = xmalloc(sizeof *o), **pp;
	o->key = xstrdup(key);
	o->body = body;
	o->len = len;
	snprintf(o->etag, sizeof o->etag, "\"%016llx\"", (unsigned long long)fnv(body, len));
	o->mtime = mtime;
	http_date(mtime, o->last_modified, sizeof o->last_modified);
	snprintf(o->content_type, sizeof o->content_type, "%s", content_type);
	o->meta = meta;
	o->refs = 1;
	pp = &table[fnv(key, strlen(key)) % BUCKETS];
	for (; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->key, key) == 0) {
			struct object *old = *pp;
			o->next = old->next;
			*pp = o;
			object_unref(old);
			return;
		}
	}
	o->next = NULL;
	*pp = o;
}

static int load_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type != FTW_F)
		return 0;
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return 1;
	}
	unsigned char *body = xmalloc((size_t)st->st_size);
	size_t n = fread(body, 1, (size_t)st->st_size, f);
	fclose(f);
	if (n != (size_t)st->st_size) {
		fprintf(stderr, "origin: short read of %s\n", path);
		free(body);
		return 1;
	}
	const char *key = path + load_root_len;
	while (*key == '/')
		key++;
	store(key, body, n, st->st_mtime, type_of(key), xstrdup(""));
	return 0;
}

/* --- requests ------------------------------------------------------------ */

/* What the parser found in one request's head. */
struct request {
	char method[16];
	char key[2048];
	bool http10;
	const char *if_none_match, *if_modified_since, *content_type;
	size_t if_none_match_len, if_modified_since_len, content_type_len;
	long long content_length;
	bool conn_close, conn_keep_alive, chunked, expect_continue;
	char *meta; /* x-amz-meta-* lines, as they came */
	size_t meta_len;
};

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The target's path, percent-decoded, without its leading "/" and query. */
static bool decode_key(const char *t, size_t len, char *out, size_t size)
{
	size_t o = 0;
	if (len == 0 || t[0] != '/')
		return false;
	for (size_t i = 1; i < len && t[i] != '?'; i++) {
		int c = (unsigned char)t[i];
		if (c == '%' && i + 2 < len && hexval(t[i + 1]) >= 0 && hexval(t[i + 2]) >= 0) {
			c = hexval(t[i + 1]) * 16 + hexval(t[i + 2]);
			i += 2;
		}
		if (o + 1 >= size)
			return false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return true;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value,
		      size_t *vlen)
{
	size_t n = strlen(name);
	if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
		return false;
	const char *v = line + n + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*value = v;
	*vlen = (size_t)(end - v);
	return true;
}

static bool contains(const char *v, size_t len, const char *word)
{
	size_t n = strlen(word);
	for (size_t i = 0; i + n <= len; i++)
		if (strncasecmp(v + i, word, n) == 0)
			return true;
	return false;
}

/* Parses head (up to and without its blank line); false when malformed. */
static bool parse_request(char *head, size_t len, struct request *r)
{
	char *end = head + len, *eol = memmem(head, len, "\r\n", 2);
	char *sp1, *sp2;
	const char *v;
	size_t vlen;

	memset(r, 0, sizeof *r);
	r->content_length = -1;
	if (!eol)
		eol = end;
	sp1 = memchr(head, ' ', (size_t)(eol - head));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp2 || (size_t)(sp1 - head) >= sizeof r->method)
		return false;
	memcpy(r->method, head, (size_t)(sp1 - head));
	if (!decode_key(sp1 + 1, (size_t)(sp2 - sp1 - 1), r->key, sizeof r->key))
		return false;
	r->http10 = eol - sp2 - 1 == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0;
	for (char *line = eol + 2; line < end;) {
		char *next = memmem(line, (size_t)(end - line), "\r\n", 2);
		size_t n = (size_t)((next ? next : end) - line);
		if (header_is(line, n, "content-length", &v, &vlen)) {
			r->content_length = strtoll(v, NULL, 10);
		} else if (header_is(line, n, "if-none-match", &v, &vlen)) {
			r->if_none_match = v;
			r->if_none_match_len = vlen;
		} else if (header_is(line, n, "if-modified-since", &v, &vlen)) {
			r->if_modified_since = v;
			r->if_modified_since_len = vlen;
		} else if (header_is(line, n, "content-type", &v, &vlen)) {
			r->content_type = v;
			r->content_type_len = vlen;
		} else if (header_is(line, n, "connection", &v, &vlen)) {
			r->conn_close = contains(v, vlen, "close");
			r->conn_keep_alive = contains(v, vlen, "keep-alive");
		} else if (header_is(line, n, "expect", &v, &vlen)) {
			r->expect_continue = contains(v, vlen, "100-continue");
		} else if (header_is(line, n, "transfer-encoding", &v, &vlen)) {
			r->chunked = true;
		} else if (n > 11 && strncasecmp(line, "x-amz-meta-", 11) == 0) {
			/* Kept as sent, for a PUT; one line each. */
			r->meta = realloc(r->meta, r->meta_len + n + 3);
			if (!r->meta)
				return false;
			memcpy(r->meta + r->meta_len, line, n);
			memcpy(r->meta + r->meta_len + n, "\r\n", 3);
			r->meta_len += n + 2;
		}
		line = next ? next + 2 : end;
	}
	return true;
}

static bool etag_listed(const char *v, size_t len, const char *etag)
{
	size_t n = strlen(etag);
	if (len == 1 && v[0] == '*')
		return true;
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(v + i, etag, n) == 0)
			return true;
	return false;
}

static bool not_modified_since(const char *v, size_t len, time_t mtime)
{
	char buf[64];
	struct tm tm;
	if (len >= sizeof buf)
		return false;
	memcpy(buf, v, len);
	buf[len] = '\0';
	memset(&tm, 0, sizeof tm);
	char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return end && *end == '\0' && mtime <= timegm(&tm);
}

/* The answer's head, into c->head; a small body (an error's XML) with it. */
static void answer(struct conn *c, int status, const char *reason, const char *headers,
		   const char *xml_code, struct object *obj, bool with_body)
{
	char body[256] = "";
	if (xml_code)
		snprintf(body, sizeof body,
			 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
			 "<Message>%s</Message></Error>",
			 xml_code, reason);
	size_t cap = 512 + strlen(headers) + strlen(body);
	c->head = xmalloc(cap);
	c->head_len = (size_t)snprintf(
	    c->head, cap, "HTTP/1.1 %d %s\r\nServer: bench-origin\r\n%s%s%s", status, reason,
	    headers, c->close_after ? "Connection: close\r\n" : "", xml_code ? "" : "\r\n");
	if (xml_code)
		c->head_len += (size_t)snprintf(
		    c->head + c->head_len, cap - c->head_len,
		    "Content-Type: application/xml\r\nContent-Length: %zu\r\n\r\n%s", strlen(body),
		    c->head_only ? "" : body);
	c->head_off = 0;
	c->body_off = 0;
	c->obj = NULL;
	if (obj && with_body) {
		c->obj = obj;
		obj->refs++;
	}
}

static void respond_object(struct conn *c, struct request *r, struct object *o)
{
	bool get = strcmp(r->method, "GET") == 0;
	char *h;
	size_t cap = 512 + strlen(o->meta);

	/* If-None-Match decides when present; If-Modified-Since only without it. */
	bool unchanged;
	if (r->if_none_match)
		unchanged = etag_listed(r->if_none_match, r->if_none_match_len, o->etag);
	else
		unchanged =
		    r->if_modified_since &&
		    not_modified_since(r->if_modified_since, r->if_modified_since_len, o->mtime);
	h = xmalloc(cap);
	if (unchanged) {
		snprintf(h, cap, "ETag: %s\r\nLast-Modified: %s\r\n", o->etag, o->last_modified);
		answer(c, 304, "Not Modified", h, NULL, NULL, false);
	} else {
		snprintf(h, cap,
			 "Content-Type: %s\r\nContent-Length: %zu\r\nETag: %s\r\n"
			 "Last-Modified: %s\r\nAccept-Ranges: bytes\r\n%s",
			 o->content_type, o->len, o->etag, o->last_modified, o->meta);
		answer(c, 200, "OK", h, NULL, o, get);
	}
	free(h);
}

static void respond_put(struct conn *c, struct request *r, const char *body)
{
	struct object *old = lookup(r->key);
	char type[128] = "binary/octet-stream", h[128];

	if (old && r->if_none_match && r->if_none_match_len == 1 && r->if_none_match[0] == '*') {
		answer(c, 412, "Precondition Failed", "", "PreconditionFailed", NULL, false);
		return;
	}
	if (r->content_type && r->content_type_len < sizeof type) {
		memcpy(type, r->content_type, r->content_type_len);
		type[r->content_type_len] = '\0';
	}
	size_t len = (size_t)r->content_length;
	unsigned char *copy = memcpy(xmalloc(len), body, len);
	char *meta = r->meta ? r->meta : xstrdup("");
	r->meta = NULL;
	store(r->key, copy, len, time(NULL), type, meta);
	fprintf(stderr, "origin: PUT /%s %zu bytes\n", r->key, len);
	snprintf(h, sizeof h, "ETag: %s\r\nContent-Length: 0\r\n", lookup(r->key)->etag);
	answer(c, 200, "OK", h, NULL, NULL, false);
}

/* --- connections --------------------------------------------------------- */

/*
 * Which events of c to hear; 0 takes it out of the epoll set, so that a
 * client that hangs up while its answer waits cannot spin the loop.
 */
static void watch(struct conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};
	if (events == 0) {
		if (c->watched)
			epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		c->watched = false;
		return;
	}
	epoll_ctl(epfd, c->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
	c->watched = true;
}

static void conn_close(struct conn *c)
{
	close(c->fd); /* which also takes it out of the epoll set */
	object_unref(c->obj);
	free(c->head);
	free(c->in);
	free(c);
}

static void try_request(struct conn *c);

/* Sends what is left of the answer; false when the connection is gone. */
static bool send_answer(struct conn *c)
{
	for (;;) {
		struct iovec iov[2];
		int n = 0;
		if (c->head_off < c->head_len)
			iov[n++] = (struct iovec){c->head + c->head_off, c->head_len - c->head_off};
		if (c->obj && c->body_off < c->obj->len)
			iov[n++] =
			    (struct iovec){c->obj->body + c->body_off, c->obj->len - c->body_off};
		if (n == 0)
			break;
		ssize_t w = writev(c->fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			watch(c, EPOLLOUT);
			return true;
		}
		if (w <= 0) {
			conn_close(c);
			return false;
		}
		size_t k = (size_t)w, h = c->head_len - c->head_off;
		if (k >= h) {
			c->head_off = c->head_len;
			c->body_off += k - h;
		} else {
			c->head_off += k;
		}
	}
	served++;
	free(c->head);
	c->head = NULL;
	object_unref(c->obj);
	c->obj = NULL;
	if (c->close_after) {
		conn_close(c);
		return false;
	}
	memmove(c->in, c->in + c->request_len, c->in_len - c->request_len);
	c->in_len -= c->request_len;
	c->request_len = 0;
	c->state = READING;
	watch(c, EPOLLIN);
	try_request(c); /* a pipelined request may be waiting */
	return true;
}

static void start_answer(struct conn *c)
{
	c->state = WRITING;
	send_answer(c);
}

/* Answers the request in c->in when it is complete: now, or after the delay. */
static void try_request(struct conn *c)
{
	char *end = c->in_len ? memmem(c->in, c->in_len, "\r\n\r\n", 4) : NULL;
	struct request r;

	if (!end) {
		if (c->in_len > HEAD_MAX) {
			c->close_after = true;
			answer(c, 431, "Request Header Fields Too Large", "",
			       "RequestHeaderTooLarge", NULL, false);
			c->request_len = c->in_len;
			start_answer(c);
		}
		return;
	}
	size_t head_len = (size_t)(end - c->in);
	c->head_only = c->in_len >= 5 && memcmp(c->in, "HEAD ", 5) == 0;
	if (!parse_request(c->in, head_len, &r)) {
		c->close_after = true;
		answer(c, 400, "Bad Request", "", "BadRequest", NULL, false);
		c->request_len = c->in_len;
		start_answer(c);
		free(r.meta);
		return;
	}
	size_t body_len = r.content_length > 0 ? (size_t)r.content_length : 0;
	if (r.chunked || r.content_length > BODY_MAX) {
		c->close_after = true;
		answer(c, r.chunked ? 501 : 413, r.chunked ? "Not Implemented" : "Too Large", "",
		       r.chunked ? "NotImplemented" : "EntityTooLarge", NULL, false);
		c->request_len = c->in_len;
		start_answer(c);
		free(r.meta);
		return;
	}
	if (c->in_len < head_len + 4 + body_len) {
		/* The body is still coming; a client waiting for 100 Continue gets it. */
		if (r.expect_continue && !c->continued) {
			static const char go[] = "HTTP/1.1 100 Continue\r\n\r\n";
			c->continued = write(c->fd, go, sizeof go - 1) == (ssize_t)(sizeof go - 1);
		}
		free(r.meta);
		return;
	}
	c->continued = false;
	c->request_len = head_len + 4 + body_len;
	c->close_after = r.conn_close || (r.http10 && !r.conn_keep_alive);

	struct object *o = lookup(r.key);
	if (strcmp(r.method, "GET") == 0 || strcmp(r.method, "HEAD") == 0) {
		if (o)
			respond_object(c, &r, o);
		else
			answer(c, 404, "Not Found", "", "NoSuchKey", NULL, false);
	} else if (strcmp(r.method, "PUT") == 0) {
		if (r.content_length < 0)
			answer(c, 411, "Length Required", "", "MissingContentLength", NULL, false);
		else
			respond_put(c, &r, c->in + head_len + 4);
	} else {
		answer(c, 405, "Method Not Allowed", "Allow: GET, HEAD, PUT\r\n",
		       "MethodNotAllowed", NULL, false);
	}
	free(r.meta);

	if (delay_ms <= 0) {
		start_answer(c);
		return;
	}
	c->state = WAITING;
	c->due_us = now_us() + delay_ms * 1000;
	c->wait_next = NULL;
	if (wait_tail)
		wait_tail->wait_next = c;
	else
		wait_head = c;
	wait_tail = c;
	watch(c, 0); /* nothing more from this client until it has its answer */
}

static void on_readable(struct conn *c)
{
	for (;;) {
		if (c->in_cap - c->in_len < 64 * 1024) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 128 * 1024;
			char *in = realloc(c->in, cap);
			if (!in) {
				conn_close(c);
				return;
			}
			c->in = in;
			c->in_cap = cap;
		}
		ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->in_len += (size_t)n;
		if (c->in_len > HEAD_MAX + BODY_MAX) {
			conn_close(c);
			return;
		}
	}
	try_request(c);
}

static void on_accept(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->state = READING;
		watch(c, EPOLLIN);
	}
}

static void on_term(int sig)
{
	(void)sig;
	char line[64];
	int n = snprintf(line, sizeof line, "origin: %llu answers\n", served);
	if (write(2, line, (size_t)n) < 0)
		_exit(1);
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: origin PORT DIR DELAY_MS\n");
		return 2;
	}
	int port = atoi(argv[1]);
	delay_ms = atoll(argv[3]);
	load_root = argv[2];
	load_root_len = strlen(load_root);
	if (nftw(load_root, load_file, 16, FTW_PHYS) != 0) {
		fprintf(stderr, "origin: cannot load %s\n", load_root);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 4096) != 0) {
		perror("origin: bind/listen");
		return 1;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);

	size_t objects = 0;
	for (int i = 0; i < BUCKETS; i++)
		for (struct object *o = table[i]; o; o = o->next)
			objects++;
	fprintf(stderr, "origin: 127.0.0.1:%d, %zu objects from %s, first-byte delay %lld ms\n",
		port, objects, load_root, delay_ms);

	struct epoll_event evs[256];
	for (;;) {
		int timeout = -1;
		if (wait_head) {
			long long left = wait_head->due_us - now_us();
			timeout = left > 0 ? (int)((left + 999) / 1000) : 0;
		}
		int n = epoll_wait(epfd, evs, 256, timeout);
		if (n < 0 && errno != EINTR) {
			perror("origin: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c)
				on_accept(lfd);
			else if (c->state == WRITING)
				send_answer(c);
			else if (c->state == READING)
				on_readable(c);
		}
		/* The answers whose delay is over, oldest first. */
		long long now = now_us();
		while (wait_head && wait_head->due_us <= now) {
			struct conn *c = wait_head;
			wait_head = c->wait_next;
			if (!wait_head)
				wait_tail = NULL;
			start_answer(c);
		}
	}
}
