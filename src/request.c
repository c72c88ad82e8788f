/*
 * request.c - the path of a request through imgsvc, top to bottom.
 *
 * handle_request owns the order: method → reserved paths → path →
 * parameters → API key → fetch from S3 → transform → respond → log. The
 * derivative's write to S3 is deferred until the response is finished
 * (handle_deferred). Modules do not call each other sideways; this file is
 * where they meet: admin.c (reserved paths), original.c (an original,
 * and the fetch of a derivative's source), derivative.c (the cache and
 * the transform), response.c (what is written to the web server), with
 * the pure cores below them (decide.c, params.c, path.c, auth.c...).
 *
 * An original (no parameters) is streamed: the first bytes from S3 are held
 * only until the image header says how wide it is. One no wider than
 * max_width, or anything that is not a recognised image, passes through as
 * it arrives; a wider one is the derivative ?w=max_width: the transfer
 * stops and it is served as below, from the cache when it is there (with
 * derivative_cache = no it is collected and downscaled at once).
 *
 * A derivative (parameters) is looked up in the cache, and at the same
 * time the original's current ETag is asked for (a HEAD): a hit costs one
 * round trip. When the source ETag stored with the derivative is the
 * original's current one, the derivative is served without decoding;
 * otherwise the original is fetched and transformed: a changed original
 * is never served through its old derivative. A HEAD that fails leaves
 * the check to a conditional GET of the original (304: the derivative is
 * served), and a miss does not wait for the HEAD at all.
 *
 * Which of these happens (pass, downscale, 304, the cached derivative, a
 * transform, or a refusal) is decided in one pure function, decide()
 * (decide.c), from the client's conditions, the probe of the first bytes,
 * the limits and S3's metadata: the S3 callbacks (original.c) only
 * collect bytes and ask it, and the serving functions act on its answer.
 */
#include "handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "auth.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "derivative.h"
#include "failure.h"
#include "http.h"
#include "original.h"
#include "params.h"
#include "path.h"
#include "reqlog.h"
#include "request.h"
#include "response.h"
#include "state.h"
#ifdef HAVE_REDIS
#include "redislimit.h"
#endif
#include "status.h"

/*
 * The configured answer when the usage-plan backend (Redis, or the state
 * file's lock) cannot be asked: admit or refuse with 503. The failure is
 * logged at most once a minute per process per backend, so an outage does
 * not flood the log.
 */
static enum status backend_failed(const struct app *app, long long *last_warning,
				  const char *what, struct failure *fail)
{
	bool open = app->cfg->limits.redis_fail_open;
	long long now = clock_mono_ms();
	long long last = __atomic_load_n(last_warning, __ATOMIC_RELAXED);
	/* One thread of the process wins the minute's warning. */
	if ((last == 0 || now - last > 60000) &&
	    __atomic_compare_exchange_n(last_warning, &last, now, false, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED))
		log_msg("warning", "usage-plan backend %s: failing %s", what,
			open ? "open (admitting)" : "closed (refusing with 503)");
	fail->retry_after = open ? 0 : 1;
	return open ? ST_OK : ST_UNAVAILABLE;
}

/* Asks the key's usage plan whether this request may go on. */
static enum status admit(const struct app *app, const struct auth_key *who, struct failure *fail)
{
	const struct plan *plan = &app->cfg->plans[who->plan];
	enum plan_verdict v = PLAN_ALLOW;
	int64_t retry = 0;

	if (app->redis) {
#ifdef HAVE_REDIS
		static long long last_warning; /* shared by the threads: atomic */
		char err[256], what[300];
		if (redis_admit(app->redis, who->name, plan, &v, &retry, err, sizeof err) < 0) {
			snprintf(what, sizeof what, "Redis unavailable (%s)", err);
			return backend_failed(app, &last_warning, what, fail);
		}
#endif
	} else if (app->state) {
		static long long last_warning; /* shared by the threads: atomic */
		bool unavailable;
		v = state_admit(app->state, who->name, plan, clock_wall_ms(), &retry, &unavailable);
		if (unavailable)
			return backend_failed(app, &last_warning,
					      "state file lock not taken within its bound "
					      "(a stale or damaged lock word?)",
					      fail);
	}
	fail->retry_after = retry;
	return v == PLAN_ALLOW          ? ST_OK
	       : v == PLAN_RATE_LIMITED ? ST_RATE_LIMITED
					: ST_QUOTA_EXCEEDED;
}

