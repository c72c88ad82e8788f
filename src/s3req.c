/*
 * s3req.c - the pure parts of talking to S3: where an object lives (URL,
 * Host header and the canonical URI that SigV4 signs, for virtual-hosted
 * and path-style addressing) and what an XML error body says.
 */
#include <stdio.h>
#include <string.h>

#include "s3.h"
#include "sigv4.h"

void s3_build_url(const struct cfg_s3 *cfg, const char *key, struct buf *url, struct buf *host,
		  struct buf *canonical_uri)
{
	const char *scheme = "https://", *hostport, *base = "";
	size_t hostlen, baselen = 0;
	struct buf aws_host = BUF_INIT;
	bool virtual_host;

	if (*cfg->endpoint) {
		const char *sep = strstr(cfg->endpoint, "://");
		scheme = strncmp(cfg->endpoint, "http://", 7) == 0 ? "http://" : "https://";
		hostport = sep ? sep + 3 : cfg->endpoint;
		const char *slash = strchr(hostport, '/');
		hostlen = slash ? (size_t)(slash - hostport) : strlen(hostport);
		if (slash) {
			base = slash;
			baselen = strlen(slash);
		}
		virtual_host = cfg->addressing == CFG_ADDR_VIRTUAL;
	} else {
		buf_printf(&aws_host, "s3.%s.amazonaws.com", cfg->region);
		hostport = aws_host.data;
		hostlen = aws_host.len;
		virtual_host = cfg->addressing != CFG_ADDR_PATH;
	}

	buf_reset(host);
	if (virtual_host)
		buf_printf(host, "%s.", cfg->bucket);
	buf_append(host, hostport, hostlen);

	buf_reset(canonical_uri);
	buf_append(canonical_uri, base, baselen);
	if (!virtual_host) {
		buf_putc(canonical_uri, '/');
		sigv4_uri_encode(canonical_uri, cfg->bucket, strlen(cfg->bucket), false);
	}
	buf_putc(canonical_uri, '/');
	sigv4_uri_encode(canonical_uri, key, strlen(key), true);

	buf_reset(url);
	buf_printf(url, "%s%s%s", scheme, host->data, canonical_uri->data);
	buf_free(&aws_host);
}

void s3_error_code(const char *body, size_t len, char *code, size_t codelen)
{
	static const char open[] = "<Code>", close[] = "</Code>";
	const char *start = body ? memmem(body, len, open, sizeof open - 1) : NULL;

	code[0] = '\0';
	if (!start)
		return;
	start += sizeof open - 1;
	const char *end = memmem(start, len - (size_t)(start - body), close, sizeof close - 1);
	if (!end)
		return;
	size_t n = (size_t)(end - start);
	if (n >= codelen)
		n = codelen - 1;
	/* Keep it printable: it goes into the log. */
	for (size_t i = 0; i < n; i++)
		code[i] = (start[i] > 0x20 && start[i] < 0x7F) ? start[i] : '?';
	code[n] = '\0';
}
