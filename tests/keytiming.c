/*
 * keytiming.c - does refusing a wrong API key take longer the more of a
 * configured key it matches? (t0405-key-timing.sh)
 *
 * For each key length given, a table of four keys is built as the
 * configuration would (auth_add with SHA-256 digests), and four wrong keys
 * are presented: one differing from a configured key in its first byte,
 * one in the middle byte, one in the last byte, and one a byte shorter
 * (the key without its last byte); and a fifth, as long as that one but
 * differing in its first byte too, to compare it with.
 * Each is checked with the project's auth_check and, for comparison, with
 * a naive check that compares the raw keys byte by byte and stops at the
 * first difference (what memcmp-style code does). Samples are batches of
 * calls timed with CLOCK_MONOTONIC, taken round after round with the eight
 * (check, key) pairs in a new random order each round, so that load from
 * other processes falls on all of them alike. Per pair: the median and the
 * 10% trimmed mean of the per-call time.
 *
 * The spread of a check is the largest minus the smallest median over the
 * wrong keys of the same length (the first three; the last two), the
 * larger of the two: what a wrong key shares with a configured one must
 * not show, but the time to hash the presented key depends on its own
 * length, which its sender knows (SHA-256 of 63 bytes and of 64 differ by
 * a few percent), and tells nothing about the configured keys. The naive
 * check shows both: its time grows with the prefix it matches, and a
 * shorter key is refused at once. auth_check passes when its spread stays within the
 * bound (PERCENT of its own median, -p); the bound means something only
 * where the naive check's spread exceeds it, which the program reports per
 * length and requires at the longest length given.
 *
 * usage: keytiming [-r ROUNDS] [-p PERCENT] [-s SAMPLE_US] LEN...
 * Prints a table; exits 0 when auth_check is within the bound at every
 * length and the naive check exceeds it at the longest, else 1.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "crypto.h"

#define NKEYS 4
#define NCAND 5

static const char *const cand_names[NCAND] = {"first byte", "middle byte", "last byte",
					      "a byte shorter", "shorter, first byte"};
/* Candidates of one length are compared with each other. */
static const int cand_group[NCAND] = {0, 0, 0, 1, 1};

struct raw_table {
	char *keys[NKEYS];
	size_t lens[NKEYS];
};

static volatile int sink;

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The comparison this program exists to tell apart from auth_check. */
__attribute__((noinline)) static bool naive_check(const struct raw_table *t, const char *key,
						  size_t len)
{
	for (int k = 0; k < NKEYS; k++) {
		if (t->lens[k] != len)
			continue;
		size_t i = 0;
		while (i < len && t->keys[k][i] == key[i])
			i++;
		if (i == len)
			return true;
	}
	return false;
}

struct bench {
	const struct auth_table *auth;
	const struct raw_table *raw;
	char *cands[NCAND];
	size_t cand_lens[NCAND];
	long batch[2];
};

/* Mean ns per call of BATCH calls of one check on one candidate. */
static double sample(const struct bench *b, int check, int cand, long batch)
{
	const char *volatile key = b->cands[cand];
	const struct auth_key *who;
	long long t0 = now_ns();
	for (long i = 0; i < batch; i++) {
		if (check == 0)
			sink += auth_check(b->auth, key, &who);
		else
			sink += naive_check(b->raw, key, b->cand_lens[cand]);
		__asm__ volatile("" ::: "memory");
	}
	return (double)(now_ns() - t0) / (double)batch;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void stats(double *v, int n, double *median, double *trimmed)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	*median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	int cut = n / 10;
	double sum = 0;
	for (int i = cut; i < n - cut; i++)
		sum += v[i];
	*trimmed = sum / (n - 2 * cut);
}

