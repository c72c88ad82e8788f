/*
 * s3.c - GetObject, HeadObject and PutObject over libcurl (see s3.h).
 *
 * Every transfer runs on the client's one multi handle, so all of them
 * share its cache of kept-alive connections, and several operations can be
 * in flight at once in the calling thread (s3_request_all). Each
 * operation goes through its attempts on its own easy handle of a small pool.
 *
 * Each attempt signs afresh (the timestamp is part of the signature), runs
 * the transfer with the time left before the deadline, and classifies the
 * outcome: done, retry (500, 503, connection failure, expired temporary
 * credentials) or fail. A connection that breaks off in the body is
 * retried only when the sink can start over. Header and body callbacks
 * fill a per-attempt state; a 200's body goes straight to the sink, an
 * error's body is kept (up to a bound) to read S3's error code from.
 */
#include "s3.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "crypto.h"
#include "sigv4.h"

#define ERROR_BODY_MAX 16384
#define BACKOFF_BASE_MS 50
#define BACKOFF_CAP_MS 1000

struct s3_client {
	const struct cfg_s3 *cfg;
	struct creds_provider *creds;
	CURLM *multi;
	CURL *easy[S3_CONCURRENT_MAX];
	CURLSH *share; /* the process's DNS cache and TLS sessions; NULL: the handles' own */
	unsigned int seed;
};

/* The share handle's locks: one mutex per kind of data shared. */
struct share {
	CURLSH *sh;
	pthread_mutex_t lock[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
	(void)h;
	(void)access;
	pthread_mutex_lock(&((struct share *)ctx)->lock[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
	(void)h;
	pthread_mutex_unlock(&((struct share *)ctx)->lock[data]);
}

void *s3_share_new(void)
{
	struct share *s = xcalloc(1, sizeof *s);
	s->sh = curl_share_init();
	if (!s->sh) {
		free(s);
		return NULL;
	}
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&s->lock[i], NULL);
	curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s);
	/*
	 * Not the connection cache: libcurl does not support sharing
	 * connections between threads that run transfers at once (see
	 * CURLSHOPT_SHARE(3)); 7.88 then frees a connection one thread is
	 * still returning (valgrind in t0180 found it). Each thread's multi
	 * handle keeps its own connections alive instead.
	 */
	curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	return s;
}

void s3_share_free(void *share)
{
	struct share *s = share;
	if (!s)
		return;
	curl_share_cleanup(s->sh);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&s->lock[i]);
	free(s);
}

struct attempt {
	struct s3_sink *sink;
	long status;
	struct s3_object obj;
	bool head_sent;
	bool body_started;
	bool stopped;
	struct buf error_body;
};

enum outcome { DONE, RETRY, FAIL };

struct s3_client *s3_client_new(const struct cfg_s3 *cfg, struct creds_provider *creds, void *share)
{
	struct s3_client *c = xcalloc(1, sizeof *c);
	c->cfg = cfg;
	c->creds = creds;
	c->share = share ? ((struct share *)share)->sh : NULL;
	c->multi = curl_multi_init();
	bool ok = c->multi != NULL;
	for (size_t i = 0; i < S3_CONCURRENT_MAX; i++)
		ok = (c->easy[i] = curl_easy_init()) != NULL && ok;
	if (!ok) {
		s3_client_free(c);
		return NULL;
	}
	/* Each thread's client its own jitter. */
	c->seed =
	    (unsigned int)time(NULL) ^ ((unsigned int)getpid() << 16) ^ (unsigned int)(uintptr_t)c;
	return c;
}

void s3_client_free(struct s3_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < S3_CONCURRENT_MAX; i++)
		curl_easy_cleanup(c->easy[i]);
	curl_multi_cleanup(c->multi);
	free(c);
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
	struct attempt *a = userdata;
	size_t len = size * nmemb;

	s3_parse_header(line, len, &a->status, &a->obj);
	return len;
}

