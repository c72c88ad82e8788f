/*
 * unit_s3req.c - what imgsvc reads from S3's answers: response header
 * lines (s3_parse_header, fed as libcurl feeds them: exact length, no NUL)
 * and the <Code> of an XML error body. The cases are the fuzzer's findings
 * (fuzz/README.md) and the ordinary answers around them.
 */
#include <stdlib.h>
#include <string.h>

#include "s3req.h"
#include "unit.h"

/* Parses one line from a heap copy of exactly its length. */
static void line(const char *text, size_t len, long *status, struct s3_object *obj)
{
	char *copy = malloc(len ? len : 1);
	memcpy(copy, text, len);
	s3_parse_header(copy, len, status, obj);
	free(copy);
}

#define LINE(s, status, obj) line(s, sizeof s - 1, status, obj)

void unit_s3req(void)
{
	struct s3_object obj;
	long status = 0;
	char code[64];

	LINE("HTTP/1.1 200 OK\r\n", &status, &obj);
	CHECK(status == 200 && obj.content_length == -1, "status line: 200, no length yet");
	LINE("ETag:  \"6abe8a3b\" \r\n", &status, &obj);
	LINE("content-length: 2940951\r\n", &status, &obj);
	LINE("Content-Type: image/jpeg\r\n", &status, &obj);
	LINE("x-amz-meta-source-etag: \"9b2c\"\r\n", &status, &obj);
	CHECK(strcmp(obj.etag, "\"6abe8a3b\"") == 0 && obj.content_length == 2940951 &&
		  strcmp(obj.content_type, "image/jpeg") == 0 &&
		  strcmp(obj.source_etag, "\"9b2c\"") == 0,
	      "headers read, trimmed, names in any case");
	LINE("HTTP/2 304 \r\n", &status, &obj);
	CHECK(status == 304 && !obj.etag[0] && obj.content_length == -1,
	      "a new status line starts a new response");

	LINE("HTTP/1.1 200", &status, &obj);
	CHECK(status == 200, "status line without a line end: read within its length");
	LINE("HTTP/1.1 2000 OK\r\n", &status, &obj);
	CHECK(status == 0, "four-digit status: 0");
	LINE("HTTP/1.1 OK\r\n", &status, &obj);
	CHECK(status == 0, "no status code: 0");

	LINE("Content-Length: 00000000000000000000000000000000000000005\r\n", &status, &obj);
	CHECK(obj.content_length == 5, "Content-Length with 40 leading zeros is 5");
	LINE("Content-Length: 99999999999999999999\r\n", &status, &obj);
	CHECK(obj.content_length == -1, "Content-Length past 2^63: -1");
	LINE("Content-Length: +5\r\n", &status, &obj);
	CHECK(obj.content_length == -1, "Content-Length '+5': -1");

	char etag[200] = "ETag: ";
	memset(etag + 6, 'a', 158);
	memcpy(etag + 164, " b\r\n", 5);
	line(etag, strlen(etag), &status, &obj);
	CHECK(strlen(obj.etag) == 158 && obj.etag[157] == 'a',
	      "a value cut to fit is trimmed again");
	LINE("Content-Type: image/jpeg\rX-Injected: 1\r\n", &status, &obj);
	CHECK(!obj.content_type[0], "a value with a bare CR is dropped");
	LINE("Last-Modified: abc\0def\r\n", &status, &obj);
	CHECK(!obj.last_modified[0], "a value with a NUL is dropped");
	LINE("ETag: \"a\tb\"\r\n", &status, &obj);
	CHECK(strcmp(obj.etag, "\"a\tb\"") == 0, "a tab inside a value is kept");

	static const char body[] = "<Error><Code>NoSuchKey</Code><Message>x</Message></Error>";
	s3_error_code(body, sizeof body - 1, code, sizeof code);
	CHECK(strcmp(code, "NoSuchKey") == 0, "error code read");
	s3_error_code(body, 20, code, sizeof code);
	CHECK(!code[0], "no </Code> within the length: no code");
	s3_error_code("<Code>A B\x01</Code>", 18, code, 5);
	CHECK(strcmp(code, "A?B?") == 0, "code made printable and cut to its buffer");
}
