/*
 * crypto.h - SHA-256, HMAC-SHA256, hex encoding and constant-time compare,
 * thin wrappers over OpenSSL's libcrypto (already on every machine that has
 * libcurl4-openssl; see README "Dependencies").
 */
#ifndef IMGSVC_CRYPTO_H
#define IMGSVC_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#define SHA256_LEN 32
#define SHA256_HEX_LEN 64

void crypto_sha256(const void *data, size_t len, unsigned char out[SHA256_LEN]);
void crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
			unsigned char out[SHA256_LEN]);
/* Writes 2*len lowercase hex digits and a NUL to out. */
void crypto_hex(const unsigned char *in, size_t len, char *out);
/* The value of one hex digit (either case), or -1. */
int crypto_hexval(int c);
/* Parses exactly 2*len hex digits (either case); false on anything else. */
bool crypto_unhex(const char *in, unsigned char *out, size_t len);
/* true when a and b are equal; time depends only on len. */
bool crypto_equal(const void *a, const void *b, size_t len);

#endif