/* Calls the sink's on_head once; false when the sink wants to stop. */
static bool send_head(struct attempt *a)
{
	if (a->head_sent || !a->sink)
		return true;
	a->head_sent = true;
	if (a->sink->on_head(a->sink->ctx, &a->obj) != 0) {
		a->stopped = true;
		return false;
	}
	return true;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct attempt *a = userdata;
	size_t len = size * nmemb;

	if (a->status != 200 || !a->sink) {
		size_t room = ERROR_BODY_MAX - a->error_body.len;
		buf_append(&a->error_body, data, len < room ? len : room);
		return len;
	}
	if (!send_head(a))
		return 0;
	a->body_started = true;
	if (a->sink->on_data(a->sink->ctx, data, len) != 0) {
		a->stopped = true;
		return 0;
	}
	return len;
}

/*
 * Appends "name: value" (or a whole line when value is NULL) to a curl
 * header list. On an allocation failure the list is freed and left NULL,
 * and every later append fails too: a list missing its Authorization line
 * must never go out.
 */
static bool add_header(struct curl_slist **list, bool ok, const char *name, const char *value)
{
	if (!ok)
		return false;
	struct buf line = BUF_INIT;
	if (value)
		buf_printf(&line, "%s: %s", name, value);
	else
		buf_puts(&line, name);
	struct curl_slist *grown = curl_slist_append(*list, line.data);
	buf_free(&line);
	if (!grown) {
		curl_slist_free_all(*list);
		*list = NULL;
		return false;
	}
	*list = grown;
	return true;
}

/*
 * Signs op for the current time and credentials and returns every header
 * to send. SigV4 covers host, the payload hash, the date, the session token
 * and every x-amz-meta-* header; conditional and content-type headers ride
 * along unsigned, as S3 allows. NULL when the request cannot be signed
 * (credentials SigV4 refuses, such as an access key id holding '/', or
 * memory): the caller fails it rather than send it unsigned, which S3
 * would answer 403 as if the object were missing or forbidden.
 */
static struct curl_slist *sign(struct s3_client *c, const struct s3_op *op, const struct creds *cr,
			       const char *host, const char *canonical_uri,
			       const char *payload_hash)
{
	char amz_date[17];
	struct sigv4_header hdrs[7];
	size_t n = 0;
	struct sigv4_result sig;
	struct curl_slist *list = NULL;

	sigv4_amz_date((long long)time(NULL), amz_date);
	hdrs[n++] = (struct sigv4_header){"host", host};
	hdrs[n++] = (struct sigv4_header){"x-amz-content-sha256", payload_hash};
	hdrs[n++] = (struct sigv4_header){"x-amz-date", amz_date};
	if (op->variant)
		hdrs[n++] = (struct sigv4_header){"x-amz-meta-imgsvc-variant", op->variant};
	if (op->source_etag)
		hdrs[n++] = (struct sigv4_header){"x-amz-meta-source-etag", op->source_etag};
	if (op->source_last_modified && *op->source_last_modified)
		hdrs[n++] = (struct sigv4_header){"x-amz-meta-source-last-modified",
						  op->source_last_modified};
	if (cr->session_token && *cr->session_token)
		hdrs[n++] = (struct sigv4_header){"x-amz-security-token", cr->session_token};
	struct sigv4_request req = {op->method, canonical_uri, "", hdrs, n, payload_hash};
	struct sigv4_credentials sc = {cr->access_key_id, cr->secret_access_key, cr->session_token};
	bool ok = sigv4_sign(&req, &sc, c->cfg->region, "s3", amz_date, &sig) == 0 &&
		  sig.authorization.data;
	for (size_t i = 0; i < n; i++)
		ok = add_header(&list, ok, hdrs[i].name, hdrs[i].value);
	ok = add_header(&list, ok, "Authorization", ok ? sig.authorization.data : NULL);
	/* Drop the Accept header libcurl adds by default: nothing to negotiate. */
	ok = add_header(&list, ok, "Accept:", NULL);
	/* A PUT goes out at once, without waiting for 100 Continue. */
	ok = add_header(&list, ok, "Expect:", NULL);
	if (op->if_none_match)
		ok = add_header(&list, ok, "If-None-Match", op->if_none_match);
	if (op->if_modified_since)
		ok = add_header(&list, ok, "If-Modified-Since", op->if_modified_since);
	if (op->content_type)
		ok = add_header(&list, ok, "Content-Type", op->content_type);
	sigv4_result_free(&sig);
	if (!ok) {
		curl_slist_free_all(list);
		return NULL;
	}
	return list;
}

