/*
 * crypto.c - digest helpers over libcrypto's EVP and HMAC interfaces.
 */
#include "crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

void crypto_sha256(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
	unsigned int n = SHA256_LEN;
	if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL))
		abort();
}

void crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
			unsigned char out[SHA256_LEN])
{
	unsigned int n = SHA256_LEN;
	if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n))
		abort();
}

void crypto_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int crypto_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool crypto_unhex(const char *in, unsigned char *out, size_t len)
{
	if (strlen(in) != 2 * len)
		return false;
	for (size_t i = 0; i < len; i++) {
		int hi = crypto_hexval(in[2 * i]), lo = crypto_hexval(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

bool crypto_equal(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char diff = 0;
	for (size_t i = 0; i < len; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}
