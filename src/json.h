/*
 * json.h - a strict, minimal JSON reader: pulls one string member out of a
 * flat object, such as the credential documents of the ECS container
 * endpoint and EC2 instance metadata.
 *
 * The whole document is validated (RFC 8259 grammar, UTF-8, nesting depth)
 * before an answer is given, so a truncated or garbled response is never
 * half-read. Members that are not asked for may hold any JSON value; they
 * are skipped. Input need not be NUL-terminated and is never read past len.
 */
#ifndef IMGSVC_JSON_H
#define IMGSVC_JSON_H

#include <stddef.h>

#include "buf.h"

#define JSON_OK 0
#define JSON_NOT_FOUND (-1) /* valid object, no such member or not a string */
#define JSON_MALFORMED (-2) /* not a valid JSON object, or the member is repeated */

/* Deepest nesting accepted, the top-level object included. */
#define JSON_MAX_DEPTH 64

/*
 * Finds the top-level member named field and, when its value is a string,
 * stores it unescaped (UTF-8, NUL-terminated, possibly holding a NUL byte
 * from \u0000: check out->len) in out, which is reset first. Returns
 * JSON_OK, JSON_NOT_FOUND or JSON_MALFORMED; out is empty unless JSON_OK.
 */
int json_get_string(const char *json, size_t len, const char *field, struct buf *out);

/*
 * Appends s as a JSON string literal: quotes, backslashes and control
 * characters escaped, bytes that are not UTF-8 replaced by U+FFFD, so the
 * document stays valid whatever s holds.
 */
void json_append_string(struct buf *out, const char *s);

#endif
