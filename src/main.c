/*
 * main.c - imgsvc start-up, the FastCGI accept loop, and shutdown.
 *
 * The web server (lighttpd bin-path, Apache mod_fcgid) or spawn-fcgi hands
 * imgsvc a listening socket as file descriptor 0. Start-up loads and checks
 * the whole configuration before the first accept: a bad file stops the
 * process with one message, never a half-configured server.
 *
 * A process serves [server] threads requests at once: each thread takes
 * its turn in FCGX_Accept_r, with its own S3 client (libcurl handles) and
 * Redis link; the configuration, the state file, the image slots, the S3
 * credentials, DNS cache and TLS sessions are shared. The main thread only waits for
 * SIGTERM (or SIGINT, SIGUSR1), then sets the stopping flag and wakes the
 * thread waiting for a request; every request in progress is finished first.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <fcgiapp.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "creds.h"
#include "handler.h"
#include "gate.h"
#include "heap.h"
#include "img.h"
#include "reqlog.h"
#include "s3.h"
#include "slots.h"
#include "state.h"
#ifdef HAVE_REDIS
#include "redislimit.h"
#endif

/* Set once to stop: by a signal (main thread) or an accept failure. */
static int stopping;

static bool is_stopping(void)
{
	return __atomic_load_n(&stopping, __ATOMIC_ACQUIRE) != 0;
}

static void stop_all(void)
{
	__atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
}

/*
 * SIGUSR2 only interrupts the thread waiting for a request (see
 * run_until_stopped): it has nothing to do but exist, without SA_RESTART.
 */
static void on_wake(int sig)
{
	(void)sig;
}

#ifdef IMGSVC_TEST_LEAK
/* configure --enable-test-leak: a block a request, written (so it is
 * resident) and lost, for the soak test to catch. */
static void test_leak(void)
{
	void *lost = malloc(IMGSVC_TEST_LEAK);
	if (lost)
		memset(lost, 0xA5, IMGSVC_TEST_LEAK);
	__asm__ volatile("" : : "r"(lost) : "memory"); /* kept from the optimiser */
}
#endif

static void usage(FILE *f)
{
	fputs("usage: imgsvc [-c FILE] [-t] [-V]\n"
	      "  -c FILE  configuration file (default: $IMGSVC_CONFIG, else " SYSCONFDIR
	      "/imgsvc/imgsvc.ini)\n"
	      "  -t       check the configuration and exit\n"
	      "  -V       print the version and exit\n"
	      "imgsvc is a FastCGI responder: run it from lighttpd (bin-path), Apache\n"
	      "mod_fcgid, or spawn-fcgi, which pass it a listening socket on stdin.\n",
	      f);
}

/*
 * The image slots: host-wide beside the state file, else this process's
 * own. false with a message on stderr.
 */
static bool open_slots(const struct cfg *cfg, int total, struct slots **out)
{
	char err[1024];
	struct buf path = BUF_INIT;
	if (*cfg->limits.state_file)
		buf_printf(&path, "%s.slots", cfg->limits.state_file);
	*out = slots_open(path.len ? path.data : NULL, total, err, sizeof err);
	if (!*out)
		fprintf(stderr, "imgsvc: %s: image slots (beside [limits] state_file): %s\n",
			cfg->path, err);
	buf_free(&path);
	return *out != NULL;
}

/* One serving thread: its own S3 client and Redis link. */
struct worker {
	pthread_t thread;
	struct app app; /* cfg, state and slots shared; s3 and redis its own */
	FCGX_Request rq;
	int in_accept; /* 1 while waiting for a request (atomic) */
	bool running;
};

/* One thread at a time waits for a request, as libfcgi's threaded example does. */
static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long served;

/*
 * The heap line counts every thread's allocations, so it is written only
 * at a moment when no request is in work: otherwise one request's buffers
 * would read as another's leak. in_flight counts the requests begun and
 * not ended, begun every one begun; a request begins before libfcgi
 * allocates for it (wait_for_request), so a count taken while both stay
 * unchanged and in_flight is 0 is the heap between requests. heap_due is
 * the request count at which a line fell due, 0 for none (all atomic).
 */
static unsigned long in_flight, begun;
static unsigned long long heap_due;

static void request_begins(void)
{
	__atomic_add_fetch(&begun, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&in_flight, 1, __ATOMIC_SEQ_CST);
}

