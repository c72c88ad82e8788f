/*
 * unit_sigv4.c - the SigV4 signer against AWS's own test suite, plus the
 * URI encoder and the timestamp formatter.
 *
 * Each suite case is a raw HTTP request (request.txt), its context
 * (context.json) and the expected canonical request, string to sign,
 * signature and signed request. We parse the request the way S3 would see
 * it, sign it and compare all four, so any change in the signer's output
 * shows up as a named failing case.
 *
 * Which cases apply: S3 signs the path exactly as sent, encoded once and
 * never normalised. So every case runs whose expected canonical URI is the
 * raw path encoded once: all "normalize": false cases, and the
 * "normalize": true cases whose path has nothing to normalise (header,
 * query, POST, session-token, UTF-8, unreserved and space cases). Left out,
 * and not copied into tests/data, are the six whose expected URI is the
 * normalised path, which S3 would reject: get-relative-normalized,
 * get-relative-relative-normalized, get-slash-dot-slash-normalized,
 * get-slash-normalized, get-slash-pointless-dot-normalized and
 * get-slashes-normalized. Their "-unnormalized" twins run instead.
 */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "sigv4.h"
#include "unit.h"

static const char *const cases[] = {
    /* "normalize": false: the path is signed as given. */
    "get-relative-relative-unnormalized",
    "get-relative-unnormalized",
    "get-slash-dot-slash-unnormalized",
    "get-slash-pointless-dot-unnormalized",
    "get-slash-unnormalized",
    "get-slashes-unnormalized",
    "get-space-unnormalized",
    /* "normalize": true, but the path is already normal. */
    "get-header-key-duplicate",
    "get-header-value-multiline",
    "get-header-value-order",
    "get-header-value-trim",
    "get-space-normalized",
    "get-unreserved",
    "get-utf8",
    "get-vanilla",
    "get-vanilla-empty-query-key",
    "get-vanilla-query",
    "get-vanilla-query-order-encoded",
    "get-vanilla-query-order-key-case",
    "get-vanilla-query-unreserved",
    "get-vanilla-utf8-query",
    "get-vanilla-with-session-token",
    "post-header-key-case",
    "post-header-key-sort",
    "post-header-value-case",
    "post-sts-header-after",
    "post-sts-header-before",
    "post-vanilla",
    "post-vanilla-empty-query-value",
    "post-vanilla-query",
    "post-x-www-form-urlencoded",
    "post-x-www-form-urlencoded-parameters",
};

/* Reads DATADIR/aws-sigv4-test-suite/name/file; false when it is missing. */
static bool read_case_file(const char *name, const char *file, struct buf *out)
{
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/aws-sigv4-test-suite/%s/%s", unit_datadir(), name, file);
	FILE *f = fopen(path.data, "rb");
	buf_free(&path);
	if (!f)
		return false;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_append(out, chunk, n);
	fclose(f);
	if (!out->data)
		buf_append(out, "", 0);
	return true;
}

/*
 * The string value of "key" in the suite's flat context.json, or false.
 * Enough JSON for these files: no nesting by name, escapes copied through.
 */
static bool json_string(const char *json, const char *key, struct buf *out)
{
	struct buf pat = BUF_INIT;
	buf_printf(&pat, "\"%s\"", key);
	const char *p = strstr(json, pat.data);
	size_t patlen = pat.len;
	buf_free(&pat);
	if (!p)
		return false;
	p += patlen;
	p += strspn(p, " \t\r\n");
	if (*p++ != ':')
		return false;
	p += strspn(p, " \t\r\n");
	if (*p++ != '"')
		return false;
	for (; *p && *p != '"'; p++) {
		if (*p == '\\' && p[1])
			p++;
		buf_putc(out, *p);
	}
	return *p == '"';
}

static bool json_true(const char *json, const char *key)
{
	struct buf pat = BUF_INIT;
	buf_printf(&pat, "\"%s\"", key);
	const char *p = strstr(json, pat.data);
	size_t patlen = pat.len;
	buf_free(&pat);
	if (!p)
		return false;
	p += patlen;
	p += strspn(p, " \t\r\n:");
	return strncmp(p, "true", 4) == 0;
}