static bool is_connection_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

/* Decides what one attempt's outcome means; sets *st for DONE and FAIL. */
static enum outcome classify(struct s3_client *c, CURLcode rc, struct attempt *a,
			     struct s3_sink *sink, struct s3_result *res, enum status *st)
{
	res->http_status = a->status;
	if (rc == CURLE_WRITE_ERROR && a->stopped) {
		*st = sink->stop;
		return DONE;
	}
	if (rc != CURLE_OK) {
		snprintf(res->code, sizeof res->code, "curl: %s", curl_easy_strerror(rc));
		bool timeout = rc == CURLE_OPERATION_TIMEDOUT;
		*st = timeout ? ST_S3_TIMEOUT : ST_S3_ERROR;
		if (!timeout && !is_connection_error(rc))
			return FAIL;
		/*
		 * Body bytes already with the sink: a second try only if the sink
		 * can forget them (none has reached the client yet).
		 */
		if (a->body_started && (!sink->on_restart || sink->on_restart(sink->ctx) != 0))
			return FAIL;
		return RETRY;
	}
	if (a->status == 304) {
		*st = ST_NOT_MODIFIED;
		return DONE;
	}
	if (a->status == 200) {
		if (!send_head(a)) {
			*st = sink->stop;
			return DONE;
		}
		*st = ST_OK;
		return DONE;
	}
	/* A PUT may be answered 201 or 204 by S3-compatible stores. */
	if (!sink && a->status >= 200 && a->status < 300) {
		*st = ST_OK;
		return DONE;
	}
	s3_error_code(a->error_body.data, a->error_body.len, res->code, sizeof res->code);
	*st = ST_S3_ERROR;
	switch (a->status) {
	case 404:
		if (strcmp(res->code, "NoSuchBucket") != 0)
			*st = ST_NOT_FOUND;
		return FAIL;
	case 403:
		/* Without s3:ListBucket, S3 says AccessDenied for a missing key. */
		if (strcmp(res->code, "AccessDenied") == 0) {
			*st = ST_NOT_FOUND;
			return FAIL;
		}
		if (strcmp(res->code, "ExpiredToken") == 0 ||
		    strcmp(res->code, "InvalidToken") == 0) {
			creds_invalidate(c->creds);
			return RETRY;
		}
		return FAIL;
	case 400:
		if (strcmp(res->code, "ExpiredToken") == 0 ||
		    strcmp(res->code, "RequestTimeout") == 0) {
			if (res->code[0] == 'E')
				creds_invalidate(c->creds);
			return RETRY;
		}
		return FAIL;
	case 500:
	case 502:
	case 503:
	case 504:
		return RETRY;
	default:
		if (!res->code[0])
			snprintf(res->code, sizeof res->code, "HTTP %ld", a->status);
		return FAIL;
	}
}

static void setup_handle(struct s3_client *c, CURL *h, const struct s3_op *op, const char *url,
			 struct curl_slist *hdrs, struct attempt *a, long long remaining)
{
	curl_easy_reset(h);
	if (c->share)
		curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_URL, url);
	if (strcmp(op->method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (strcmp(op->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, op->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)op->body_len);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* The key is signed exactly as sent: curl must not squash "/./" or "/../". */
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	/* CURLOPT_PROTOCOLS_STR exists from libcurl 7.85; configure accepts 7.68. */
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	/* Fewer, larger writes into the sink: originals are megabytes. */
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
	long connect_ms =
	    (long)(c->cfg->connect_timeout_ms < remaining ? c->cfg->connect_timeout_ms : remaining);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)remaining);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->cfg->verify_tls ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->cfg->verify_tls ? 2L : 0L);
	if (*c->cfg->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cfg->ca_file);
}

