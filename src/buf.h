/*
 * buf.h - a growable byte buffer, the one string builder used everywhere.
 *
 * A buf owns its memory; buf_free() releases it and leaves an empty buf that
 * may be reused. The data is always NUL-terminated so it can be handed to
 * functions that want a C string, but it may also hold binary bytes.
 * Allocation failure aborts the process: a FastCGI worker that cannot
 * allocate a few bytes cannot answer anything useful, and the web server
 * restarts it.
 */
#ifndef IMGSVC_BUF_H
#define IMGSVC_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT                                                                                   \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Empties the buffer but keeps its memory for reuse. */
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Hands the NUL-terminated data to the caller, who frees it; b is emptied. */
char *buf_detach(struct buf *b);
/* Returns a copy of s (which may be NULL, giving NULL); aborts on failure. */
char *xstrdup(const char *s);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);

#endif
