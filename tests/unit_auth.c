/*
 * unit_auth.c - API key matching: keys and digests, disabled keys, misses.
 */
#include <string.h>

#include "auth.h"
#include "unit.h"

static void add(struct auth_table *t, const char *name, const char *key, bool enabled)
{
	unsigned char d[SHA256_LEN];
	crypto_sha256(key, strlen(key), d);
	auth_add(t, name, d, enabled);
}

void unit_auth(void)
{
	struct auth_table t = {0};
	const struct auth_key *k;
	unsigned char d[SHA256_LEN];

	add(&t, "web", "web-key-0123456789", true);
	add(&t, "spaces", "a key with spaces and ünïcödé", true);
	add(&t, "off", "disabled-key-0123", false);
	/* sha256("sha-only-key-42") given as hex, as the config allows */
	crypto_sha256("sha-only-key-42", 15, d);
	char hex[SHA256_HEX_LEN + 1];
	crypto_hex(d, SHA256_LEN, hex);
	CHECK(crypto_unhex(hex, d, SHA256_LEN), "hex digest parses back");
	auth_add(&t, "hashed", d, true);

	CHECK(auth_check(&t, "web-key-0123456789", &k) == AUTH_OK && strcmp(k->name, "web") == 0,
	      "plain key matches its entry");
	CHECK(auth_check(&t, "a key with spaces and ünïcödé", &k) == AUTH_OK &&
		  strcmp(k->name, "spaces") == 0,
	      "key with spaces and unicode matches");
	CHECK(auth_check(&t, "sha-only-key-42", &k) == AUTH_OK && strcmp(k->name, "hashed") == 0,
	      "key given as SHA-256 matches");
	CHECK(auth_check(&t, "disabled-key-0123", &k) == AUTH_DISABLED && k &&
		  strcmp(k->name, "off") == 0,
	      "disabled key is recognised as disabled");
	CHECK(auth_check(&t, "web-key-012345678", &k) == AUTH_UNKNOWN && !k,
	      "prefix of a key is unknown");
	CHECK(auth_check(&t, "web-key-01234567890", &k) == AUTH_UNKNOWN, "extended key is unknown");
	CHECK(auth_check(&t, "WEB-KEY-0123456789", &k) == AUTH_UNKNOWN, "keys are case-sensitive");
	CHECK(auth_check(&t, NULL, &k) == AUTH_MISSING, "absent header is missing");
	CHECK(auth_check(&t, "", &k) == AUTH_MISSING, "empty header is missing");
	CHECK(t.keys[0].plan == -1, "a new key has no plan (unlimited)");
	CHECK(!crypto_unhex("xyz", d, SHA256_LEN), "bad hex is refused");
	CHECK(crypto_equal("abc", "abc", 3) && !crypto_equal("abc", "abd", 3), "crypto_equal");
	auth_table_free(&t);
	CHECK(t.n == 0 && t.keys == NULL, "table freed");
}
