/*
 * redislimit.c - usage-plan limits held in Redis (see redislimit.h).
 *
 * Every request is one EVALSHA of the Lua script below, which reads Redis's
 * clock, brings the key's token bucket up to date, checks the quota of the
 * current UTC period and, only when the request is admitted, takes a token
 * and counts it: the rules of plan.c, in integer millionths of a token, in
 * one atomic step. The script is loaded (SCRIPT LOAD) when a connection is
 * made; if Redis forgets it (SCRIPT FLUSH, a restarted server behind a
 * proxy) the request is answered by EVAL and the script loaded again in
 * the same round trip.
 *
 * The connection is opened on first use and kept; one that Redis closed
 * while idle (a restart, its idle timeout) is noticed before use and
 * replaced, so a restarted Redis costs no request. After any failure the
 * context is dropped and no new connection is tried for a second, so a
 * Redis that is down or hung costs each worker at most one timeout per
 * second, not one per request; the caller's failure policy answers the
 * requests in between.
 */
#include "redislimit.h"

#include "clock.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECONNECT_INTERVAL_MS 1000

/*
 * KEYS[1]: the key's base name, prefix .. "{" .. key name .. "}" (a hash
 * tag: the bucket and every quota counter of a key share one cluster slot).
 * ARGV: rate (requests per second, printed with %.17g so Lua reads the very
 * double plan.c has), burst, quota (0 = none), period (none|day|week|month)
 * and, for tests only, a clock in milliseconds that replaces TIME.
 * Returns {verdict, retry_after}: 0 allowed, 1 rate limited, 2 quota
 * exceeded, as enum plan_verdict.
 *
 * Lua numbers are doubles. The rate becomes millionths per second exactly
 * as plan.c's rate_units does it; from there on every value is an integer
 * below 2^53 and every quotient's numerator plus denominator stays below
 * 2^53, so the arithmetic is exact and math.floor of a quotient is the
 * integer quotient. That holds up to a burst of 3,000,000 and a rate of
 * 10^9 per second, the bounds applied here (plan.c's are larger, but a
 * plan beyond them is unlimited in practice). Expiries are relative
 * (PEXPIRE, EXPIRE) so that a test clock cannot make a counter vanish.
 */