/*
 * The X-API-Key header (NULL when absent); *several is set when the request
 * carries HTTP_X_API_KEY more than once. Web servers join repeated headers
 * into one value, but lighttpd maps both "X-API-Key" and "X_API_Key" onto
 * HTTP_X_API_KEY and passes each, and libfcgi would hand over whichever
 * came first: two keys in one request are refused, never one picked.
 */
static const char *api_key(FCGX_Request *rq, bool *several)
{
	static const char name[] = "HTTP_X_API_KEY=";
	const char *found = NULL;

	*several = false;
	for (char **e = rq->envp; e && *e; e++) {
		if (strncmp(*e, name, sizeof name - 1) != 0)
			continue;
		if (found)
			*several = true;
		else
			found = *e + sizeof name - 1;
	}
	return found;
}

/*
 * Defence in depth: an encoded NUL in the path cannot survive into
 * PATH_INFO intact (libfcgi's parameters are C strings). Only the path part
 * of the URI is looked at: in the query "%00" reaches params_parse still
 * encoded, which refuses it as the bad parameter it is.
 */
static bool has_encoded_nul(const char *uri)
{
	for (const char *p = uri; p && *p && *p != '?'; p++)
		if (p[0] == '%' && p[1] == '0' && p[2] == '0')
			return true;
	return false;
}

/* A request header worth forwarding or comparing, else NULL. */
static const char *header(FCGX_Request *rq, const char *name)
{
	const char *v = FCGX_GetParam(name, rq->envp);
	return http_value_safe(v, 1024) ? v : NULL;
}

/* For the metrics: 1 a cache hit, 2 a miss, 0 neither (originals, 304s). */
static int cache_kind(const char *cache)
{
	if (!cache)
		return 0;
	return strcmp(cache, "hit") == 0 ? 1 : strcmp(cache, "miss") == 0 ? 2 : 0;
}

