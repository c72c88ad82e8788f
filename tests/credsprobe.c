/*
 * credsprobe.c - drives the credential chain (src/creds.c) for
 * tests/t0030-creds.sh: builds a provider from options and the
 * environment, then performs the actions in order, one output line each.
 *
 * Usage: credsprobe [--key ID --secret S [--token T]] [--no-imds]
 *                   [--timeout-ms N] [--margin S] [ACTION...]
 * Actions: --call OFFSET (creds_get at now+OFFSET seconds) and
 * --invalidate; with none, one --call 0.
 *
 * A call prints "call N: source=S key=ID token=yes|no expires=T|never
 * secret-sha256=PREFIX" or "call N: error: MESSAGE". The secret itself is
 * never printed, only the start of its SHA-256, enough to tell two apart.
 * Exits 1 if any call failed, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "creds.h"
#include "crypto.h"

static void usage(void)
{
	fputs("usage: credsprobe [--key ID --secret S [--token T]] [--no-imds] [--timeout-ms N]\n"
	      "                  [--margin S] [--call OFFSET | --invalidate]...\n",
	      stderr);
	exit(2);
}

static long number(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end)
		usage();
	return v;
}

static void print_creds(int n, const struct creds *c)
{
	unsigned char sum[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	char when[32] = "never";
	crypto_sha256(c->secret_access_key, strlen(c->secret_access_key), sum);
	crypto_hex(sum, SHA256_LEN, hex);
	hex[16] = '\0';
	if (c->expiration) {
		struct tm tm;
		gmtime_r(&c->expiration, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	printf("call %d: source=%s key=%s token=%s expires=%s secret-sha256=%s\n", n, c->source,
	       c->access_key_id, c->session_token ? "yes" : "no", when, hex);
}

int main(int argc, char **argv)
{
	struct creds_options opt = {.imds_enabled = true, .timeout_ms = 2000};
	int first_action = argc;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_arg = i + 1 < argc;
		if (!strcmp(a, "--call") || !strcmp(a, "--invalidate")) {
			first_action = i;
			break;
		} else if (!strcmp(a, "--no-imds")) {
			opt.imds_enabled = false;
		} else if (!has_arg) {
			usage();
		} else if (!strcmp(a, "--key")) {
			opt.access_key_id = argv[++i];
		} else if (!strcmp(a, "--secret")) {
			opt.secret_access_key = argv[++i];
		} else if (!strcmp(a, "--token")) {
			opt.session_token = argv[++i];
		} else if (!strcmp(a, "--timeout-ms")) {
			opt.timeout_ms = number(argv[++i]);
		} else if (!strcmp(a, "--margin")) {
			opt.refresh_margin_s = (int)number(argv[++i]);
		} else {
			usage();
		}
	}

	char err[2048];
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct creds_provider *p = creds_provider_new(&opt, err, sizeof err);
	if (!p) {
		printf("error: %s\n", err);
		curl_global_cleanup();
		return 1;
	}

	int status = 0, calls = 0;
	time_t start = time(NULL);
	for (int i = first_action; i <= argc; i++) {
		long offset = 0;
		if (i == argc) {
			if (calls)
				break;
		} else if (!strcmp(argv[i], "--invalidate")) {
			creds_invalidate(p);
			continue;
		} else if (!strcmp(argv[i], "--call") && i + 1 < argc) {
			offset = number(argv[++i]);
		} else {
			usage();
		}
		const struct creds *c = creds_get(p, start + offset, 0, err, sizeof err);
		calls++;
		if (c) {
			print_creds(calls, c);
		} else {
			printf("call %d: error: %s\n", calls, err);
			status = 1;
		}
		fflush(stdout);
	}

	creds_provider_free(p);
	curl_global_cleanup();
	return status;
}
