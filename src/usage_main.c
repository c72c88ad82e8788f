/*
 * usage_main.c - imgsvc-usage: requests by status class and bytes sent, per
 * API key and UTC day, read from the host's state file (the usage report
 * API Gateway gives for its usage plans).
 *
 * Usage: imgsvc-usage [-c CONFIG | -s STATEFILE] [-k KEY]
 *                     [--from YYYY-MM-DD] [--to YYYY-MM-DD]
 *                     [--format table|csv|json]
 *
 * The state file is [limits] state_file of the config (-c, else
 * $IMGSVC_CONFIG, else the default config), or -s. Dates are UTC days, both
 * ends included; the default is today only. --from alone runs to today,
 * --to alone is that one day. Every key unless -k. "requests" counts every
 * status (1xx too); "429" is the part of 4xx refused by a usage plan.
 *
 * The file is only read: opened without creating it, and mapped read-only
 * (without taking the workers' lock) when it is not writable.
 *
 * Exit status: 0, 1 when the config or state file cannot be read, 2 on bad
 * arguments.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "json.h"
#include "plan.h"
#include "state.h"

enum format { FMT_TABLE, FMT_CSV, FMT_JSON };

struct rows {
	struct state_usage *v;
	size_t n, cap;
};

static void usage(FILE *to, int status)
{
	fputs("usage: imgsvc-usage [-c CONFIG | -s STATEFILE] [-k KEY] [--from YYYY-MM-DD]\n"
	      "                    [--to YYYY-MM-DD] [--format table|csv|json]\n"
	      "Requests by status class and bytes sent, per API key and UTC day.\n"
	      "Default: every key, today (UTC); --from alone runs to today.\n",
	      to);
	exit(status);
}

/* "YYYY-MM-DD" -> UTC days since the epoch; false unless a real date. */
static bool parse_date(const char *s, int64_t *days)
{
	int64_t y;
	int m, d, yy, mm, dd;
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	yy = atoi(s);
	mm = atoi(s + 5);
	dd = atoi(s + 8);
	if (mm < 1 || mm > 12 || dd < 1 || dd > 31)
		return false;
	*days = plan_days_from_civil(yy, mm, dd);
	plan_civil_from_days(*days, &y, &m, &d);
	return y == yy && m == mm && d == dd; /* 2023-02-29 comes back as Mar 1 */
}

static void format_date(int64_t days, char out[16])
{
	int64_t y;
	int m, d;
	plan_civil_from_days(days, &y, &m, &d);
	snprintf(out, 16, "%04" PRId64 "-%02d-%02d", y, m, d);
}

static void collect(const struct state_usage *row, void *ctx)
{
	struct rows *r = ctx;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->v = xrealloc(r->v, r->cap * sizeof *r->v);
	}
	r->v[r->n++] = *row;
}

/* The columns after key and date, in order, for every format. */
static const char *const columns[] = {"requests", "2xx", "3xx", "4xx", "5xx", "429", "bytes"};
#define N_COLUMNS (sizeof columns / sizeof columns[0])

static void values(const struct state_usage *u, int64_t v[N_COLUMNS])
{
	v[0] = u->requests[0];
	for (int c = 2; c <= 5; c++)
		v[c - 1] = u->requests[c];
	v[5] = u->limited;
	v[6] = u->bytes;
}