/* Ends a request; writes the heap line when it is due and nothing is in work. */
static void request_ends(unsigned long long n, unsigned long long heap_every)
{
	if (heap_every && n % heap_every == 0)
		__atomic_store_n(&heap_due, n, __ATOMIC_SEQ_CST);
	if (__atomic_sub_fetch(&in_flight, 1, __ATOMIC_SEQ_CST) != 0 ||
	    __atomic_load_n(&heap_due, __ATOMIC_SEQ_CST) == 0)
		return;
	unsigned long b = __atomic_load_n(&begun, __ATOMIC_SEQ_CST);
	struct heap_usage u = heap_usage();
	if (__atomic_load_n(&begun, __ATOMIC_SEQ_CST) != b ||
	    __atomic_load_n(&in_flight, __ATOMIC_SEQ_CST) != 0)
		return; /* a request began meanwhile: the next quiet moment */
	unsigned long long due = __atomic_exchange_n(&heap_due, 0, __ATOMIC_SEQ_CST);
	if (due)
		heap_log_line(__atomic_load_n(&served, __ATOMIC_SEQ_CST), u);
}

/*
 * Waits until the next request can be read without blocking: a connection
 * on the listening socket, or the next records on a connection the web
 * server keeps open. 1 when ready; 0 when interrupted (SIGUSR2: stopping).
 */
static int wait_for_request(const FCGX_Request *rq)
{
	struct pollfd p = {rq->ipcFd >= 0 ? rq->ipcFd : rq->listen_sock, POLLIN, 0};
	if (poll(&p, 1, -1) > 0)
		return 1;
	return errno == EINTR ? 0 : -1;
}

/*
 * The next request into w->rq: 0, or -1 when stopping or the listening
 * socket failed. Only the wait is interruptible: once a connection is
 * accepted its request is read whole. The listening socket does not block
 * (main), so a connection another process took first is waited for again.
 */
static int next_request(struct worker *w)
{
	int rc = -1;

	pthread_mutex_lock(&accept_lock);
	while (!is_stopping()) {
		__atomic_store_n(&w->in_accept, 1, __ATOMIC_RELEASE);
		int ready = wait_for_request(&w->rq);
		__atomic_store_n(&w->in_accept, 0, __ATOMIC_RELEASE);
		if (ready == 0)
			continue;
		if (ready < 0)
			break;
		request_begins();
		rc = FCGX_Accept_r(&w->rq);
		if (rc >= 0)
			break;
		__atomic_sub_fetch(&in_flight, 1, __ATOMIC_SEQ_CST);
		if (rc != -EAGAIN && rc != -EWOULDBLOCK)
			break;
	}
	pthread_mutex_unlock(&accept_lock);
	return rc >= 0 ? 0 : -1;
}

