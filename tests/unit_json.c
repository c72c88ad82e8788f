/*
 * unit_json.c - the JSON reader against good documents, every escape, and
 * malformed input. Malformed cases are copied into exactly-sized heap
 * blocks so that valgrind or ASan would catch a read past the end.
 */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

/* Runs json_get_string on an exactly-sized copy of doc (no NUL after it). */
static int get(const char *doc, size_t len, const char *field, struct buf *out)
{
	char *copy = xmalloc(len);
	memcpy(copy, doc, len);
	int rc = json_get_string(copy, len, field, out);
	free(copy);
	return rc;
}

static void expect(const char *doc, const char *field, const char *want, size_t wantlen,
		   const char *title)
{
	struct buf out = BUF_INIT;
	int rc = get(doc, strlen(doc), field, &out);
	CHECK(rc == JSON_OK && out.len == wantlen && memcmp(out.data, want, wantlen) == 0 &&
		  out.data[out.len] == '\0',
	      "json: %s", title);
	buf_free(&out);
}

static void expect_rc(const char *doc, size_t len, const char *field, int want, const char *title)
{
	struct buf out = BUF_INIT;
	buf_puts(&out, "stale");
	int rc = get(doc, len, field, &out);
	CHECK(rc == want && out.len == 0, "json: %s", title);
	buf_free(&out);
}

#define BAD(doc, title) expect_rc((doc), sizeof(doc) - 1, "a", JSON_MALFORMED, (title))

static const char ecs_doc[] =
    "{\n"
    "  \"RoleArn\" : \"arn:aws:iam::123456789012:role/imgsvc\",\n"
    "  \"AccessKeyId\" : \"ASIAEXAMPLE\",\n"
    "  \"SecretAccessKey\" : \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\",\n"
    "  \"Token\" : \"IQoJb3JpZ2luX2Vj\\/EXAMPLE==\",\n"
    "  \"Expiration\" : \"2026-11-25T01:02:03Z\"\n"
    "}\n";

