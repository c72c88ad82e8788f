/*
 * reqlog.h - the one log line per request, and other log lines.
 *
 * Lines go to stderr, which every supported web server keeps (lighttpd's
 * and Apache's error log, spawn-fcgi's terminal). Untrusted text (paths,
 * S3 codes) is escaped so a request cannot forge a log line. API keys and
 * secrets are never passed here.
 */
#ifndef IMGSVC_REQLOG_H
#define IMGSVC_REQLOG_H

struct reqlog {
	const char *key_name; /* NULL before authorisation */
	const char *method;
	const char *path;
	int status;
	long long bytes; /* body bytes sent */
	long s3_ms;      /* -1: S3 not asked */
	long img_ms;     /* -1: nothing decoded */
	long total_ms;
	const char *cache;  /* "hit", "miss" or NULL */
	const char *detail; /* why, for errors; NULL if none */
};

void reqlog_write(const struct reqlog *l);
/* A free-form line: "TIME imgsvc[PID] LEVEL: message". */
void log_msg(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
