/*
 * unit_http.c - entity tags and conditional requests.
 */
#include <string.h>

#include "http.h"
#include "unit.h"

void unit_http(void)
{
	char a[HTTP_ETAG_LEN], b[HTTP_ETAG_LEN], c[HTTP_ETAG_LEN], d[HTTP_ETAG_LEN];
	char bare[64];

	http_derived_etag("\"abc\"", "w-400", "v1-q82", a);
	http_derived_etag("abc", "w-400", "v1-q82", b);
	http_derived_etag("\"abd\"", "w-400", "v1-q82", c);
	http_derived_etag("\"abc\"", "w-400", "v1-q70", d);
	CHECK(strncmp(a, "\"abc:", 5) == 0 && strlen(a) == 22 && a[21] == '"',
	      "derived ETag is strong, quoted, and carries the source ETag: %s", a);
	char src[HTTP_ETAG_LEN];
	CHECK(http_derived_source(a, "w-400", "v1-q82", src, sizeof src) &&
		  strcmp(src, "\"abc\"") == 0,
	      "the source ETag is read back from a derived tag");
	CHECK(!http_derived_source(a, "w-401", "v1-q82", src, sizeof src),
	      "not for other parameters");
	CHECK(!http_derived_source(a, "w-400", "v1-q70", src, sizeof src),
	      "not for another variant");
	CHECK(!http_derived_source("\"abc\"", "w-400", "v1-q82", src, sizeof src),
	      "not from a plain ETag");
	CHECK(
	    !http_derived_source("W/\"abc:f8672fc5e3ca40c6\"", "w-400", "v1-q82", src, sizeof src),
	    "not from a weak tag");
	CHECK(!http_derived_source(NULL, "w-400", "v1-q82", src, sizeof src), "not from nothing");
	char odd[HTTP_ETAG_LEN];
	http_derived_etag("\"we\"ird\x01\"", "w-400", "v1-q82", odd);
	CHECK(strchr(odd + 1, '"') == odd + strlen(odd) - 1 && !strchr(odd, '\x01'),
	      "odd bytes of a source ETag cannot break the header: %s", odd);
	CHECK(strcmp(a, b) == 0, "quotes around the source ETag do not matter");
	CHECK(strcmp(a, c) != 0, "a changed source gives a new ETag");
	CHECK(strcmp(a, d) != 0, "a changed variant (default quality) gives a new ETag");
	http_derived_etag("\"abc\"", "w-401", "v1-q82", d);
	CHECK(strcmp(a, d) != 0, "other parameters give another ETag");

	CHECK(http_etag_matches("\"xyz\"", "\"xyz\""), "exact tag matches");
	CHECK(http_etag_matches("W/\"xyz\"", "\"xyz\""), "weak comparison for If-None-Match");
	CHECK(http_etag_matches("\"a\", \"xyz\" ,\"b\"", "\"xyz\""), "tag in a list matches");
	CHECK(http_etag_matches("*", "\"xyz\""), "* matches any current representation");
	CHECK(!http_etag_matches("\"xy\"", "\"xyz\""), "prefix does not match");
	CHECK(!http_etag_matches("\"xyz", "\"xyz\""), "unterminated tag does not match");
	CHECK(!http_etag_matches("", "\"xyz\"") && !http_etag_matches(NULL, "\"xyz\""),
	      "empty or absent If-None-Match never matches");
	CHECK(!http_etag_matches("\"\"", "\"xyz\""), "empty tag does not match");

	const char *lm = "Tue, 24 Nov 2026 23:57:14 GMT";
	const long long now = 1796256000; /* Thu, 03 Dec 2026 00:00:00 GMT */
	CHECK(http_not_modified_since("Tue, 24 Nov 2026 23:57:14 GMT", lm, now),
	      "same second: not modified");
	CHECK(http_not_modified_since("Wed, 25 Nov 2026 00:00:00 GMT", lm, now),
	      "later: not modified");
	CHECK(!http_not_modified_since("Tue, 24 Nov 2026 23:57:13 GMT", lm, now),
	      "earlier: modified");
	CHECK(!http_not_modified_since("yesterday", lm, now), "invalid date is ignored");
	CHECK(!http_not_modified_since(NULL, lm, now) && !http_not_modified_since(lm, NULL, now),
	      "missing dates never mean not modified");
	CHECK(http_not_modified_since("Thu, 03 Dec 2026 00:00:00 GMT", lm, now),
	      "a date of this very second counts");
	CHECK(!http_not_modified_since("Thu, 03 Dec 2026 00:00:01 GMT", lm, now) &&
		  !http_not_modified_since("Fri, 01 Jan 2100 00:00:00 GMT", lm, now),
	      "a date later than now is ignored (RFC 9110 13.1.3)");

	CHECK(http_value_safe("\"abc\"", 1024), "printable value is safe to forward");
	CHECK(!http_value_safe("a\r\nX-Evil: 1", 1024), "CR LF is not");
	CHECK(!http_value_safe("caf\xc3\xa9", 1024), "non-ASCII is not");
	CHECK(!http_value_safe("", 1024) && !http_value_safe(NULL, 1024), "empty is not");
	http_unquote_etag("\"abc\"", bare, sizeof bare);
	CHECK(strcmp(bare, "abc") == 0, "unquote");
}