static void random_key(char *out, size_t len)
{
	static const char chars[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	for (size_t i = 0; i < len; i++)
		out[i] = chars[rand() % (int)(sizeof chars - 1)];
	out[len] = '\0';
}

/* One key length: returns the spreads and the bound through the pointers. */
static void run_length(size_t len, int rounds, double percent, long sample_us, double *auth_spread,
		       double *naive_spread, double *bound)
{
	struct auth_table auth = {0};
	struct raw_table raw;
	struct bench b = {.auth = &auth, .raw = &raw};
	unsigned char digest[SHA256_LEN];
	char name[16];

	for (int k = 0; k < NKEYS; k++) {
		raw.keys[k] = malloc(len + 1);
		random_key(raw.keys[k], len);
		raw.lens[k] = len;
		crypto_sha256(raw.keys[k], len, digest);
		snprintf(name, sizeof name, "key%d", k);
		auth_add(&auth, name, digest, true);
	}
	/* Wrong keys against the last entry, so the naive check visits all. */
	const char *target = raw.keys[NKEYS - 1];
	size_t at[3] = {0, len / 2, len - 1};
	for (int c = 0; c < 3; c++) {
		b.cands[c] = strdup(target);
		b.cands[c][at[c]] = b.cands[c][at[c]] == 'x' ? 'y' : 'x';
		b.cand_lens[c] = len;
	}
	b.cands[3] = strndup(target, len - 1);
	b.cand_lens[3] = len - 1;
	b.cands[4] = strndup(target, len - 1);
	b.cands[4][0] = b.cands[4][0] == 'x' ? 'y' : 'x';
	b.cand_lens[4] = len - 1;

	/* Batches of about sample_us each, from a first rough timing. */
	for (int check = 0; check < 2; check++) {
		double per = sample(&b, check, 2, 1000);
		long n = (long)((double)sample_us * 1000.0 / (per > 0.5 ? per : 0.5));
		b.batch[check] = n < 1 ? 1 : n;
	}
	double *times[2][NCAND];
	for (int check = 0; check < 2; check++)
		for (int c = 0; c < NCAND; c++)
			times[check][c] = malloc(sizeof(double) * (size_t)rounds);
	int order[2 * NCAND];
	for (int i = 0; i < 2 * NCAND; i++)
		order[i] = i;
	for (int r = 0; r < rounds; r++) {
		for (int i = 2 * NCAND - 1; i > 0; i--) {
			int j = rand() % (i + 1), tmp = order[i];
			order[i] = order[j];
			order[j] = tmp;
		}
		for (int i = 0; i < 2 * NCAND; i++) {
			int check = order[i] / NCAND, c = order[i] % NCAND;
			times[check][c][r] = sample(&b, check, c, b.batch[check]);
		}
	}

	static const char *const check_names[2] = {"auth_check", "naive compare"};
	double spread[2];
	for (int check = 0; check < 2; check++) {
		double med[NCAND], trim[NCAND], lo[2] = {0, 0}, hi[2] = {0, 0};
		bool seen[2] = {false, false};
		for (int c = 0; c < NCAND; c++) {
			int g = cand_group[c];
			stats(times[check][c], rounds, &med[c], &trim[c]);
			lo[g] = !seen[g] || med[c] < lo[g] ? med[c] : lo[g];
			hi[g] = !seen[g] || med[c] > hi[g] ? med[c] : hi[g];
			seen[g] = true;
		}
		spread[check] = hi[0] - lo[0] > hi[1] - lo[1] ? hi[0] - lo[0] : hi[1] - lo[1];
		if (check == 0)
			*bound = (lo[0] < lo[1] ? lo[0] : lo[1]) * percent / 100.0;
		printf("len %5zu  %-13s", len, check_names[check]);
		for (int c = 0; c < NCAND; c++)
			printf("  %s %.1f/%.1f", cand_names[c], med[c], trim[c]);
		printf("  spread %.1f ns\n", spread[check]);
		for (int c = 0; c < NCAND; c++)
			free(times[check][c]);
	}
	*auth_spread = spread[0];
	*naive_spread = spread[1];
	for (int k = 0; k < NKEYS; k++)
		free(raw.keys[k]);
	for (int c = 0; c < NCAND; c++)
		free(b.cands[c]);
	auth_table_free(&auth);
}

int main(int argc, char **argv)
{
	int rounds = 301, opt;
	double percent = 3.0;
	long sample_us = 100;

	while ((opt = getopt(argc, argv, "r:p:s:")) != -1) {
		switch (opt) {
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'p':
			percent = atof(optarg);
			break;
		case 's':
			sample_us = atol(optarg);
			break;
		default:
			optind = argc; /* to the usage message below */
			break;
		}
	}
	if (optind == argc || rounds < 11) {
		fprintf(stderr,
			"usage: keytiming [-r ROUNDS] [-p PERCENT] [-s SAMPLE_US] LEN...\n");
		return 2;
	}
	srand(4242);
	printf(
	    "per-call ns, median/10%%-trimmed mean over %d rounds; wrong key differs in its ...\n",
	    rounds);
	bool ok = true, naive_long = false;
	for (int i = optind; i < argc; i++) {
		size_t len = (size_t)atol(argv[i]);
		double auth_spread, naive_spread, bound;
		if (len < 2) {
			fprintf(stderr, "keytiming: key length %zu is too short\n", len);
			return 2;
		}
		run_length(len, rounds, percent, sample_us, &auth_spread, &naive_spread, &bound);
		bool auth_ok = auth_spread <= bound, naive_over = naive_spread > bound;
		printf("RESULT len=%zu auth_spread_ns=%.1f naive_spread_ns=%.1f bound_ns=%.1f "
		       "auth_within=%s naive_exceeds=%s\n",
		       len, auth_spread, naive_spread, bound, auth_ok ? "yes" : "NO",
		       naive_over ? "yes" : "no");
		ok = ok && auth_ok;
		if (i == argc - 1)
			naive_long = naive_over;
	}
	if (!naive_long)
		printf("the naive compare stayed within the bound at the longest length: "
		       "the bound proves nothing; use longer keys or more rounds\n");
	return ok && naive_long ? 0 : 1;
}