/* A request.txt split up: pointers into its text, which is cut in place. */
struct raw_request {
	char *method, *target, *body;
	struct sigv4_header headers[16];
	size_t n_headers;
	struct buf values[16]; /* header values, continuation lines joined */
};

static void raw_request_free(struct raw_request *r)
{
	for (size_t i = 0; i < r->n_headers; i++)
		buf_free(&r->values[i]);
}

/*
 * "METHOD target HTTP/1.1", then "Name:value" lines, where a line starting
 * with white space continues the previous value (joined by a newline, which
 * the signer must fold), then an empty line and the body. The target may
 * hold spaces (get-space-*), so the version is split off at the last space.
 */
static bool parse_request(char *text, struct raw_request *r)
{
	memset(r, 0, sizeof *r);
	char *line = text, *next;
	char *eol = strchr(line, '\n');
	if (!eol)
		return false;
	*eol = '\0';
	next = eol + 1;
	char *sp1 = strchr(line, ' '), *sp2 = strrchr(line, ' ');
	if (!sp1 || sp1 == sp2)
		return false;
	*sp1 = *sp2 = '\0';
	r->method = line;
	r->target = sp1 + 1;
	r->body = "";
	while (next && *next) {
		line = next;
		eol = strchr(line, '\n');
		if (eol) {
			*eol = '\0';
			next = eol + 1;
		} else {
			next = NULL;
		}
		if (!*line) {
			r->body = next ? next : "";
			break;
		}
		if (*line == ' ' || *line == '\t') {
			if (!r->n_headers)
				return false;
			buf_putc(&r->values[r->n_headers - 1], '\n');
			buf_puts(&r->values[r->n_headers - 1], line);
			continue;
		}
		char *colon = strchr(line, ':');
		if (!colon || r->n_headers == sizeof r->headers / sizeof r->headers[0])
			return false;
		*colon = '\0';
		r->headers[r->n_headers].name = line;
		buf_puts(&r->values[r->n_headers], colon + 1);
		r->n_headers++;
	}
	for (size_t i = 0; i < r->n_headers; i++)
		r->headers[i].value = r->values[i].data ? r->values[i].data : "";
	return true;
}

/* The value of the Authorization line of header-signed-request.txt. */
static bool signed_authorization(const char *signed_request, struct buf *out)
{
	const char *p = strstr(signed_request, "\nAuthorization:");
	if (!p)
		return false;
	p += strlen("\nAuthorization:");
	buf_append(out, p, strcspn(p, "\n"));
	return true;
}

static void strip_final_newline(struct buf *b)
{
	while (b->len && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == '\r'))
		b->data[--b->len] = '\0';
}

