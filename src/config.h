/*
 * config.h - the imgsvc configuration: one INI file, validated whole.
 *
 * cfg_load() reads the file with iniparser and checks every section and key
 * against one table (config.c); an unknown section or key, a missing
 * required key or a bad value fails the whole load with a message naming
 * the file, the section, the key and the problem. Nothing is half-loaded.
 */
#ifndef IMGSVC_CONFIG_H
#define IMGSVC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "plan.h"

enum cfg_addressing { CFG_ADDR_AUTO, CFG_ADDR_VIRTUAL, CFG_ADDR_PATH };

struct cfg_s3 {
	char *bucket;
	char *region;
	char *endpoint; /* "" for AWS; else "http://127.0.0.1:9000" */
	enum cfg_addressing addressing;
	char *originals_prefix; /* "original-images/" (may be "") */
	char *resized_prefix;   /* "resized/": derivatives; never overlaps the above */
	char *access_key_id;    /* "" when the chain should be used */
	char *secret_access_key;
	char *session_token;
	bool imds; /* try EC2 instance metadata last */
	long long connect_timeout_ms;
	long long timeout_ms; /* whole S3 exchange, retries included */
	long long retries;    /* extra attempts after the first */
	bool verify_tls;
	char *ca_file; /* "" for the system store */
};

struct cfg_server {
	long long max_width; /* 0: no clamp */
	long long max_source_bytes;
	long long max_source_pixels;
	long long max_image_memory;     /* bytes one image's work may take (budget.h) */
	long long max_output_pixels;    /* the most a fit=fill enlargement may ask for */
	long long max_output_dimension; /* w and h: 1 .. this */
	long long quality;              /* JPEG/WebP quality when q is not given */
	unsigned formats;               /* bit (1 << enum img_format) per allowed source format */
	bool derivative_cache;          /* store and reuse derivatives in S3 */
	bool strip_originals;           /* originals served without their metadata (strip.h) */
	char *cache_control;            /* "" for none */
	long long heap_log_every;       /* requests between heap log lines; 0: none */
	long long threads;              /* requests each process serves at once */
	long long image_workers;        /* images in work at once on the host; 0: cores */
};

enum cfg_backend { CFG_BACKEND_LOCAL, CFG_BACKEND_REDIS };

struct cfg_limits {
	char *state_file;         /* the host's shared state (usage, limits, metrics) */
	enum cfg_backend backend; /* where usage-plan counters live */
	char *redis_host;         /* host name, address, or Unix socket path */
	long long redis_port;
	char *redis_password; /* "" for none */
	char *redis_prefix;   /* prefix of imgsvc's keys in Redis */
	long long redis_timeout_ms;
	bool redis_fail_open; /* Redis unreachable: admit (true) or refuse with 503 */
};

struct cfg {
	char *path; /* the file this came from */
	struct cfg_server server;
	struct cfg_s3 s3;
	struct cfg_limits limits;
	struct auth_table keys;
	struct plan *plans; /* [plan NAME] sections; auth_key.plan indexes this */
	size_t n_plans;
	struct auth_table metrics_keys; /* [metrics]: the admin key, or empty */
};

/*
 * Loads and validates path. Returns NULL with a message in err (naming file,
 * section, key and the problem) on any error.
 */
struct cfg *cfg_load(const char *path, char *err, size_t errlen);
void cfg_free(struct cfg *cfg);

/* The file to read: -c argument, else $IMGSVC_CONFIG, else the default. */
const char *cfg_default_path(const char *arg);

#endif
