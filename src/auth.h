/*
 * auth.h - the API key table and constant-time key matching.
 *
 * Keys are held only as SHA-256 digests, whether the config gave the key or
 * its digest, so a key never sits in memory longer than the request that
 * presented it and can never be logged. A presented key is hashed once and
 * compared against every entry with a constant-time compare, without an
 * early exit, so the answer's timing says nothing about which key, or how
 * much of one, matched. Each entry carries a plan index for usage plans.
 */
#ifndef IMGSVC_AUTH_H
#define IMGSVC_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto.h"

struct auth_key {
	char *name;                       /* from [key NAME]; safe to log */
	unsigned char digest[SHA256_LEN]; /* SHA-256 of the key */
	bool enabled;
	int plan; /* index into the plan table; -1: unlimited */
};

struct auth_table {
	struct auth_key *keys;
	size_t n;
};

enum auth_result { AUTH_OK, AUTH_MISSING, AUTH_UNKNOWN, AUTH_DISABLED };

/* Adds a key; digest is SHA-256 of the key. Returns the new entry. */
struct auth_key *auth_add(struct auth_table *t, const char *name,
			  const unsigned char digest[SHA256_LEN], bool enabled);
/*
 * Checks a presented key (NULL when the header is absent). On AUTH_OK and
 * AUTH_DISABLED, *key points at the matching entry.
 */
enum auth_result auth_check(const struct auth_table *t, const char *presented,
			    const struct auth_key **key);
void auth_table_free(struct auth_table *t);

#endif