static void *serve(void *arg)
{
	struct worker *w = arg;
	struct deferred later;
	unsigned long long heap_every = (unsigned long long)w->app.cfg->server.heap_log_every;
	sigset_t wake;

	sigemptyset(&wake);
	sigaddset(&wake, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	img_thread_init();
	while (!is_stopping()) {
		if (next_request(w) < 0) {
			/* The listening socket failed, or we are stopping: all stop. */
			stop_all();
			break;
		}
		handle_request(&w->app, &w->rq, &later);
		/* The response is complete for the web server before the cache write. */
		FCGX_Finish_r(&w->rq);
		handle_deferred(&w->app, &later);
		unsigned long long n = __atomic_add_fetch(&served, 1, __ATOMIC_SEQ_CST);
#ifdef IMGSVC_TEST_LEAK
		test_leak();
#endif
		request_ends(n, heap_every);
	}
	FCGX_Free(&w->rq, 1);
	return NULL;
}

/*
 * A thread's own S3 client and Redis link, over the process's credentials
 * and connection cache; false with a message on stderr.
 */
static bool worker_init(struct worker *w, const struct app *shared,
			struct creds_provider *creds, void *share)
{
	const struct cfg *cfg = shared->cfg;

	w->app = *shared;
	w->app.s3 = s3_client_new(&cfg->s3, creds, share);
	if (!w->app.s3) {
		fprintf(stderr, "imgsvc: cannot start libcurl\n");
		return false;
	}
#ifdef HAVE_REDIS
	if (cfg->limits.backend == CFG_BACKEND_REDIS) {
		struct redis_options ro = {cfg->limits.redis_host, (int)cfg->limits.redis_port,
					   cfg->limits.redis_password, cfg->limits.redis_prefix,
					   (long)cfg->limits.redis_timeout_ms};
		w->app.redis = redis_limiter_new(&ro);
	}
#endif
	/* The wait fails on EINTR, so SIGUSR2 gets a thread out of it. */
	if (FCGX_InitRequest(&w->rq, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		fprintf(stderr, "imgsvc: cannot initialise libfcgi\n");
		return false;
	}
	return true;
}

static void worker_free(struct worker *w)
{
#ifdef HAVE_REDIS
	redis_limiter_free(w->app.redis);
#endif
	s3_client_free(w->app.s3);
}

/*
 * Every thread blocks the stopping signals, which the main thread takes
 * with sigtimedwait; SIGPIPE is ignored (a client gone is a write error).
 */
static void block_signals(sigset_t *stop_set)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_wake;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(stop_set);
	sigaddset(stop_set, SIGTERM);
	sigaddset(stop_set, SIGINT);
	sigaddset(stop_set, SIGUSR1);
	sigset_t all = *stop_set;
	sigaddset(&all, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
}

/*
 * Waits for a stopping signal (or a thread that stopped everything), then
 * gets the thread waiting for a request out of it until every thread has ended:
 * a thread serving a request finishes it first, then sees the flag.
 */
static void run_until_stopped(struct worker *w, size_t n, const sigset_t *stop_set)
{
	struct timespec tick = {0, 200 * 1000000};
	int sig = -1;

	while (!is_stopping()) {
		sig = sigtimedwait(stop_set, NULL, &tick);
		if (sig > 0)
			break;
	}
	stop_all();
	FCGX_ShutdownPending();
	log_msg("info", "stopping%s: finishing the requests in flight",
		sig > 0 ? " on signal" : "");
	for (size_t i = 0; i < n; i++) {
		struct timespec again = {0, 20 * 1000000};
		while (pthread_tryjoin_np(w[i].thread, NULL) == EBUSY) {
			/* Whichever thread is waiting for a request is woken; the next to
			 * take the accept lock sees the flag. */
			for (size_t j = i; j < n; j++)
				if (__atomic_load_n(&w[j].in_accept, __ATOMIC_ACQUIRE))
					pthread_kill(w[j].thread, SIGUSR2);
			nanosleep(&again, NULL);
		}
		w[i].running = false;
	}
}

/* Damage the state file code finds, in the log like everything else. */
static void state_warning(const char *msg)
{
	log_msg("warning", "%s", msg);
}

int main(int argc, char **argv)
{
	const char *conf_arg = NULL;
	bool check_only = false;
	char err[1024];
	int opt, rc = 1;

	while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
		switch (opt) {
		case 'c':
			conf_arg = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'V':
			puts(PACKAGE_STRING);
#ifdef IMGSVC_SANITIZERS
			/* tests/lib.sh looks for this word. */
			puts("built with sanitizers (address, undefined): for testing only");
#endif
#ifdef IMGSVC_TSAN
			puts("built with sanitizers (thread): for testing only");
#endif
#ifdef IMGSVC_TEST_LEAK
			printf("built with a leak of %d bytes a request: for testing only\n",
			       IMGSVC_TEST_LEAK);
#endif
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	const char *path = cfg_default_path(conf_arg);
	struct cfg *cfg = cfg_load(path, err, sizeof err);
	if (!cfg) {
		fprintf(stderr, "imgsvc: configuration error: %s\n", err);
		return 1;
	}
	if (check_only) {
		/* The state file as a worker will open it: a worker that cannot
		 * exits, and the web server answers everything with its own 503. */
		char msg[1024] = "";
		if (*cfg->limits.state_file && state_check(cfg->limits.state_file, msg, sizeof msg) < 0) {
			fprintf(stderr, "imgsvc: %s: [limits] state_file: %s\n", path, msg);
			cfg_free(cfg);
			return 1;
		}
		if (msg[0])
			printf("imgsvc: %s: [limits] state_file: %s\n", path, msg);
		printf("imgsvc: %s: configuration OK (%zu API keys)\n", path, cfg->keys.n);
		cfg_free(cfg);
		return 0;
	}
	if (FCGX_IsCGI()) {
		fprintf(stderr, "imgsvc: standard input is not a FastCGI socket\n");
		usage(stderr);
		cfg_free(cfg);
		return 2;
	}

	/*
	 * Every request allocates and frees megabytes (the original, pixel
	 * caches). Above glibc's default threshold each would be a fresh mmap,
	 * page-faulted in and unmapped again per request; keeping them in the
	 * heap lets the next request reuse the same pages. RSS then stays at
	 * the high-water mark of one request instead of going up and down.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024);
	int image_workers = cfg->server.image_workers ? (int)cfg->server.image_workers
						       : slots_default_total();
	/* Images this process may have in work at once. */
	int local_images = image_workers < (int)cfg->server.threads ? image_workers
								   : (int)cfg->server.threads;
	/*
	 * glibc gives threads arenas of their own (up to 8 a core), and each
	 * would keep the high-water mark of the images worked in it: RSS would
	 * climb in steps as the threads took turns. One arena for all keeps
	 * it at the most images this process had in work at once (at most
	 * local_images); the threads' small allocations stay in their
	 * caches (tcache) without the arena's lock.
	 */
	mallopt(M_ARENA_MAX, 1);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct img_limits limits = {cfg->server.max_source_pixels > cfg->server.max_output_pixels
					? cfg->server.max_source_pixels
					: cfg->server.max_output_pixels,
				    cfg->server.max_image_memory, local_images};
	img_init(argv[0], &limits);
	struct creds_options copt = {
	    .access_key_id = cfg->s3.access_key_id,
	    .secret_access_key = cfg->s3.secret_access_key,
	    .session_token = cfg->s3.session_token,
	    .imds_enabled = cfg->s3.imds,
	    .timeout_ms = cfg->s3.connect_timeout_ms,
	    .refresh_margin_s = 300,
	};
	struct state *state = NULL;
	struct slots *slots = NULL;
	struct gate *sources = NULL;
	struct creds_provider *creds = NULL; /* one for all threads: fetched once */
	void *share = NULL;                  /* the threads' DNS cache and TLS sessions */
	size_t n_threads = (size_t)cfg->server.threads;
	struct worker *workers = xcalloc(n_threads, sizeof *workers);
	sigset_t stop_set;

	if (*cfg->limits.state_file) {
		state_set_warn(state_warning);
		state = state_open(cfg->limits.state_file, err, sizeof err);
		if (!state) {
			fprintf(stderr, "imgsvc: %s: [limits] state_file: %s\n", cfg->path, err);
			goto out;
		}
	}
	if (!open_slots(cfg, image_workers, &slots))
		goto out;
	if (FCGX_Init() != 0) {
		fprintf(stderr, "imgsvc: cannot initialise libfcgi\n");
		goto out;
	}
	/* Four originals in hand for each image this process can work on: one
	 * in work, the others on their way from S3 or waiting (see gate.h). */
	sources = gate_new(4 * local_images);
	struct app shared = {.cfg = cfg, .state = state, .sources = sources, .slots = slots};
	creds = creds_provider_new(&copt, err, sizeof err);
	if (!creds) {
		fprintf(stderr, "imgsvc: %s\n", err);
		goto out;
	}
	share = s3_share_new();
	for (size_t i = 0; i < n_threads; i++)
		if (!worker_init(&workers[i], &shared, creds, share))
			goto out;
	/* A connection that another process accepts first must not leave a
	 * thread blocked in accept() (next_request). */
	int fl = fcntl(0, F_GETFL);
	if (fl < 0 || fcntl(0, F_SETFL, fl | O_NONBLOCK) < 0) {
		fprintf(stderr, "imgsvc: the listening socket: %s\n", strerror(errno));
		goto out;
	}
	block_signals(&stop_set);
	for (size_t i = 0; i < n_threads; i++) {
		int e = pthread_create(&workers[i].thread, NULL, serve, &workers[i]);
		if (e) {
			fprintf(stderr, "imgsvc: cannot start a thread: %s\n", strerror(e));
			stop_all();
			break;
		}
		workers[i].running = true;
	}
	log_msg("info",
		"started: config %s, bucket %s, endpoint %s, %zu API keys, %zu threads, "
		"%d image slots%s",
		cfg->path, cfg->s3.bucket, *cfg->s3.endpoint ? cfg->s3.endpoint : "AWS",
		cfg->keys.n, n_threads, image_workers, state ? " (host-wide)" : " (this process)");
	size_t started = 0;
	while (started < n_threads && workers[started].running)
		started++;
	run_until_stopped(workers, started, &stop_set);
	rc = 0;
out:
	for (size_t i = 0; i < n_threads; i++)
		worker_free(&workers[i]);
	free(workers);
	s3_share_free(share);
	creds_provider_free(creds);
	gate_free(sources);
	slots_close(slots);
	state_close(state);
	img_shutdown();
	curl_global_cleanup();
	cfg_free(cfg);
	return rc;
}