static void run_case(const char *name)
{
	struct buf request = BUF_INIT, context = BUF_INIT, want_creq = BUF_INIT,
		   want_sts = BUF_INIT, want_sig = BUF_INIT, signed_req = BUF_INIT,
		   want_auth = BUF_INIT;
	struct buf akid = BUF_INIT, secret = BUF_INIT, token = BUF_INIT, region = BUF_INIT,
		   service = BUF_INIT, timestamp = BUF_INIT, path = BUF_INIT;
	struct raw_request r;
	struct sigv4_result res;
	bool parsed = false;
	memset(&r, 0, sizeof r);
	memset(&res, 0, sizeof res);

	if (!read_case_file(name, "request.txt", &request) ||
	    !read_case_file(name, "context.json", &context) ||
	    !read_case_file(name, "header-canonical-request.txt", &want_creq) ||
	    !read_case_file(name, "header-string-to-sign.txt", &want_sts) ||
	    !read_case_file(name, "header-signature.txt", &want_sig) ||
	    !read_case_file(name, "header-signed-request.txt", &signed_req)) {
		CHECK(false, "sigv4 suite %s: case files readable under %s", name, unit_datadir());
		goto out;
	}
	parsed = parse_request(request.data, &r) &&
		 json_string(context.data, "access_key_id", &akid) &&
		 json_string(context.data, "secret_access_key", &secret) &&
		 json_string(context.data, "region", &region) &&
		 json_string(context.data, "service", &service) &&
		 json_string(context.data, "timestamp", &timestamp) &&
		 signed_authorization(signed_req.data, &want_auth);
	if (!parsed) {
		CHECK(false, "sigv4 suite %s: request.txt and context.json parse", name);
		goto out;
	}
	json_string(context.data, "token", &token);

	/* "2015-08-30T12:36:00Z" -> "20150830T123600Z" */
	char amz_date[17];
	size_t n = 0;
	for (const char *p = timestamp.data; *p && n < 16; p++)
		if (*p != '-' && *p != ':')
			amz_date[n++] = *p;
	amz_date[n] = '\0';

	/* The target is raw; S3 wants the path encoded exactly once. */
	char *query = strchr(r.target, '?');
	if (query)
		*query++ = '\0';
	sigv4_uri_encode(&path, r.target, strlen(r.target), true);

	/* What a signer adds itself: the date, the token unless the case
	 * wants it added after signing, and the body hash when signed. */
	unsigned char digest[SHA256_LEN];
	char body_hash[SHA256_HEX_LEN + 1];
	crypto_sha256(r.body, strlen(r.body), digest);
	crypto_hex(digest, SHA256_LEN, body_hash);
	struct sigv4_header headers[20];
	size_t nh = 0;
	for (size_t i = 0; i < r.n_headers; i++)
		headers[nh++] = r.headers[i];
	headers[nh++] = (struct sigv4_header){"X-Amz-Date", amz_date};
	if (token.len && !json_true(context.data, "omit_session_token"))
		headers[nh++] = (struct sigv4_header){"X-Amz-Security-Token", token.data};
	if (json_true(context.data, "sign_body"))
		headers[nh++] = (struct sigv4_header){"X-Amz-Content-Sha256", body_hash};

	struct sigv4_request req = {
	    .method = r.method,
	    .path = path.data,
	    .query = query,
	    .headers = headers,
	    .n_headers = nh,
	    .payload_hash = body_hash,
	};
	struct sigv4_credentials cred = {akid.data, secret.data, token.data};
	int rc = sigv4_sign(&req, &cred, region.data, service.data, amz_date, &res);
	strip_final_newline(&want_creq);
	strip_final_newline(&want_sts);
	strip_final_newline(&want_sig);
	CHECK(rc == 0 && strcmp(res.canonical_request.data, want_creq.data) == 0,
	      "sigv4 suite %s: canonical request", name);
	CHECK(rc == 0 && strcmp(res.string_to_sign.data, want_sts.data) == 0,
	      "sigv4 suite %s: string to sign", name);
	CHECK(rc == 0 && strcmp(res.signature, want_sig.data) == 0, "sigv4 suite %s: signature",
	      name);
	CHECK(rc == 0 && strcmp(res.authorization.data, want_auth.data) == 0,
	      "sigv4 suite %s: Authorization header", name);
	if (rc == 0 && strcmp(res.canonical_request.data, want_creq.data) != 0)
		printf("# got:\n# %s\n# want:\n# %s\n", res.canonical_request.data, want_creq.data);
out:
	sigv4_result_free(&res);
	raw_request_free(&r);
	struct buf *all[] = {&request,    &context,   &want_creq, &want_sts, &want_sig,
			     &signed_req, &want_auth, &akid,      &secret,   &token,
			     &region,     &service,   &timestamp, &path};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		buf_free(all[i]);
}

static bool encodes_to(const char *in, bool keep_slash, const char *want)
{
	struct buf b = BUF_INIT;
	sigv4_uri_encode(&b, in, strlen(in), keep_slash);
	bool ok = b.data ? strcmp(b.data, want) == 0 : *want == '\0';
	if (!ok)
		printf("# encode \"%s\": got \"%s\", want \"%s\"\n", in, b.data ? b.data : "",
		       want);
	buf_free(&b);
	return ok;
}

