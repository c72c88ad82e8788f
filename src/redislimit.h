/*
 * redislimit.h - usage-plan limits held in Redis, for a fleet of hosts.
 *
 * The same rules as plan.c, run by one Lua script inside Redis (EVALSHA):
 * the check and the update are one atomic step and one round trip per
 * request, and Redis's own clock (TIME) is the one clock of the fleet.
 * Built only when configure finds hiredis (--with-redis).
 */
#ifndef IMGSVC_REDISLIMIT_H
#define IMGSVC_REDISLIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "plan.h"

struct redis_limiter;

struct redis_options {
	const char *host; /* "127.0.0.1", or a Unix socket path starting with '/' */
	int port;
	const char *password; /* NULL or "": none (AUTH otherwise) */
	const char *prefix;   /* key prefix in Redis, e.g. "imgsvc:" */
	long timeout_ms;      /* connect and command timeout */
};

/* Creates a limiter; connects lazily (a Redis that is down at start-up is
 * not an error: the failure policy applies per request). A limiter belongs
 * to one process (its connection must not cross a fork), and the process
 * must ignore SIGPIPE: hiredis writes with write(2), and Redis may have
 * closed the connection. */
struct redis_limiter *redis_limiter_new(const struct redis_options *opt);
void redis_limiter_free(struct redis_limiter *r);

/*
 * Admits or refuses one request of key_name under plan. Returns 0 with
 * *verdict and *retry_after_s set, or -1 when Redis could not be asked
 * (unreachable, timeout, error reply: err says which); the caller then
 * applies the configured failure policy. Reconnects on the next call after
 * a failure, at most once per second.
 */
int redis_admit(struct redis_limiter *r, const char *key_name, const struct plan *plan,
		enum plan_verdict *verdict, int64_t *retry_after_s, char *err, size_t errlen);

/*
 * The Lua script redis_admit runs (KEYS[1] = prefix "{" key name "}"; ARGV
 * = rate per second as "%.17g", burst, quota, period word). Exported for
 * tests, which pass a fifth argument, a clock in milliseconds that replaces
 * Redis's TIME, to compare it with plan.c at chosen instants.
 */
extern const char redis_limit_script[];

#endif
