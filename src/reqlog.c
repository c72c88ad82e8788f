/*
 * reqlog.c - request and diagnostic log lines on stderr.
 *
 * Each line is built whole in memory and written with one write(2), so lines
 * from concurrent worker processes sharing one error log do not interleave.
 */
#include "reqlog.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

static void put_time(struct buf *b)
{
	struct timespec ts;
	struct tm tm;
	char s[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
	buf_printf(b, "%s.%03ldZ imgsvc[%ld]", s, ts.tv_nsec / 1000000, (long)getpid());
}

/*
 * Appends s with '"', '\\' and control bytes written as \xNN; a field
 * (key, path) also escapes space and non-ASCII bytes, so it stays one
 * token, while free text (detail, in quotes) keeps them.
 */
static void put_escaped(struct buf *b, const char *s, bool field)
{
	if (!s) {
		buf_putc(b, '-');
		return;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool odd = *p < 0x20 || *p == 0x7F || *p == '"' || *p == '\\' ||
			   (field && (*p == ' ' || *p >= 0x80));
		if (odd)
			buf_printf(b, "\\x%02X", *p);
		else
			buf_putc(b, (char)*p);
	}
}

static void emit(struct buf *b)
{
	buf_putc(b, '\n');
	size_t off = 0;
	while (off < b->len) {
		ssize_t n = write(STDERR_FILENO, b->data + off, b->len - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

void reqlog_write(const struct reqlog *l)
{
	struct buf b = BUF_INIT;
	put_time(&b);
	buf_puts(&b, " key=");
	put_escaped(&b, l->key_name, true);
	buf_putc(&b, ' ');
	put_escaped(&b, l->method, true);
	buf_putc(&b, ' ');
	put_escaped(&b, l->path, true);
	buf_printf(&b, " status=%d bytes=%lld", l->status, l->bytes);
	if (l->s3_ms >= 0)
		buf_printf(&b, " s3_ms=%ld", l->s3_ms);
	else
		buf_puts(&b, " s3_ms=-");
	if (l->img_ms >= 0)
		buf_printf(&b, " img_ms=%ld", l->img_ms);
	buf_printf(&b, " total_ms=%ld", l->total_ms);
	if (l->cache)
		buf_printf(&b, " cache=%s", l->cache);
	if (l->detail) {
		buf_puts(&b, " detail=\"");
		put_escaped(&b, l->detail, false);
		buf_putc(&b, '"');
	}
	emit(&b);
	buf_free(&b);
}

void log_msg(const char *level, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	put_time(&b);
	buf_printf(&b, " %s: ", level);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	emit(&b);
	buf_free(&b);
}