const char redis_limit_script[] =
    "local UNIT = 1000000\n"
    "local rate = tonumber(ARGV[1])\n"
    "if rate > 0 then\n"
    "  rate = math.floor(rate * UNIT + 0.5)\n"
    "  if rate < 1 then rate = 1 end\n"
    "  if rate > 1e15 then rate = 1e15 end\n"
    "else\n"
    "  rate = 0\n"
    "end\n"
    "local burst = tonumber(ARGV[2])\n"
    "if burst < 1 then burst = 1 end\n"
    "if burst > 3000000 then burst = 3000000 end\n"
    "local quota = tonumber(ARGV[3])\n"
    "local period = ARGV[4]\n"
    "local now_ms\n"
    "if ARGV[5] then\n"
    "  now_ms = tonumber(ARGV[5])\n"
    "else\n"
    "  local t = redis.call('TIME')\n"
    "  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "end\n"
    "local now_s = math.floor(now_ms / 1000)\n"
    "local function int(x) return string.format('%d', x) end\n"
    /* Howard Hinnant's days_from_civil / civil_from_days. */
    "local function days_from_civil(y, m, d)\n"
    "  if m <= 2 then y = y - 1 end\n"
    "  local era = math.floor(y / 400)\n"
    "  local yoe = y - era * 400\n"
    "  local mp = m > 2 and m - 3 or m + 9\n"
    "  local doy = math.floor((153 * mp + 2) / 5) + d - 1\n"
    "  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy\n"
    "  return era * 146097 + doe - 719468\n"
    "end\n"
    "local function civil_from_days(z)\n"
    "  z = z + 719468\n"
    "  local era = math.floor(z / 146097)\n"
    "  local doe = z - era * 146097\n"
    "  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)\n"
    "    - math.floor(doe / 146096)) / 365)\n"
    "  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))\n"
    "  local mp = math.floor((5 * doy + 2) / 153)\n"
    "  local m = mp < 10 and mp + 3 or mp - 9\n"
    "  local y = yoe + era * 400\n"
    "  if m <= 2 then y = y + 1 end\n"
    "  return y, m\n"
    "end\n"
    "local qkey, qend\n"
    "if quota > 0 and period ~= 'none' then\n"
    "  local days = math.floor(now_s / 86400)\n"
    "  local start\n"
    "  if period == 'day' then\n"
    "    start = days * 86400\n"
    "    qend = start + 86400\n"
    "  elseif period == 'week' then\n"
    /* Day 0 was a Thursday: (days + 3) % 7 counts days since Monday. */
    "    start = (days - (days + 3) % 7) * 86400\n"
    "    qend = start + 7 * 86400\n"
    "  elseif period == 'month' then\n"
    "    local y, m = civil_from_days(days)\n"
    "    start = days_from_civil(y, m, 1) * 86400\n"
    "    if m == 12 then y, m = y + 1, 1 else m = m + 1 end\n"
    "    qend = days_from_civil(y, m, 1) * 86400\n"
    "  else\n"
    "    return redis.error_reply('imgsvc: unknown period ' .. period)\n"
    "  end\n"
    "  qkey = KEYS[1] .. ':quota:' .. int(start)\n"
    "  local count = tonumber(redis.call('GET', qkey) or '0')\n"
    "  if count >= quota then\n"
    "    local wait = math.floor((qend * 1000 - now_ms + 999) / 1000)\n"
    "    if wait < 1 then wait = 1 end\n"
    "    return {2, wait}\n"
    "  end\n"
    "end\n"
    "local bkey, tokens\n"
    "if rate > 0 then\n"
    "  bkey = KEYS[1] .. ':bucket'\n"
    "  local cap = burst * UNIT\n"
    "  local last = now_ms\n"
    "  tokens = cap\n"
    "  local h = redis.call('HMGET', bkey, 'tokens', 'last_ms')\n"
    "  if h[1] and h[2] then\n"
    "    tokens = tonumber(h[1])\n"
    "    last = tonumber(h[2])\n"
    "    local elapsed = now_ms - last\n"
    /* A clock that went back refills nothing and keeps last_ms: moving it
     * back would refill the same time twice. */
    "    if elapsed > 0 then last = now_ms end\n"
    "    if elapsed > 0 and tokens < cap then\n"
    /* Compare before multiplying: a long idle time times the rate could
     * pass 2^53. */
    "      local full_ms = math.floor(((cap - tokens) * 1000 + rate - 1) / rate)\n"
    "      if elapsed >= full_ms then\n"
    "        tokens = cap\n"
    "      else\n"
    "        tokens = tokens + math.floor(elapsed * rate / 1000)\n"
    "      end\n"
    "    end\n"
    "    if tokens > cap then tokens = cap end\n"
    "  end\n"
    "  if tokens < UNIT then\n"
    "    local wait = math.floor((UNIT - tokens + rate - 1) / rate)\n"
    "    if wait < 1 then wait = 1 end\n"
    "    return {1, wait}\n"
    "  end\n"
    "  tokens = tokens - UNIT\n"
    "  redis.call('HSET', bkey, 'tokens', int(tokens), 'last_ms', int(last))\n"
    /* Once full again the bucket is what a missing key means: let it go. */
    "  local ttl = math.floor(((cap - tokens) * 1000 + rate - 1) / rate) + 1000\n"
    "  redis.call('PEXPIRE', bkey, int(ttl))\n"
    "end\n"
    "if qkey then\n"
    "  redis.call('INCR', qkey)\n"
    /* A day past the period's end, so the last period stays readable. */
    "  redis.call('EXPIRE', qkey, int(qend + 86400 - now_s))\n"
    "end\n"
    "return {0, 0}\n";

struct redis_limiter {
	char *host; /* owned copies of the options */
	int port;
	char *password;
	char *prefix;
	long timeout_ms;
	redisContext *ctx; /* NULL: not connected */
	char sha[41];      /* SHA1 of the loaded script */
	bool failed;       /* the last attempt failed ... */
	int64_t failed_ms; /* ... at this monotonic time */
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
							  ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

struct redis_limiter *redis_limiter_new(const struct redis_options *opt)
{
	struct redis_limiter *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->host = dup_or_empty(opt->host);
	r->password = dup_or_empty(opt->password);
	r->prefix = dup_or_empty(opt->prefix);
	r->port = opt->port;
	r->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 100;
	if (!r->host || !r->password || !r->prefix) {
		redis_limiter_free(r);
		return NULL;
	}
	return r;
}

void redis_limiter_free(struct redis_limiter *r)
{
	if (!r)
		return;
	if (r->ctx)
		redisFree(r->ctx);
	free(r->host);
	if (r->password)
		memset(r->password, 0, strlen(r->password));
	free(r->password);
	free(r->prefix);
	free(r);
}

/* Drops the connection after a failure and starts the reconnect pause. */
static int fail(struct redis_limiter *r)
{
	if (r->ctx) {
		redisFree(r->ctx);
		r->ctx = NULL;
	}
	r->failed = true;
	r->failed_ms = clock_mono_ms();
	return -1;
}

/* What went wrong on the connection, in err; the password never appears
 * (hiredis reports I/O errors, Redis's replies do not echo arguments). */
static void io_err(const struct redis_limiter *r, const char *what, char *err, size_t errlen)
{
	const redisContext *c = r->ctx;
	bool timeout = c && c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);

