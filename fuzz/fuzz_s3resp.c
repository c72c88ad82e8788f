/*
 * fuzz_s3resp.c - libFuzzer target: what imgsvc reads from S3's answers,
 * the response header lines (s3_parse_header) and the XML error body
 * (s3_error_code), both in src/s3req.c.
 *
 * Input: header lines, each ending in '\n', up to an empty line; the rest
 * is the error body. Each line and the body are handed over in buffers of
 * exactly their size and not NUL-terminated, as libcurl hands them to
 * s3.c, so ASan sees any read past the end. Invariants: the status is a
 * three-digit code from a status line or 0; every field of struct
 * s3_object stays terminated inside its array, trimmed, free of control
 * characters; the content length
 * is -1 or a number the header held; the error code is shorter than its
 * buffer, printable, and copied from the body between <Code> and </Code>.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "s3req.h"

static void check_field(const char *name, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	FUZZ_CHECK(n < cap, "%s is not terminated", name);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(((unsigned char)s[i] >= 0x20 || s[i] == '\t') && s[i] != 0x7F,
			   "%s holds control byte 0x%02x", name, (unsigned char)s[i]);
	if (n) {
		FUZZ_CHECK(s[0] != ' ' && s[0] != '\t', "%s '%s' starts with a blank", name, s);
		FUZZ_CHECK(s[n - 1] != ' ' && s[n - 1] != '\t' && s[n - 1] != '\r' &&
			       s[n - 1] != '\n',
			   "%s '%s' ends with a blank", name, s);
	}
}

#define FIELD(obj, f) check_field(#f, (obj)->f, sizeof(obj)->f)

/* The status a status line states: three digits after the first space. */
static long ref_status(const char *line, size_t len)
{
	const char *sp = memchr(line, ' ', len);
	if (!sp)
		return 0;
	size_t rest = len - (size_t)(sp + 1 - line);
	const char *d = sp + 1;
	if (rest < 3)
		return 0;
	for (int i = 0; i < 3; i++)
		if (d[i] < '0' || d[i] > '9')
			return 0;
	if (rest > 3 && d[3] >= '0' && d[3] <= '9')
		return 0;
	return (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
}

/* A Content-Length value: blanks around digits, at most 18 of them; else -1. */
static long long ref_length(const char *v, size_t len)
{
	size_t i = 0, digits = 0;
	long long n = 0;
	while (i < len && (v[i] == ' ' || v[i] == '\t'))
		i++;
	for (; i < len && v[i] >= '0' && v[i] <= '9'; i++, digits++)
		n = digits < 18 ? n * 10 + (v[i] - '0') : -2;
	while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
		i++;
	if (i < len || digits == 0)
		return -1;
	return n; /* -2: more than 18 digits, may or may not fit */
}

static void check_line(const uint8_t *data, size_t len, long *status, struct s3_object *obj)
{
	char *line = malloc(len ? len : 1);
	memcpy(line, data, len);
	bool is_status = len > 5 && memcmp(line, "HTTP/", 5) == 0;
	s3_parse_header(line, len, status, obj);
	if (is_status) {
		FUZZ_CHECK(*status == ref_status(line, len), "status %ld for '%.*s'", *status,
			   (int)len, line);
		FUZZ_CHECK(obj->content_length == -1 && !obj->etag[0] && !obj->content_type[0],
			   "a status line did not start a new response");
	}
	if (len > 15 && strncasecmp(line, "content-length:", 15) == 0) {
		long long want = ref_length(line + 15, len - 15);
		if (want != -2)
			FUZZ_CHECK(obj->content_length == want,
				   "content length %lld, expected %lld", obj->content_length, want);
	}
	FUZZ_CHECK(*status >= 0 && *status <= 999, "status %ld", *status);
	FUZZ_CHECK(obj->content_length >= -1, "content length %lld", obj->content_length);
	FIELD(obj, content_type);
	FIELD(obj, etag);
	FIELD(obj, last_modified);
	FIELD(obj, source_etag);
	FIELD(obj, variant);
	FIELD(obj, source_last_modified);
	free(line);
}

static void check_code(const uint8_t *data, size_t len, size_t codelen)
{
	char *body = malloc(len ? len : 1), code[64];
	memcpy(body, data, len);
	memset(code, 'x', sizeof code);
	s3_error_code(body, len, code, codelen);
	size_t n = strnlen(code, codelen);
	FUZZ_CHECK(n < codelen, "code not terminated within %zu bytes", codelen);
	if (n) {
		const char *open = memmem(body, len, "<Code>", 6);
		FUZZ_CHECK(open, "a code from a body without <Code>");
		const char *start = open + 6;
		FUZZ_CHECK((size_t)(start - body) + n <= len, "code longer than the body holds");
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(code[i] == start[i] ||
				       (code[i] == '?' && !(start[i] > 0x20 && start[i] < 0x7F)),
				   "code byte %zu is 0x%02x, body has 0x%02x", i,
				   (unsigned char)code[i], (unsigned char)start[i]);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(code[i] > 0x20 && code[i] < 0x7F, "unprintable code byte");
	}
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3_object obj;
	long status = 0;
	size_t i = 0;

	memset(&obj, 0, sizeof obj);
	obj.content_length = -1;
	while (i < size) {
		const uint8_t *nl = memchr(data + i, '\n', size - i);
		size_t len = nl ? (size_t)(nl - (data + i)) + 1 : size - i;
		bool empty = len == 1 || (len == 2 && data[i] == '\r');
		check_line(data + i, len, &status, &obj);
		i += len;
		if (empty)
			break;
	}
	check_code(data + i, size - i, 64);
	check_code(data + i, size - i, 1 + size % 64);
	return 0;
}
