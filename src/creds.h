/*
 * creds.h - where the S3 credentials come from, and keeping them fresh.
 *
 * The chain of SPEC §5, first found wins: the config file; the environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); the shared
 * credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials,
 * profile AWS_PROFILE or "default"); container credentials
 * (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI against 169.254.170.2, or
 * AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN
 * or _TOKEN_FILE); EC2 instance metadata IMDSv2 (endpoint
 * AWS_EC2_METADATA_SERVICE_ENDPOINT, default http://169.254.169.254; skipped
 * when AWS_EC2_METADATA_DISABLED=true or the config turns it off).
 * Temporary credentials (container, IMDS) are fetched again when they are
 * within a refresh margin of their expiry.
 */
#ifndef IMGSVC_CREDS_H
#define IMGSVC_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct creds {
	char *access_key_id;
	char *secret_access_key;
	char *session_token; /* NULL when none */
	time_t expiration;   /* 0: does not expire */
	const char *source;  /* "config", "environment", "shared-file", "container", "imds" */
};

struct creds_options {
	/* From the config file's [s3] section; NULL or "" when not set. */
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;
	bool imds_enabled;    /* config [s3] imds; env AWS_EC2_METADATA_DISABLED also disables */
	long timeout_ms;      /* for each credential endpoint request */
	int refresh_margin_s; /* refresh this long before expiration (default 300) */
};

struct creds_provider;

/*
 * Creates a provider. Nothing is fetched yet. Returns NULL only on bad
 * options (err says why).
 */
struct creds_provider *creds_provider_new(const struct creds_options *opt, char *err,
					  size_t errlen);

/*
 * Returns the current credentials, resolving the chain the first time and
 * refreshing temporary ones near expiry. now is the wall clock (injectable
 * for tests). budget_ms, when above 0, bounds the time spent asking the
 * credential endpoints (each request also within timeout_ms). On failure returns NULL and err says
 * which sources were tried and why each failed (never printing a secret). If a refresh fails while
 * the previous credentials have not yet expired, those are returned.
 * The pointer stays valid until the next creds_get or creds_provider_free.
 */
const struct creds *creds_get(struct creds_provider *p, time_t now, long budget_ms, char *err,
			      size_t errlen);

/*
 * creds_get for a provider shared by threads (creds_get itself is for one
 * thread): under the provider's lock, so a fetch from an endpoint is made
 * once while the others wait for it, a copy into *out that stays the
 * caller's until creds_release. false with err as creds_get.
 */
bool creds_take(struct creds_provider *p, time_t now, long budget_ms, struct creds *out,
		char *err, size_t errlen);
void creds_release(struct creds *c);

/* Forget the cached credentials (after S3 said they are expired or invalid). */
void creds_invalidate(struct creds_provider *p);

void creds_provider_free(struct creds_provider *p);

#endif
