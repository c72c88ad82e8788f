/*
 * sigv4_cli.c - signs one S3 GET from the command line, so shell tests can
 * hold our signer up against another implementation (t0020 uses botocore).
 *
 * Usage: sigv4_cli [-r] [-v] METHOD HOST PATH QUERY REGION AKID SECRET TOKEN AMZ_DATE
 *
 * PATH is used as given (already encoded), or with -r encoded once here,
 * slashes kept, as imgsvc does for object keys. QUERY and TOKEN may be "".
 * Signs host, x-amz-date, x-amz-content-sha256 (hash of the empty body) and,
 * with a token, x-amz-security-token: the set botocore's S3SigV4Auth signs
 * for a plain GetObject. Prints the path and the headers to send; -v also
 * prints the canonical request and string to sign on stderr.
 */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "sigv4.h"

int main(int argc, char **argv)
{
	bool raw = false, verbose = false;
	int a = 1;
	for (; a < argc && argv[a][0] == '-' && argv[a][1]; a++) {
		if (strcmp(argv[a], "-r") == 0) {
			raw = true;
		} else if (strcmp(argv[a], "-v") == 0) {
			verbose = true;
		} else {
			fprintf(stderr, "sigv4_cli: unknown option %s\n", argv[a]);
			return 2;
		}
	}
	if (argc - a != 9) {
		fputs("usage: sigv4_cli [-r] [-v] METHOD HOST PATH QUERY REGION AKID SECRET "
		      "TOKEN AMZ_DATE\n",
		      stderr);
		return 2;
	}
	const char *method = argv[a], *host = argv[a + 1], *path = argv[a + 2],
		   *query = argv[a + 3], *region = argv[a + 4], *akid = argv[a + 5],
		   *secret = argv[a + 6], *token = argv[a + 7], *amz_date = argv[a + 8];

	struct buf encoded = BUF_INIT;
	if (raw)
		sigv4_uri_encode(&encoded, path, strlen(path), true);
	else
		buf_puts(&encoded, path);

	struct sigv4_header headers[4] = {
	    {"Host", host},
	    {"X-Amz-Date", amz_date},
	    {"X-Amz-Content-SHA256", SIGV4_EMPTY_SHA256},
	    {"X-Amz-Security-Token", token},
	};
	struct sigv4_request req = {
	    .method = method,
	    .path = encoded.data,
	    .query = query,
	    .headers = headers,
	    .n_headers = *token ? 4 : 3,
	    .payload_hash = SIGV4_EMPTY_SHA256,
	};
	struct sigv4_credentials cred = {akid, secret, token};
	struct sigv4_result res;
	int rc = sigv4_sign(&req, &cred, region, "s3", amz_date, &res);
	if (rc == 0) {
		if (verbose)
			fprintf(stderr, "%s\n----\n%s\n", res.canonical_request.data,
				res.string_to_sign.data);
		printf("path: %s\n", encoded.data);
		for (size_t i = 1; i < req.n_headers; i++)
			printf("%s: %s\n", headers[i].name, headers[i].value);
		printf("Authorization: %s\n", res.authorization.data);
	} else {
		fputs("sigv4_cli: sigv4_sign refused the arguments\n", stderr);
	}
	sigv4_result_free(&res);
	buf_free(&encoded);
	return rc == 0 ? 0 : 1;
}