static void test_uri_encode(void)
{
	CHECK(encodes_to("", true, ""), "sigv4_uri_encode: empty string");
	CHECK(encodes_to("a b", true, "a%20b"), "sigv4_uri_encode: space is %%20, not +");
	CHECK(encodes_to("a+b=c;d", true, "a%2Bb%3Dc%3Bd"), "sigv4_uri_encode: + = ;");
	CHECK(encodes_to("(x)%25", true, "%28x%29%2525"), "sigv4_uri_encode: ( ) and %% itself");
	CHECK(encodes_to("-._~AZaz09", false, "-._~AZaz09"),
	      "sigv4_uri_encode: unreserved characters kept");
	CHECK(encodes_to("!*'@:,$&?#[]", true, "%21%2A%27%40%3A%2C%24%26%3F%23%5B%5D"),
	      "sigv4_uri_encode: reserved characters escaped");
	CHECK(encodes_to("\xd1\x84\xc3\xbc", true, "%D1%84%C3%BC"),
	      "sigv4_uri_encode: UTF-8 bytes, uppercase hex");
	CHECK(encodes_to("a/b c/", true, "a/b%20c/"), "sigv4_uri_encode: slash kept for paths");
	CHECK(encodes_to("a/b", false, "a%2Fb"), "sigv4_uri_encode: slash escaped for queries");

	struct buf b = BUF_INIT;
	sigv4_uri_encode(&b, "a\0b", 3, true);
	CHECK(b.len == 5 && strcmp(b.data, "a%00b") == 0,
	      "sigv4_uri_encode: length, not NUL, ends the input");
	buf_free(&b);
}

static void test_amz_date(void)
{
	static const struct {
		long long t;
		const char *want;
	} dates[] = {
	    {0, "19700101T000000Z"},
	    {1440938160, "20150830T123600Z"}, /* the suite's timestamp */
	    {951782400, "20000229T000000Z"},  /* leap day of a century leap year */
	    {4107542399LL, "21000228T235959Z"},
	    {-1, "19691231T235959Z"},
	    {253402300799LL, "99991231T235959Z"},
	    {253402300800LL, "99991231T235959Z"}, /* clamped to four digits */
	};
	for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
		char out[17];
		memset(out, 'x', sizeof out);
		sigv4_amz_date(dates[i].t, out);
		CHECK(strcmp(out, dates[i].want) == 0, "sigv4_amz_date(%lld) = %s", dates[i].t,
		      dates[i].want);
	}
}

