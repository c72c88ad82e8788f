/*
 * status.c - the one table from imgsvc statuses to HTTP.
 */
#include "status.h"

static const struct {
	int code;
	const char *reason;
	const char *message;
} table[ST_COUNT] = {
    [ST_OK] = {200, "OK", "OK"},
    [ST_NOT_MODIFIED] = {304, "Not Modified", "Not modified"},
    [ST_BAD_REQUEST] = {400, "Bad Request", "Bad request"},
    [ST_FORBIDDEN] = {403, "Forbidden", "Forbidden"},
    [ST_NOT_FOUND] = {404, "Not Found", "Not found"},
    [ST_BAD_METHOD] = {405, "Method Not Allowed", "Method not allowed"},
    [ST_TOO_LARGE] = {413, "Payload Too Large", "Source image too large"},
    [ST_UNSUPPORTED] = {415, "Unsupported Media Type", "Source is not a supported image"},
    [ST_RATE_LIMITED] = {429, "Too Many Requests", "Too Many Requests"},
    [ST_QUOTA_EXCEEDED] = {429, "Too Many Requests", "Limit Exceeded"},
    [ST_UNAVAILABLE] = {503, "Service Unavailable", "Service Unavailable"},
    [ST_S3_ERROR] = {502, "Bad Gateway", "Storage error"},
    [ST_S3_TIMEOUT] = {504, "Gateway Timeout", "Storage timeout"},
    [ST_INTERNAL] = {500, "Internal Server Error", "Internal error"},
};

int status_http(enum status s)
{
	return table[s].code;
}

const char *status_reason(enum status s)
{
	return table[s].reason;
}

const char *status_message(enum status s)
{
	return table[s].message;
}

size_t status_http_codes(int codes[ST_COUNT])
{
	size_t n = 0;
	for (int s = 0; s < ST_COUNT; s++) {
		int c = table[s].code;
		size_t i = 0;
		while (i < n && codes[i] < c)
			i++;
		if (i < n && codes[i] == c)
			continue;
		for (size_t j = n; j > i; j--)
			codes[j] = codes[j - 1];
		codes[i] = c;
		n++;
	}
	return n;
}