	if (timeout)
		set_err(err, errlen, "redis %s:%d: %s: timed out after %ld ms", r->host, r->port,
			what, r->timeout_ms);
	else
		set_err(err, errlen, "redis %s:%d: %s: %s", r->host, r->port, what,
			c && c->err ? c->errstr : "no reply");
}

/* A reply that is an error, or not of the wanted type, fails the call. */
static bool reply_ok(const struct redis_limiter *r, const redisReply *rep, int type,
		     const char *what, char *err, size_t errlen)
{
	if (!rep) {
		io_err(r, what, err, errlen);
		return false;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		set_err(err, errlen, "redis %s:%d: %s: %.*s", r->host, r->port, what, (int)rep->len,
			rep->str);
		return false;
	}
	if (rep->type != type) {
		set_err(err, errlen, "redis %s:%d: %s: unexpected reply type %d", r->host, r->port,
			what, rep->type);
		return false;
	}
	return true;
}

/* Keeps the SHA1 from a SCRIPT LOAD reply. */
static bool keep_sha(struct redis_limiter *r, const redisReply *rep, char *err, size_t errlen)
{
	if (!reply_ok(r, rep, REDIS_REPLY_STRING, "SCRIPT LOAD", err, errlen))
		return false;
	if (rep->len != 40) {
		set_err(err, errlen, "redis %s:%d: SCRIPT LOAD: odd reply", r->host, r->port);
		return false;
	}
	memcpy(r->sha, rep->str, 40);
	r->sha[40] = '\0';
	return true;
}

/*
 * Connects, authenticates and loads the script: AUTH and SCRIPT LOAD go in
 * one pipelined round trip. Returns 0, or -1 with err set and the context
 * dropped.
 */
static int connect_redis(struct redis_limiter *r, char *err, size_t errlen)
{
	struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
	redisReply *auth = NULL, *load = NULL;
	bool use_auth = *r->password != '\0';
	bool ok = false;

	if (*r->host == '/')
		r->ctx = redisConnectUnixWithTimeout(r->host, tv);
	else
		r->ctx = redisConnectWithTimeout(r->host, r->port, tv);
	if (!r->ctx) {
		set_err(err, errlen, "redis %s:%d: connect: out of memory", r->host, r->port);
		return fail(r);
	}
	if (r->ctx->err) {
		io_err(r, "connect", err, errlen);
		return fail(r);
	}
	if (redisSetTimeout(r->ctx, tv) != REDIS_OK) {
		io_err(r, "set timeout", err, errlen);
		return fail(r);
	}
	if (use_auth && redisAppendCommand(r->ctx, "AUTH %s", r->password) != REDIS_OK) {
		io_err(r, "AUTH", err, errlen);
		return fail(r);
	}
	if (redisAppendCommand(r->ctx, "SCRIPT LOAD %s", redis_limit_script) != REDIS_OK) {
		io_err(r, "SCRIPT LOAD", err, errlen);
		return fail(r);
	}
	/* Both replies are read before judging either, so none is left behind. */
	if (use_auth && redisGetReply(r->ctx, (void **)&auth) != REDIS_OK) {
		io_err(r, "AUTH", err, errlen);
		goto out;
	}
	if (redisGetReply(r->ctx, (void **)&load) != REDIS_OK) {
		io_err(r, "SCRIPT LOAD", err, errlen);
		goto out;
	}
	if (use_auth && !reply_ok(r, auth, REDIS_REPLY_STATUS, "AUTH", err, errlen))
		goto out;
	ok = keep_sha(r, load, err, errlen);
out:
	if (auth)
		freeReplyObject(auth);
	if (load)
		freeReplyObject(load);
	return ok ? 0 : fail(r);
}