/* Malformed input is refused, and the result is safe to free regardless. */
static void test_rejects(void)
{
	struct sigv4_header h[] = {{"Host", "example.amazonaws.com"}};
	struct sigv4_request req = {"GET", "/", NULL, h, 1, SIGV4_EMPTY_SHA256};
	struct sigv4_credentials cred = {"AKIDEXAMPLE", "secret", NULL};
	struct sigv4_result res;
	static const char *const bad_dates[] = {
	    "20150830T123600",  "20150830T123600ZZ", "2015-08-30T12:36Z", "20151330T123600Z",
	    "20150800T123600Z", "20150830T243600Z",  "20150830X123600Z",  "2015083aT123600Z",
	};

	CHECK(sigv4_sign(&req, &cred, "us-east-1", "s3", "20150830T123600Z", &res) == 0,
	      "sigv4_sign: well-formed request signs");
	sigv4_result_free(&res);
	for (size_t i = 0; i < sizeof bad_dates / sizeof bad_dates[0]; i++) {
		CHECK(sigv4_sign(&req, &cred, "us-east-1", "s3", bad_dates[i], &res) == -1,
		      "sigv4_sign: rejects amz_date \"%s\"", bad_dates[i]);
		sigv4_result_free(&res);
	}
	CHECK(sigv4_sign(&req, &cred, "us-east-1", "s3", NULL, &res) == -1,
	      "sigv4_sign: rejects NULL amz_date");
	sigv4_result_free(&res);
	CHECK(sigv4_sign(&req, &cred, NULL, "s3", "20150830T123600Z", &res) == -1,
	      "sigv4_sign: rejects NULL region");
	sigv4_result_free(&res);
	CHECK(sigv4_sign(&req, &cred, "us-east-1", "s3/x", "20150830T123600Z", &res) == -1,
	      "sigv4_sign: rejects a service with '/' (would forge the scope)");
	sigv4_result_free(&res);

	struct sigv4_request r2 = req;
	r2.method = NULL;
	CHECK(sigv4_sign(&r2, &cred, "us-east-1", "s3", "20150830T123600Z", &res) == -1,
	      "sigv4_sign: rejects NULL method");
	sigv4_result_free(&res);
	r2 = req;
	r2.path = "no-slash";
	CHECK(sigv4_sign(&r2, &cred, "us-east-1", "s3", "20150830T123600Z", &res) == -1,
	      "sigv4_sign: rejects a path without leading '/'");
	sigv4_result_free(&res);
	r2 = req;
	r2.payload_hash = NULL;
	CHECK(sigv4_sign(&r2, &cred, "us-east-1", "s3", "20150830T123600Z", &res) == -1,
	      "sigv4_sign: rejects NULL payload hash");
	sigv4_result_free(&res);

	struct sigv4_header hn[] = {{NULL, "x"}};
	r2 = req;
	r2.headers = hn;
	CHECK(sigv4_sign(&r2, &cred, "us-east-1", "s3", "20150830T123600Z", &res) == -1,
	      "sigv4_sign: rejects NULL header name");
	sigv4_result_free(&res);
	struct sigv4_header hv[] = {{"Host", NULL}};
	r2.headers = hv;
	CHECK(sigv4_sign(&r2, &cred, "us-east-1", "s3", "20150830T123600Z", &res) == -1,
	      "sigv4_sign: rejects NULL header value");
	sigv4_result_free(&res);

	struct sigv4_credentials c2 = cred;
	c2.access_key_id = NULL;
	CHECK(sigv4_sign(&req, &c2, "us-east-1", "s3", "20150830T123600Z", &res) == -1,
	      "sigv4_sign: rejects NULL access key id");
	sigv4_result_free(&res);
	c2 = cred;
	c2.secret_access_key = NULL;
	CHECK(sigv4_sign(&req, &c2, "us-east-1", "s3", "20150830T123600Z", &res) == -1,
	      "sigv4_sign: rejects NULL secret");
	sigv4_result_free(&res);
	CHECK(sigv4_sign(NULL, &cred, "us-east-1", "s3", "20150830T123600Z", &res) == -1,
	      "sigv4_sign: rejects NULL request");
	sigv4_result_free(&res);
}

/* Query canonicalisation beyond the suite: decode, re-encode, sort, '+'. */
static void test_query(void)
{
	static const struct {
		const char *query, *want;
	} q[] = {
	    {"b=2&a=1&a=0", "a=0&a=1&b=2"},
	    {"acl", "acl="},
	    {"x=a+b&y=a%20b&z=a b", "x=a%2Bb&y=a%20b&z=a%20b"},
	    {"k=%7e%2f&&", "k=~%2F"},
	    {"p=100%", "p=100%25"},
	    {"prefix=%D1%84/", "prefix=%D1%84%2F"},
	};
	struct sigv4_header h[] = {{"Host", "h"}};
	struct sigv4_credentials cred = {"AKID", "secret", NULL};
	for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
		struct sigv4_request req = {"GET", "/", q[i].query, h, 1, SIGV4_EMPTY_SHA256};
		struct sigv4_result res;
		struct buf want = BUF_INIT;
		buf_printf(&want, "GET\n/\n%s\nhost:h\n\nhost\n%s", q[i].want, SIGV4_EMPTY_SHA256);
		int rc = sigv4_sign(&req, &cred, "us-east-1", "s3", "20150830T123600Z", &res);
		CHECK(rc == 0 && strcmp(res.canonical_request.data, want.data) == 0,
		      "sigv4_sign: query \"%s\" canonicalises to \"%s\"", q[i].query, q[i].want);
		sigv4_result_free(&res);
		buf_free(&want);
	}
}

void unit_sigv4(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(cases[i]);
	test_uri_encode();
	test_amz_date();
	test_rejects();
	test_query();
}