void handle_request(const struct app *app, FCGX_Request *rq, struct deferred *later)
{
	long long t0 = clock_mono_ms();
	const char *method = FCGX_GetParam("REQUEST_METHOD", rq->envp);
	const char *path = FCGX_GetParam("PATH_INFO", rq->envp);
	const char *uri = FCGX_GetParam("REQUEST_URI", rq->envp);
	const char *query = FCGX_GetParam("QUERY_STRING", rq->envp);
	bool several_keys;
	const char *presented = api_key(rq, &several_keys);
	struct response resp = {
	    .out = rq->out, .rq = rq, .cache_control = app->cfg->server.cache_control};
	struct reqlog log = {.method = method, .path = path, .s3_ms = -1, .img_ms = -1};
	struct buf key = BUF_INIT;
	struct failure fail = FAILURE_INIT;
	struct params_limits lim = {(unsigned long)app->cfg->server.max_output_dimension,
				    (int)app->cfg->server.quality};
	struct params params;
	const struct auth_key *who = NULL;
	char perr[160];
	enum status st;

	memset(later, 0, sizeof *later);
	if (!method || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)) {
		st = ST_BAD_METHOD;
		goto done;
	}
	resp.head_only = strcmp(method, "HEAD") == 0;
	resp.if_none_match = header(rq, "HTTP_IF_NONE_MATCH");
	resp.if_modified_since = header(rq, "HTTP_IF_MODIFIED_SINCE");
	if (path && strncmp(path, PATH_RESERVED, strlen(PATH_RESERVED)) == 0) {
		struct admin_auth auth = {presented, several_keys,
					  FCGX_GetParam("HTTP_AUTHORIZATION", rq->envp)};
		st = admin_serve(app, &resp, path, &auth, &fail);
		goto done;
	}
	if (has_encoded_nul(uri)) {
		st = ST_BAD_REQUEST;
		fail.message = "Path contains a control character";
		goto done;
	}
	st = path_to_key(path, app->cfg->s3.originals_prefix, &key, &fail.message);
	if (st != ST_OK)
		goto done;
	if (!params_parse(query, &lim, &params, perr, sizeof perr)) {
		st = ST_BAD_REQUEST;
		fail.message = perr;
		goto done;
	}
	if (several_keys) {
		failure_note(&fail, "more than one X-API-Key header");
		st = ST_FORBIDDEN;
		goto done;
	}
	switch (auth_check(&app->cfg->keys, presented, &who)) {
	case AUTH_OK:
		break;
	case AUTH_MISSING:
		failure_note(&fail, "no API key");
		st = ST_FORBIDDEN;
		goto done;
	case AUTH_UNKNOWN:
		failure_note(&fail, "unknown API key");
		st = ST_FORBIDDEN;
		goto done;
	case AUTH_DISABLED:
		log.key_name = who->name;
		failure_note(&fail, "disabled API key");
		st = ST_FORBIDDEN;
		goto done;
	}
	log.key_name = who->name;
	if (who->plan >= 0) {
		st = admit(app, who, &fail);
		if (st != ST_OK)
			goto done;
	}
	log.s3_ms = 0;
	struct request req = {
	    app, &resp, &log, &fail, key.data, path + 1, FCGX_GetParam("HTTP_ACCEPT", rq->envp)};
	if (params_is_identity(&params, &lim)) {
		struct params clamp;
		st = orig_serve(&req, &clamp);
		/* Wider than max_width: the derivative ?w=max_width, cached like any. */
		if (st == ST_OK && clamp.any)
			st = deriv_serve(&req, &clamp, &lim, later);
	} else {
		st = deriv_serve(&req, &params, &lim, later);
	}
done:
	if (st == ST_NOT_MODIFIED && !resp.head_sent)
		st = ST_INTERNAL; /* every 304 is sent where it is decided */
	/* Nothing written yet (an original under STAGE_MAX): the error status still can be. */
	if (st != ST_OK && resp.head_sent && !resp.committed)
		resp_take_back(&resp);
	fail.st = st;
	if (st != ST_OK && !resp.head_sent)
		resp_error(&resp, &fail);
	bool aborted = st != ST_OK && resp.code == 200;
	if (aborted) {
		/* Too late for an error status: the client sees a short body. */
		struct buf late = BUF_INIT;
		const char *reason = failure_reason(&fail);
		buf_printf(&late, "failed after the response started (%d): %s", status_http(st),
			   reason ? reason : status_message(st));
		buf_free(&fail.detail);
		fail.detail = late;
	}
	log.detail = failure_reason(&fail);
	if (later->pending && (resp.code != 200 || st != ST_OK))
		deriv_free(later);
	resp_finish(&resp, aborted);
	log.status = resp.code;
	log.bytes = resp.bytes;
	log.total_ms = (long)(clock_mono_ms() - t0);
	reqlog_write(&log);
	if (app->state) {
		struct state_request r = {
		    .key_name = who && !(st == ST_FORBIDDEN) ? who->name : NULL,
		    .status = resp.code,
		    .bytes = resp.bytes,
		    .total_s = (double)(clock_mono_ms() - t0) / 1000,
		    .s3_s = log.s3_ms >= 0 ? (double)log.s3_ms / 1000 : -1,
		    .cache = cache_kind(log.cache),
		    .now_ms = clock_wall_ms(),
		    /* A health check must answer even when the lock is stuck. */
		    .no_wait = path && strcmp(path, PATH_RESERVED "health") == 0,
		};
		state_record(app->state, &r);
	}
	buf_free(&key);
	failure_free(&fail);
}

void handle_deferred(const struct app *app, struct deferred *later)
{
	deriv_write(app, later);
}

void handle_deferred_free(struct deferred *later)
{
	deriv_free(later);
}