/*
 * "Equal jitter": half of an exponentially growing cap, plus a random part
 * up to the other half. The random part spreads the workers' retries; the
 * fixed half makes sure a SlowDown is answered by slowing down, never by
 * an immediate second try (full jitter may wait 0 ms).
 */
static long backoff_ms(struct s3_client *c, int attempt)
{
	long cap = BACKOFF_BASE_MS << (attempt < 5 ? attempt : 5);
	if (cap > BACKOFF_CAP_MS)
		cap = BACKOFF_CAP_MS;
	return cap / 2 + (long)(rand_r(&c->seed) % (unsigned long)(cap / 2 + 1));
}

/* One operation on its way through its attempts. */
struct run {
	const struct s3_op *op;
	struct s3_result *res;
	CURL *h;
	struct buf url, host, uri;
	char payload_hash[SHA256_HEX_LEN + 1];
	long long start, deadline;
	long long next_at; /* when the next attempt may start */
	int tries;         /* attempts begun or given up before beginning */
	bool running, done;
	struct attempt a;
	struct curl_slist *hdrs;
};

static void run_init(struct s3_client *c, struct run *r, const struct s3_op *op,
		     struct s3_result *res, CURL *h, long long now)
{
	memset(r, 0, sizeof *r);
	memset(res, 0, sizeof *res);
	r->op = op;
	r->res = res;
	r->h = h;
	r->start = r->next_at = now;
	r->deadline = op->deadline ? op->deadline : now + c->cfg->timeout_ms;
	res->status = ST_S3_ERROR;
	snprintf(r->payload_hash, sizeof r->payload_hash, "%s", SIGV4_EMPTY_SHA256);
	if (op->body) {
		unsigned char d[SHA256_LEN];
		crypto_sha256(op->body, op->body_len, d);
		crypto_hex(d, SHA256_LEN, r->payload_hash);
	}
	s3_build_url(c->cfg, op->key, &r->url, &r->host, &r->uri);
}

static void run_end(struct run *r)
{
	r->done = true;
	r->res->ms = (long)(clock_mono_ms() - r->start);
	buf_free(&r->url);
	buf_free(&r->host);
	buf_free(&r->uri);
}

/* Signs and starts the next attempt, or ends the run when time is up. */
static void run_start(struct s3_client *c, struct run *r)
{
	struct s3_result *res = r->res;
	long long remaining = r->deadline - clock_mono_ms();

	if (remaining <= 0) {
		if (!res->code[0])
			snprintf(res->code, sizeof res->code, "deadline passed");
		res->status = ST_S3_TIMEOUT;
		run_end(r);
		return;
	}
	struct creds cr;
	if (!creds_take(c->creds, time(NULL), (long)remaining, &cr, res->detail,
			sizeof res->detail)) {
		snprintf(res->code, sizeof res->code, "NoCredentials");
		res->status = ST_S3_ERROR;
		run_end(r);
		return;
	}
	/* Fetching credentials may have taken time of its own. */
	remaining = r->deadline - clock_mono_ms();
	if (remaining <= 0) {
		creds_release(&cr);
		res->status = ST_S3_TIMEOUT;
		run_end(r);
		return;
	}
	r->a = (struct attempt){.sink = r->op->sink, .obj = {.content_length = -1}};
	r->hdrs = sign(c, r->op, &cr, r->host.data, r->uri.data, r->payload_hash);
	if (!r->hdrs) {
		/* Not sent at all: S3's 403 to an unsigned request would read as a 404. */
		snprintf(res->code, sizeof res->code, "SigningFailed");
		snprintf(res->detail, sizeof res->detail,
			 "cannot sign the request with the credentials from %s (access key id "
			 "%s): SigV4 refuses an empty secret, an access key id holding '/', or "
			 "memory ran out",
			 cr.source ? cr.source : "?",
			 cr.access_key_id ? cr.access_key_id : "-");
		creds_release(&cr);
		/* Fetched again next time: temporary ones may come back fit. */
		creds_invalidate(c->creds);
		res->status = ST_INTERNAL;
		run_end(r);
		return;
	}
	creds_release(&cr);
	setup_handle(c, r->h, r->op, r->url.data, r->hdrs, &r->a, remaining);
	res->attempts++;
	r->tries++;
	r->running = true;
	curl_multi_add_handle(c->multi, r->h);
}