static void good(void)
{
	expect(ecs_doc, "AccessKeyId", "ASIAEXAMPLE", 11, "ECS document: AccessKeyId");
	expect(ecs_doc, "Token", "IQoJb3JpZ2luX2Vj/EXAMPLE==", 26, "ECS document: \\/ in Token");
	expect(ecs_doc, "Expiration", "2026-11-25T01:02:03Z", 20, "ECS document: Expiration");
	expect_rc(ecs_doc, sizeof ecs_doc - 1, "Code", JSON_NOT_FOUND, "absent member: not found");
	expect_rc(ecs_doc, sizeof ecs_doc - 1, "accesskeyid", JSON_NOT_FOUND,
		  "names are case-sensitive");

	expect("{\"a\":\"\"}", "a", "", 0, "empty string value");
	expect("{\"\":\"x\"}", "", "x", 1, "empty member name");
	expect(" \t\r\n{ \"a\" \n:\t\"v\" \r} \n", "a", "v", 1, "whitespace everywhere allowed");
	expect("{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "a", "\"\\/\b\f\n\r\t", 8,
	       "simple escapes");
	expect("{\"a\":\"\\u0041\\u00e9\\u20AC\"}", "a", "A\xc3\xa9\xe2\x82\xac", 6,
	       "\\u escapes to 1-, 2- and 3-byte UTF-8");
	expect("{\"a\":\"\\ud83d\\ude00\"}", "a", "\xf0\x9f\x98\x80", 4,
	       "surrogate pair to 4-byte UTF-8");
	expect("{\"a\":\"\\udbff\\udfff\"}", "a", "\xf4\x8f\xbf\xbf", 4,
	       "U+10FFFF from surrogates");
	expect("{\"a\":\"x\\u0000y\"}", "a", "x\0y", 3, "\\u0000 kept, length tells");
	expect("{\"a\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", "a",
	       "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, "raw UTF-8 passes through");
	expect("{\"n\":{\"a\":\"inner\",\"b\":[1,{\"c\":[]},\"}\"]},\"a\":\"outer\"}", "a", "outer",
	       5, "nested values skipped, inner same name ignored");
	expect("{\"x\":[true,false,null,-0,0.5,1e9,-1.25E-3,2e+2,\"s\"],\"a\":\"v\"}", "a", "v", 1,
	       "every scalar kind skipped");
	expect("{\"x\":{},\"y\":[],\"a\":\"v\"}", "a", "v", 1, "empty containers skipped");
	expect("{\"\\u0061\":\"escaped name\"}", "a", "escaped name", 12,
	       "escaped member name matches");

	expect_rc("{}", 2, "a", JSON_NOT_FOUND, "empty object: not found");
	expect_rc("{\"a\":1}", 7, "a", JSON_NOT_FOUND, "number value: not a string");
	expect_rc("{\"a\":null}", 10, "a", JSON_NOT_FOUND, "null value: not a string");
	expect_rc("{\"a\":{\"b\":\"c\"}}", 15, "b", JSON_NOT_FOUND, "only top level searched");
	expect_rc("{\"a\\u0000\":\"v\"}", 15, "a", JSON_NOT_FOUND, "NUL in name does not match");

	/* Exactly at the limit, then one deeper. */
	struct buf doc = BUF_INIT;
	buf_puts(&doc, "{\"x\":");
	for (int i = 1; i < JSON_MAX_DEPTH; i++)
		buf_putc(&doc, '[');
	for (int i = 1; i < JSON_MAX_DEPTH; i++)
		buf_putc(&doc, ']');
	buf_puts(&doc, ",\"a\":\"deep\"}");
	expect(doc.data, "a", "deep", 4, "nesting at JSON_MAX_DEPTH accepted");
	buf_reset(&doc);
	buf_puts(&doc, "{\"x\":");
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		buf_putc(&doc, '[');
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		buf_putc(&doc, ']');
	buf_puts(&doc, ",\"a\":\"deep\"}");
	expect_rc(doc.data, doc.len, "a", JSON_MALFORMED, "nesting past JSON_MAX_DEPTH refused");
	/* Far too deep must not exhaust the stack either. */
	buf_reset(&doc);
	buf_puts(&doc, "{\"x\":");
	for (int i = 0; i < 100000; i++)
		buf_putc(&doc, '[');
	expect_rc(doc.data, doc.len, "a", JSON_MALFORMED, "100000 open brackets refused");
	buf_free(&doc);
}

static void malformed(void)
{
	struct buf out = BUF_INIT;
	CHECK(json_get_string(NULL, 0, "a", &out) == JSON_MALFORMED && out.len == 0,
	      "json: NULL input");
	buf_free(&out);
	BAD("", "empty input");
	BAD("   ", "only whitespace");
	BAD("[\"a\"]", "top level is an array");
	BAD("\"a\"", "top level is a string");
	BAD("{\"a\":\"v\"", "missing closing brace");
	BAD("{\"a\":\"v", "unterminated string at end");
	BAD("{\"a\":\"v\\", "backslash at end");
	BAD("{\"a\":\"\\u12", "\\u cut short at end");
	BAD("{\"a\":\"\\ud83d", "high surrogate at end");
	BAD("{\"a\":\"\\ud83d\\", "high surrogate then backslash at end");
	BAD("{\"a\":\"v\"}}", "trailing brace");
	BAD("{\"a\":\"v\"} x", "trailing garbage");
	BAD("{\"a\":\"v\"}\0", "trailing NUL byte");
	BAD("{\"a\":\"v\",}", "trailing comma");
	BAD("{,\"a\":\"v\"}", "leading comma");
	BAD("{\"a\" \"v\"}", "missing colon");
	BAD("{\"a\":}", "missing value");
	BAD("{a:\"v\"}", "unquoted name");
	BAD("{'a':'v'}", "single quotes");
	BAD("{\"a\":\"v\" \"b\":\"w\"}", "missing comma");
	BAD("{\"a\":\"v\",\"a\":\"w\"}", "duplicate member refused");
	BAD("{\"a\":1,\"a\":\"w\"}", "duplicate member of another type refused");
	BAD("{\"a\":\"tab\there\"}", "raw control character in string");
	BAD("{\"a\":\"nl\nhere\"}", "raw newline in string");
	BAD("{\"a\":\"\\x41\"}", "unknown escape \\x");
	BAD("{\"a\":\"\\U0041\"}", "uppercase \\U");
	BAD("{\"a\":\"\\u00g1\"}", "bad hex digit in \\u");
	BAD("{\"a\":\"\\ude00\"}", "lone low surrogate");
	BAD("{\"a\":\"\\ud83d\"}", "lone high surrogate");
	BAD("{\"a\":\"\\ud83dx\"}", "high surrogate then plain char");
	BAD("{\"a\":\"\\ud83d\\u0041\"}", "high surrogate then non-surrogate");
	BAD("{\"a\":\"\\ud83d\\ud83d\"}", "two high surrogates");
	BAD("{\"a\":\"\xc3\"}", "truncated UTF-8");
	BAD("{\"a\":\"\xc0\xaf\"}", "overlong UTF-8");
	BAD("{\"a\":\"\xe0\x80\xaf\"}", "overlong 3-byte UTF-8");
	BAD("{\"a\":\"\xed\xa0\x80\"}", "UTF-8 encoded surrogate");
	BAD("{\"a\":\"\xf4\x90\x80\x80\"}", "UTF-8 above U+10FFFF");
	BAD("{\"a\":\"\xff\"}", "byte 0xff");
	BAD("{\"a\":\"\x80\"}", "stray continuation byte");
	BAD("{\"x\":\"\xe2\x82", "UTF-8 cut at end of input");
	BAD("{\"x\":01,\"a\":\"v\"}", "leading zero");
	BAD("{\"x\":+1,\"a\":\"v\"}", "plus sign");
	BAD("{\"x\":1.,\"a\":\"v\"}", "no digits after point");
	BAD("{\"x\":.5,\"a\":\"v\"}", "no digits before point");
	BAD("{\"x\":1e,\"a\":\"v\"}", "no exponent digits");
	BAD("{\"x\":-,\"a\":\"v\"}", "lone minus");
	BAD("{\"x\":NaN,\"a\":\"v\"}", "NaN");
	BAD("{\"x\":tru,\"a\":\"v\"}", "truncated literal");
	BAD("{\"x\":True,\"a\":\"v\"}", "capitalised literal");
	BAD("{\"x\":nul", "literal cut at end");
	BAD("{\"x\":[1,],\"a\":\"v\"}", "trailing comma in array");
	BAD("{\"x\":[1 2],\"a\":\"v\"}", "missing comma in array");
	BAD("{\"x\":[1,\"a\":\"v\"}", "unclosed array");
	BAD("{\"x\":{\"y\"},\"a\":\"v\"}", "nested member without value");
	BAD("{\"x\":{1:2},\"a\":\"v\"}", "nested non-string name");
	BAD("{\"x\":[}", "mismatched brackets");
	BAD("{\"a\":\"v\"}\xef\xbb\xbf", "BOM after object");
	BAD("\xef\xbb\xbf{\"a\":\"v\"}", "BOM before object");

	/* Every prefix of a good document is malformed, and read in bounds. */
	bool all = true;
	for (size_t n = 0; n < sizeof ecs_doc - 2; n++) {
		all &= get(ecs_doc, n, "Token", &out) == JSON_MALFORMED && out.len == 0;
	}
	CHECK(all, "json: every truncation of a good document is malformed");
	buf_free(&out);
}

void unit_json(void)
{
	good();
	malformed();
}
