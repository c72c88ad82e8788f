/*
 * main.c - imgsvc start-up, the FastCGI accept loop, and shutdown.
 *
 * The web server (lighttpd bin-path, Apache mod_fcgid) or spawn-fcgi hands
 * imgsvc a listening socket as file descriptor 0. Start-up loads and checks
 * the whole configuration before the first accept: a bad file stops the
 * process with one message, never a half-configured server. SIGTERM sets a
 * flag and wakes accept(); a request in progress is finished first.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcgiapp.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "creds.h"
#include "handler.h"
#include "heap.h"
#include "img.h"
#include "reqlog.h"
#include "s3.h"
#include "state.h"
#ifdef HAVE_REDIS
#include "redislimit.h"
#endif

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
	FCGX_ShutdownPending();
}

#ifdef IMGSVC_TEST_LEAK
/* configure --enable-test-leak: a block a request, written (so it is
 * resident) and lost, for the soak test to catch. */
static void test_leak(void)
{
	static void *volatile lost;
	lost = malloc(IMGSVC_TEST_LEAK);
	if (lost)
		memset(lost, 0xA5, IMGSVC_TEST_LEAK);
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

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: accept() must return so the loop sees the flag. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
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
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct img_limits limits = {cfg->server.max_source_pixels};
	img_init(argv[0], &limits);
	struct creds_options copt = {
	    .access_key_id = cfg->s3.access_key_id,
	    .secret_access_key = cfg->s3.secret_access_key,
	    .session_token = cfg->s3.session_token,
	    .imds_enabled = cfg->s3.imds,
	    .timeout_ms = cfg->s3.connect_timeout_ms,
	    .refresh_margin_s = 300,
	};
	struct creds_provider *creds = creds_provider_new(&copt, err, sizeof err);
	struct s3_client *s3 = creds ? s3_client_new(&cfg->s3, creds) : NULL;
	struct state *state = NULL;
	struct redis_limiter *redis = NULL;
	FCGX_Request rq;

	if (!creds || !s3) {
		fprintf(stderr, "imgsvc: %s\n", creds ? "cannot start libcurl" : err);
		goto out;
	}
	if (*cfg->limits.state_file) {
		state = state_open(cfg->limits.state_file, err, sizeof err);
		if (!state) {
			fprintf(stderr, "imgsvc: %s: [limits] state_file: %s\n", cfg->path, err);
			goto out;
		}
	}
#ifdef HAVE_REDIS
	if (cfg->limits.backend == CFG_BACKEND_REDIS) {
		struct redis_options ro = {cfg->limits.redis_host, (int)cfg->limits.redis_port,
					   cfg->limits.redis_password, cfg->limits.redis_prefix,
					   (long)cfg->limits.redis_timeout_ms};
		redis = redis_limiter_new(&ro);
	}
#endif
	if (FCGX_Init() != 0 || FCGX_InitRequest(&rq, 0, 0) != 0) {
		fprintf(stderr, "imgsvc: cannot initialise libfcgi\n");
		goto out;
	}
	install_signals();
	log_msg("info", "started: config %s, bucket %s, endpoint %s, %zu API keys", cfg->path,
		cfg->s3.bucket, *cfg->s3.endpoint ? cfg->s3.endpoint : "AWS", cfg->keys.n);

	struct app app = {cfg, s3, state, redis};
	struct deferred later;
	unsigned long long served = 0, heap_every = (unsigned long long)cfg->server.heap_log_every;
	while (!stopping) {
		if (FCGX_Accept_r(&rq) < 0)
			break;
		handle_request(&app, &rq, &later);
		/* The response is complete for the web server before the cache write. */
		FCGX_Finish_r(&rq);
		handle_deferred(&app, &later);
		served++;
#ifdef IMGSVC_TEST_LEAK
		test_leak();
#endif
		/* Between requests: what is in use now outlives every request. */
		if (heap_every && served % heap_every == 0)
			heap_log_line(served);
	}
	FCGX_Free(&rq, 1);
	log_msg("info", "stopping%s", stopping ? " on signal" : "");
	rc = 0;
out:
#ifdef HAVE_REDIS
	redis_limiter_free(redis);
#endif
	state_close(state);
	s3_client_free(s3);
	creds_provider_free(creds);
	img_shutdown();
	curl_global_cleanup();
	cfg_free(cfg);
	return rc;
}
