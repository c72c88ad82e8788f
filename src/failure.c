/*
 * failure.c - the request's one error value (see failure.h).
 */
#include "failure.h"

#include <stdarg.h>

void failure_note(struct failure *f, const char *detail)
{
	if (detail && !f->detail.len)
		buf_puts(&f->detail, detail);
}

void failure_notef(struct failure *f, const char *fmt, ...)
{
	if (f->detail.len)
		return;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&f->detail, fmt, ap);
	va_end(ap);
}

const char *failure_reason(const struct failure *f)
{
	return f->detail.len ? f->detail.data : f->message;
}

void failure_free(struct failure *f)
{
	buf_free(&f->detail);
}

enum status failure_busy(struct failure *f, const char *detail)
{
	failure_note(f, detail);
	f->message = "Server busy: no capacity for the image work before the deadline; "
		     "try again shortly";
	f->retry_after = 1;
	return ST_UNAVAILABLE;
}