/* Takes the attempt's transfer off the multi handle and frees what it held. */
static void attempt_end(struct s3_client *c, struct run *r)
{
	curl_multi_remove_handle(c->multi, r->h);
	r->running = false;
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
	buf_free(&r->a.error_body);
}

/* Stops a run whose result is no longer wanted, in flight or between attempts. */
static void run_abandon(struct s3_client *c, struct run *r)
{
	if (r->running)
		attempt_end(c, r);
	r->res->status = ST_S3_ERROR;
	snprintf(r->res->code, sizeof r->res->code, "abandoned");
	run_end(r);
}

/* Judges a finished attempt: the run ends, or a retry waits its backoff. */
static void run_finish(struct s3_client *c, struct run *r, CURLcode rc)
{
	struct s3_result *res = r->res;

	enum outcome o = classify(c, rc, &r->a, r->op->sink, res, &res->status);
	res->body_started = r->a.body_started;
	res->obj = r->a.obj;
	attempt_end(c, r);
	if (o != RETRY) {
		run_end(r);
		return;
	}
	int i = r->tries - 1;
	long wait = backoff_ms(c, i);
	long long now = clock_mono_ms();
	if (i == c->cfg->retries || now + wait >= r->deadline) {
		run_end(r);
		return;
	}
	r->next_at = now + wait;
}

/*
 * A lead that ended other than ST_OK (an answer, or no attempt possible)
 * makes the others pointless: they stop at once.
 */
static void stop_unneeded(struct s3_client *c, struct run *runs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!runs[i].done || !runs[i].op->lead || runs[i].res->status == ST_OK)
			continue;
		for (size_t j = 0; j < n; j++)
			if (!runs[j].done)
				run_abandon(c, &runs[j]);
		return;
	}
}

void s3_request_all(struct s3_client *c, const struct s3_op *ops, struct s3_result *res, size_t n)
{
	struct run runs[S3_CONCURRENT_MAX];
	long long now = clock_mono_ms();

	if (n > S3_CONCURRENT_MAX)
		n = S3_CONCURRENT_MAX;
	for (size_t i = 0; i < n; i++)
		run_init(c, &runs[i], &ops[i], &res[i], c->easy[i], now);
	for (;;) {
		/* Start what is due, and find when the next waiting retry is. */
		bool pending = false, running = false;
		long long wake = 0;
		now = clock_mono_ms();
		for (size_t i = 0; i < n; i++)
			if (!runs[i].done && !runs[i].running && runs[i].next_at <= now)
				run_start(c, &runs[i]);
		stop_unneeded(c, runs, n);
		for (size_t i = 0; i < n; i++) {
			struct run *r = &runs[i];
			if (r->done)
				continue;
			pending = true;
			running = running || r->running;
			if (!r->running && (!wake || r->next_at < wake))
				wake = r->next_at;
		}
		if (!pending)
			break;
		int still = 0;
		curl_multi_perform(c->multi, &still);
		CURLMsg *msg;
		int queued;
		bool finished = false;
		while ((msg = curl_multi_info_read(c->multi, &queued))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			for (size_t i = 0; i < n; i++)
				if (runs[i].running && runs[i].h == msg->easy_handle) {
					run_finish(c, &runs[i], msg->data.result);
					finished = true;
				}
		}
		if (finished)
			continue;
		/* Sleep until a transfer has news, or a retry is due. */
		long long until = wake ? wake - clock_mono_ms() : 1000;
		if (until > 1000 || (!wake && running))
			until = 1000;
		if (until > 0)
			curl_multi_poll(c->multi, NULL, 0, (int)until, NULL);
	}
}

enum status s3_request(struct s3_client *c, const struct s3_op *op, struct s3_result *res)
{
	s3_request_all(c, op, res, 1);
	return res->status;
}
