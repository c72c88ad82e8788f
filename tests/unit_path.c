/*
 * unit_path.c - the path rules (README "Paths") and the object key they build.
 */
#include <string.h>

#include "path.h"
#include "unit.h"

static void expect_key(const char *path, const char *prefix, const char *want)
{
	struct buf key = BUF_INIT;
	const char *why = NULL;
	enum status st = path_to_key(path, prefix, &key, &why);
	CHECK(st == ST_OK && strcmp(key.data, want) == 0, "path %s -> key %s", path, want);
	buf_free(&key);
}

static void expect_bad(const char *label, const char *path, const char *why_part)
{
	struct buf key = BUF_INIT;
	const char *why = NULL;
	enum status st = path_to_key(path, "original-images/", &key, &why);
	CHECK(st == ST_BAD_REQUEST && why && strstr(why, why_part), "400 for %s (%s)", label,
	      why ? why : "no reason");
	buf_free(&key);
}

void unit_path(void)
{
	char longpath[1100];

	expect_key("/photo.jpg", "original-images/", "original-images/photo.jpg");
	expect_key("/a/b/c.png", "", "a/b/c.png");
	/* Never decoded a second time: %41 stays as it is. */
	expect_key("/a%41.jpg", "p/", "p/a%41.jpg");
	expect_key("/my photo (1).jpg", "p/", "p/my photo (1).jpg");
	expect_key("/фото/ünï cödé.jpg", "", "фото/ünï cödé.jpg");
	expect_key("/..a/b..", "", "..a/b..");
	expect_key("/.hidden", "", ".hidden");

	expect_bad("no path", NULL, "Empty");
	expect_bad("empty path", "", "Empty");
	expect_bad("bare slash", "/", "Empty");
	expect_bad("no leading slash", "photo.jpg", "Empty");
	expect_bad("'..' segment", "/a/../b.jpg", "'..'");
	expect_bad("leading '..'", "/../secret", "'..'");
	expect_bad("trailing '..'", "/a/..", "'..'");
	expect_bad("'.' segment", "/a/./b.jpg", "'.'");
	expect_bad("'//'", "/a//b.jpg", "empty segment");
	expect_bad("leading '//'", "//a.jpg", "empty segment");
	expect_bad("trailing slash", "/a/", "empty segment");
	expect_bad("tab", "/a\tb.jpg", "control");
	expect_bad("newline", "/a\nb.jpg", "control");
	expect_bad("DEL", "/a\x7f.jpg", "control");
	expect_bad("C1 control U+0085", "/a\xc2\x85.jpg", "control");
	expect_bad("lone continuation byte", "/a\x80.jpg", "UTF-8");
	expect_bad("overlong slash", "/a\xc0\xaf.jpg", "UTF-8");
	expect_bad("overlong 3-byte", "/a\xe0\x80\xaf.jpg", "UTF-8");
	expect_bad("surrogate", "/a\xed\xa0\x80.jpg", "UTF-8");
	expect_bad("past U+10FFFF", "/a\xf4\x90\x80\x80.jpg", "UTF-8");
	expect_bad("truncated sequence", "/a\xe2\x82", "UTF-8");
	expect_bad("Latin-1 byte", "/caf\xe9.jpg", "UTF-8");

	/* 1024 bytes of key is the limit, prefix included. */
	memset(longpath, 'a', sizeof longpath);
	longpath[0] = '/';
	longpath[1 + 1024 - 16] = '\0'; /* 1008 + "original-images/" = 1024 */
	struct buf key = BUF_INIT;
	const char *why = NULL;
	CHECK(path_to_key(longpath, "original-images/", &key, &why) == ST_OK && key.len == 1024,
	      "a 1024-byte key is allowed");
	longpath[1 + 1024 - 16] = 'a';
	longpath[1 + 1025 - 16] = '\0';
	CHECK(path_to_key(longpath, "original-images/", &key, &why) == ST_BAD_REQUEST,
	      "a 1025-byte key is refused");
	buf_free(&key);

	CHECK(path_utf8_len((const unsigned char *)"\xf0\x9f\x98\x80", 4) == 4,
	      "4-byte UTF-8 (emoji) is valid");
	CHECK(path_utf8_len((const unsigned char *)"\xf0\x9f\x98", 3) == 0,
	      "a cut 4-byte sequence is invalid");
}