/* {verdict, retry_after} -> the caller's values. */
static bool read_verdict(const struct redis_limiter *r, const redisReply *rep,
			 enum plan_verdict *verdict, int64_t *retry_after_s, char *err,
			 size_t errlen)
{
	if (!reply_ok(r, rep, REDIS_REPLY_ARRAY, "EVALSHA", err, errlen))
		return false;
	if (rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER || rep->element[0]->integer < PLAN_ALLOW ||
	    rep->element[0]->integer > PLAN_QUOTA_EXCEEDED) {
		set_err(err, errlen, "redis %s:%d: the script's reply is not {verdict, retry}",
			r->host, r->port);
		return false;
	}
	*verdict = (enum plan_verdict)rep->element[0]->integer;
	*retry_after_s = rep->element[1]->integer;
	return true;
}

static const char *period_word(enum plan_period p)
{
	switch (p) {
	case PERIOD_DAY:
		return "day";
	case PERIOD_WEEK:
		return "week";
	case PERIOD_MONTH:
		return "month";
	case PERIOD_NONE:
		break;
	}
	return "none";
}

/*
 * Between requests nothing is owed to us: a connection with something to
 * read was closed by Redis (or is out of step), and sending on it would
 * fail this request. One poll, no round trip.
 */
static bool went_stale(const redisContext *c)
{
	struct pollfd p = {c->fd, POLLIN, 0};
	return poll(&p, 1, 0) != 0;
}

int redis_admit(struct redis_limiter *r, const char *key_name, const struct plan *plan,
		enum plan_verdict *verdict, int64_t *retry_after_s, char *err, size_t errlen)
{
	char rate[40], burst[24], quota[24];
	const char *argv[8];
	size_t argvlen[8];
	char *base = NULL;
	redisReply *rep = NULL, *load = NULL;
	int rc = -1;

	if (r->ctx && went_stale(r->ctx)) {
		redisFree(r->ctx);
		r->ctx = NULL;
		r->failed = false;
	}
	if (!r->ctx) {
		int64_t since = clock_mono_ms() - r->failed_ms;
		if (r->failed && since < RECONNECT_INTERVAL_MS) {
			set_err(err, errlen,
				"redis %s:%d: unavailable (last attempt %" PRId64
				" ms ago; next in %" PRId64 " ms)",
				r->host, r->port, since, RECONNECT_INTERVAL_MS - since);
			return -1;
		}
		if (connect_redis(r, err, errlen) < 0)
			return -1;
	}

	if (asprintf(&base, "%s{%s}", r->prefix, key_name) < 0) {
		set_err(err, errlen, "redis: out of memory");
		return -1;
	}
	snprintf(rate, sizeof rate, "%.17g", plan->rate);
	snprintf(burst, sizeof burst, "%" PRId64, plan->burst);
	snprintf(quota, sizeof quota, "%" PRId64, plan->quota);
	argv[0] = "EVALSHA";
	argv[1] = r->sha;
	argv[2] = "1";
	argv[3] = base;
	argv[4] = rate;
	argv[5] = burst;
	argv[6] = quota;
	argv[7] = period_word(plan->period);
	for (int i = 0; i < 8; i++)
		argvlen[i] = strlen(argv[i]);

	rep = redisCommandArgv(r->ctx, 8, argv, argvlen);
	if (rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
		/* Redis lost the script: answer with EVAL and load it again, in one
		 * pipelined round trip. */
		freeReplyObject(rep);
		rep = NULL;
		argv[0] = "EVAL";
		argv[1] = redis_limit_script;
		argvlen[0] = 4;
		argvlen[1] = strlen(redis_limit_script);
		if (redisAppendCommandArgv(r->ctx, 8, argv, argvlen) != REDIS_OK ||
		    redisAppendCommand(r->ctx, "SCRIPT LOAD %s", redis_limit_script) != REDIS_OK ||
		    redisGetReply(r->ctx, (void **)&rep) != REDIS_OK ||
		    redisGetReply(r->ctx, (void **)&load) != REDIS_OK) {
			io_err(r, "EVAL", err, errlen);
			goto out;
		}
		if (!keep_sha(r, load, err, errlen))
			goto out;
	}
	if (read_verdict(r, rep, verdict, retry_after_s, err, errlen))
		rc = 0;
out:
	if (rep)
		freeReplyObject(rep);
	if (load)
		freeReplyObject(load);
	free(base);
	return rc == 0 ? 0 : fail(r);
}