static void print_table(const struct rows *r)
{
	struct state_usage total = {.key_name = "TOTAL"};
	int64_t v[N_COLUMNS];
	char num[32], date[16];
	int kw = 3, w[N_COLUMNS];

	for (size_t i = 0; i < r->n; i++) {
		for (int c = 0; c < 6; c++)
			total.requests[c] += r->v[i].requests[c];
		total.bytes += r->v[i].bytes;
		total.limited += r->v[i].limited;
		int len = (int)strlen(r->v[i].key_name);
		kw = len > kw ? len : kw;
	}
	kw = kw < 5 ? 5 : kw;
	values(&total, v);
	for (size_t c = 0; c < N_COLUMNS; c++) {
		/* The total is the widest number of its column. */
		int len = snprintf(num, sizeof num, "%" PRId64, v[c]);
		w[c] = (int)strlen(columns[c]);
		w[c] = len > w[c] ? len : w[c];
	}
	printf("%-*s  %-10s", kw, "KEY", "DATE");
	for (size_t c = 0; c < N_COLUMNS; c++) {
		char head[16];
		snprintf(head, sizeof head, "%s", columns[c]);
		for (char *p = head; *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		printf("  %*s", w[c], head);
	}
	putchar('\n');
	for (size_t i = 0; i < r->n; i++) {
		format_date(r->v[i].day, date);
		printf("%-*s  %-10s", kw, r->v[i].key_name, date);
		values(&r->v[i], v);
		for (size_t c = 0; c < N_COLUMNS; c++)
			printf("  %*" PRId64, w[c], v[c]);
		putchar('\n');
	}
	printf("%-*s  %-10s", kw, "TOTAL", "");
	values(&total, v);
	for (size_t c = 0; c < N_COLUMNS; c++)
		printf("  %*" PRId64, w[c], v[c]);
	putchar('\n');
}

/* RFC 4180: quoted when it holds a comma, a quote or a line break. */
static void csv_field(const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (; *s; s++) {
		if (*s == '"')
			putchar('"');
		putchar(*s);
	}
	putchar('"');
}

static void print_csv(const struct rows *r)
{
	int64_t v[N_COLUMNS];
	char date[16];
	fputs("key,date", stdout);
	for (size_t c = 0; c < N_COLUMNS; c++)
		printf(",%s", columns[c]);
	putchar('\n');
	for (size_t i = 0; i < r->n; i++) {
		format_date(r->v[i].day, date);
		csv_field(r->v[i].key_name);
		printf(",%s", date);
		values(&r->v[i], v);
		for (size_t c = 0; c < N_COLUMNS; c++)
			printf(",%" PRId64, v[c]);
		putchar('\n');
	}
}

/* A JSON string literal on stdout (see json_append_string). */
static void json_string(const char *s)
{
	struct buf b = BUF_INIT;
	json_append_string(&b, s);
	fwrite(b.data, 1, b.len, stdout);
	buf_free(&b);
}

static void print_json(const struct rows *r)
{
	int64_t v[N_COLUMNS];
	char date[16];
	putchar('[');
	for (size_t i = 0; i < r->n; i++) {
		format_date(r->v[i].day, date);
		fputs(i ? ",\n {\"key\": " : "\n {\"key\": ", stdout);
		json_string(r->v[i].key_name);
		printf(", \"date\": \"%s\"", date);
		values(&r->v[i], v);
		for (size_t c = 0; c < N_COLUMNS; c++)
			printf(", \"%s\": %" PRId64, columns[c], v[c]);
		putchar('}');
	}
	fputs(r->n ? "\n]\n" : "]\n", stdout);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'}, {"state", required_argument, NULL, 's'},
	    {"key", required_argument, NULL, 'k'},    {"from", required_argument, NULL, 'F'},
	    {"to", required_argument, NULL, 'T'},     {"format", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	const char *config = NULL, *state_path = NULL, *key = NULL, *from_s = NULL, *to_s = NULL;
	enum format format = FMT_TABLE;
	int64_t from, to, today = (int64_t)time(NULL);
	struct cfg *cfg = NULL;
	struct rows rows = {0};
	char err[512];
	int opt;

	today = (today - (today % 86400 + 86400) % 86400) / 86400;
	while ((opt = getopt_long(argc, argv, "c:s:k:f:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 's':
			state_path = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'F':
			from_s = optarg;
			break;
		case 'T':
			to_s = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "table") == 0)
				format = FMT_TABLE;
			else if (strcmp(optarg, "csv") == 0)
				format = FMT_CSV;
			else if (strcmp(optarg, "json") == 0)
				format = FMT_JSON;
			else {
				fprintf(stderr,
					"imgsvc-usage: --format: '%s' is not table, csv or json\n",
					optarg);
				usage(stderr, 2);
			}
			break;
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, 2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "imgsvc-usage: unexpected argument '%s'\n", argv[optind]);
		usage(stderr, 2);
	}
	if (config && state_path) {
		fputs("imgsvc-usage: -c and -s exclude each other\n", stderr);
		usage(stderr, 2);
	}
	from = to = today;
	if (from_s && !parse_date(from_s, &from)) {
		fprintf(stderr, "imgsvc-usage: --from: '%s' is not a date (YYYY-MM-DD, UTC)\n",
			from_s);
		return 2;
	}
	if (to_s && !parse_date(to_s, &to)) {
		fprintf(stderr, "imgsvc-usage: --to: '%s' is not a date (YYYY-MM-DD, UTC)\n", to_s);
		return 2;
	}
	if (to_s && !from_s)
		from = to;
	if (from > to) {
		char a[16], b[16];
		format_date(from, a);
		format_date(to, b);
		fprintf(stderr, "imgsvc-usage: the range starts (%s) after it ends (%s)\n", a, b);
		return 2;
	}

	if (!state_path) {
		cfg = cfg_load(cfg_default_path(config), err, sizeof err);
		if (!cfg) {
			fprintf(stderr, "imgsvc-usage: %s\n", err);
			return 1;
		}
		state_path = cfg->limits.state_file;
	}
	struct state *s = state_open_report(state_path, err, sizeof err);
	if (!s) {
		fprintf(stderr, "imgsvc-usage: %s\n", err);
		cfg_free(cfg);
		return 1;
	}
	state_usage(s, key, from, to, collect, &rows);
	state_close(s);
	cfg_free(cfg);

	if (format == FMT_CSV)
		print_csv(&rows);
	else if (format == FMT_JSON)
		print_json(&rows);
	else
		print_table(&rows);
	free(rows.v);
	return fflush(stdout) == 0 ? 0 : 1;
}
