/*
 * response.h - what the client gets, written to the web server over
 * FastCGI: one status line from a status (status.c's table), headers, and
 * a body streamed as it comes. An image, a 304, an error and a small text
 * answer each have one function; all of them go through resp_status.
 */
#ifndef IMGSVC_RESPONSE_H
#define IMGSVC_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <fcgiapp.h>

#include "buf.h"
#include "failure.h"
#include "status.h"

/* The request's view of the client: what it sent and what it gets. */
struct response {
	FCGX_Stream *out;
	FCGX_Request *rq; /* for writing large bodies straight to the socket */
	struct buf head;  /* the status and headers, until the first write */
	struct buf stage; /* body bytes not yet written (see resp_body) */
	bool head_only;   /* HEAD: headers, no body */
	bool head_sent;   /* the status is decided (it may not be written yet) */
	bool committed;   /* bytes have gone to the web server: no going back */
	bool client_gone; /* the web server stopped taking our output */
	int code;         /* the status sent */
	long long bytes;
	const char *if_none_match; /* NULL when absent */
	const char *if_modified_since;
	const char *cache_control; /* of images and 304s ([server] cache_control) */
};

/* Headers of an image response (and of its 304). */
struct image_meta {
	const char *type;
	long long length; /* -1: unknown */
	const char *etag;
	const char *last_modified;
	const char *cache; /* "hit", "miss" or NULL (an original) */
	bool vary_accept;
};

/* Appends "name: value" to headers when value is not empty. */
void resp_header(struct buf *headers, const char *name, const char *value);
/*
 * Decides the status (st's code and reason) and the headers, each line
 * ending in CRLF. They are held until the first body write.
 */
void resp_status(struct response *r, enum status st, const struct buf *headers);
/* Queues body bytes (none for HEAD, or once the client is gone). */
void resp_body(struct response *r, const void *data, size_t len);

/* 200 with an image's headers, then body when not NULL (else resp_body follows). */
void resp_image(struct response *r, const struct image_meta *m, const void *body, size_t len);
/* 304 with the validators and caching headers a 200 of m would have. */
void resp_not_modified(struct response *r, const struct image_meta *m);
/* The error fail describes: its status, a JSON message, Retry-After if any. */
void resp_error(struct response *r, const struct failure *fail);
/* 200 with a small uncacheable body (health, metrics). */
void resp_text(struct response *r, const char *type, const void *body, size_t len);

/* Forgets a response nothing of which has been written yet. */
void resp_take_back(struct response *r);
/*
 * Writes what is held and frees the response. broken: it failed after its
 * first bytes went out, and the client must see it break off, not wait.
 */
void resp_finish(struct response *r, bool broken);

#endif
