/*
 * unit_config.c - configuration loading: defaults, every kind of error and
 * the message that names file, section, key and problem.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "probe.h"
#include "unit.h"

static char tmpl[] = "/tmp/imgsvc-unit-XXXXXX";
static char dir[64];

static const char good[] = "[s3]\n"
			   "bucket = photos\n"
			   "endpoint = http://127.0.0.1:9000/\n"
			   "[key web]\n"
			   "key = \"a key; with # and spaces\"\n";

static const char *write_file(const char *name, const char *text)
{
	static char path[128];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

/* Loads text and expects failure with every part of want in the message. */
static void expect_error(const char *label, const char *text, const char *want1, const char *want2)
{
	char err[512] = "";
	const char *path = write_file("bad.ini", text);
	struct cfg *cfg = cfg_load(path, err, sizeof err);
	bool ok = !cfg && strstr(err, path) && strstr(err, want1) && (!want2 || strstr(err, want2));
	CHECK(ok, "config error: %s -> %s", label, err);
	cfg_free(cfg);
}

void unit_config(void)
{
	char err[512] = "";
	struct buf text = BUF_INIT;

	snprintf(dir, sizeof dir, "%s", mkdtemp(tmpl));
	struct cfg *cfg = cfg_load(write_file("good.ini", good), err, sizeof err);
	CHECK(cfg != NULL, "minimal config loads (%s)", err);
	if (cfg) {
		CHECK(cfg->server.max_width == 2000, "max_width defaults to 2000");
		CHECK(cfg->server.heap_log_every == 0, "heap_log_every defaults to 0 (off)");
		CHECK(cfg->server.threads == 16, "threads defaults to 16");
		CHECK(cfg->server.image_workers == 0, "image_workers defaults to 0 (one per core)");
		CHECK(strcmp(cfg->s3.region, "us-east-1") == 0, "region defaults to us-east-1");
		CHECK(strcmp(cfg->s3.originals_prefix, "original-images/") == 0,
		      "originals_prefix defaults to original-images/");
		CHECK(strcmp(cfg->s3.endpoint, "http://127.0.0.1:9000") == 0,
		      "trailing slash of endpoint dropped");
		CHECK(cfg->s3.addressing == CFG_ADDR_AUTO && cfg->s3.retries == 2 &&
			  cfg->s3.timeout_ms == 10000 && cfg->s3.imds,
		      "s3 defaults");
		CHECK(cfg->keys.n == 1 && strcmp(cfg->keys.keys[0].name, "web") == 0 &&
			  cfg->keys.keys[0].enabled,
		      "one enabled key named web");
		const struct auth_key *k;
		CHECK(auth_check(&cfg->keys, "a key; with # and spaces", &k) == AUTH_OK,
		      "quoted key with ';' '#' and spaces kept whole");
	}
	cfg_free(cfg);

	/* The sample config shipped in etc/ must load as it is. */
	const char *srcdir = getenv("srcdir");
	buf_printf(&text, "%s/etc/imgsvc.ini.sample", srcdir ? srcdir : ".");
	cfg = cfg_load(text.data, err, sizeof err);
	CHECK(cfg != NULL, "etc/imgsvc.ini.sample loads (%s)", cfg ? "ok" : err);
	cfg_free(cfg);
	buf_free(&text);

	cfg = cfg_load("/nonexistent/imgsvc.ini", err, sizeof err);
	CHECK(!cfg && strstr(err, "/nonexistent/imgsvc.ini") && strstr(err, "cannot open"),
	      "missing file named in error: %s", err);

	expect_error("unknown section", "[s4]\nbucket=x\n", "[s4]", "unknown section");
	expect_error("unknown key", "[s3]\nbucket=x\nbukket=y\n[key a]\nkey=12345678\n",
		     "[s3] bukket", "unknown key");
	expect_error("key outside a section", "bucket=x\n[s3]\nbucket=x\n[key a]\nkey=12345678\n",
		     "bucket", "outside any section");
	expect_error("missing bucket", "[server]\nmax_width=10\n[key a]\nkey=12345678\n",
		     "[s3] bucket", "required");
	expect_error("bad number",
		     "[s3]\nbucket=x\n[server]\nmax_width=wide\n[key a]\nkey=12345678\n",
		     "[server] max_width", "whole number");
	expect_error("negative number", "[s3]\nbucket=x\ntimeout_ms=-5\n[key a]\nkey=12345678\n",
		     "[s3] timeout_ms", "-5");
	expect_error("number with junk", "[s3]\nbucket=x\nretries=2x\n[key a]\nkey=12345678\n",
		     "[s3] retries", "2x");
	expect_error("bad bool", "[s3]\nbucket=x\nimds=perhaps\n[key a]\nkey=12345678\n",
		     "[s3] imds", "yes or no");
	expect_error("bad addressing", "[s3]\nbucket=x\naddressing=dns\n[key a]\nkey=12345678\n",
		     "[s3] addressing", "dns");
	expect_error("bad endpoint", "[s3]\nbucket=x\nendpoint=ftp://h\n[key a]\nkey=12345678\n",
		     "[s3] endpoint", "http://");
	expect_error("bad bucket", "[s3]\nbucket=a/b\n[key a]\nkey=12345678\n", "[s3] bucket",
		     "not a valid");
	expect_error("half credentials",
		     "[s3]\nbucket=x\naccess_key_id=AK\n[key a]\nkey=12345678\n",
		     "secret_access_key", "together");
	expect_error(
	    "timeouts out of order",
	    "[s3]\nbucket=x\nconnect_timeout_ms=5000\ntimeout_ms=1000\n[key a]\nkey=12345678\n",
	    "connect_timeout_ms", "larger");
	expect_error("no keys", "[s3]\nbucket=x\n", "at least one API key", NULL);
	expect_error("key and sha256", "[s3]\nbucket=x\n[key a]\nkey=12345678\nsha256=00\n",
		     "[key a]", "exactly one");
	expect_error("neither key nor sha256", "[s3]\nbucket=x\n[key a]\nenabled=yes\n", "[key a]",
		     "exactly one");
	expect_error("short key", "[s3]\nbucket=x\n[key a]\nkey=short\n", "[key a] key",
		     "8 characters");
	expect_error("bad sha256", "[s3]\nbucket=x\n[key a]\nsha256=abc\n", "[key a] sha256",
		     "64 hex");
	expect_error("bad key name", "[s3]\nbucket=x\n[key a/b]\nkey=12345678\n", "[key a/b]",
		     "key name");
	expect_error("unknown key option", "[s3]\nbucket=x\n[key a]\nkey=12345678\ncolour=red\n",
		     "[key a] colour", "unknown key");
	expect_error("key on a missing plan", "[s3]\nbucket=x\n[key a]\nkey=12345678\nplan=gold\n",
		     "[key a] plan", "no [plan gold] section");
	expect_error("duplicate key value",
		     "[s3]\nbucket=x\n[key a]\nkey=12345678\n[key b]\nkey=12345678\n", "[key b]",
		     "same key as");
	expect_error("syntax error",
		     "[s3]\nbucket=x\nthis line is not ini\n[key a]\nkey=12345678\n",
		     "syntax error", NULL);
	expect_error("control char in cache_control",
		     "[s3]\nbucket=x\n[server]\ncache_control=\"a\x01b\"\n[key a]\nkey=12345678\n",
		     "cache_control", "control");

	expect_error("overlapping prefixes",
		     "[s3]\nbucket=x\noriginals_prefix=img/\nresized_prefix=img/resized/\n"
		     "[key a]\nkey=12345678\n",
		     "[s3] resized_prefix", "overlaps");
	expect_error("empty originals prefix overlaps everything",
		     "[s3]\nbucket=x\noriginals_prefix=\n[key a]\nkey=12345678\n",
		     "[s3] resized_prefix", "overlaps");
	expect_error("originals under the resized prefix",
		     "[s3]\nbucket=x\noriginals_prefix=r/orig/\nresized_prefix=r/\n"
		     "[key a]\nkey=12345678\n",
		     "[s3] resized_prefix", "overlaps");
	expect_error("bad formats",
		     "[s3]\nbucket=x\n[server]\nformats=jpeg tiff\n[key a]\nkey=12345678\n",
		     "[server] formats", "tiff");
	expect_error("quality out of range",
		     "[s3]\nbucket=x\n[server]\nquality=101\n[key a]\nkey=12345678\n",
		     "[server] quality", "1 to 100");
	/*
	 * iniparser merges a repeated section and lets a repeated key win over
	 * the earlier one; the loader refuses both, naming both lines. Names
	 * compare as iniparser stores them: stripped and lowercased.
	 */
	expect_error("repeated [key web]",
		     "[s3]\nbucket=x\n[key web]\nkey=12345678\n[key web]\nkey=abcdefgh\n",
		     "[key web]", "line 5 repeats the section of line 3");
	expect_error("repeated section differing in case and spaces",
		     "[s3]\nbucket=x\n[Key Web]\nkey=12345678\n\n[ key WEB ]  \nkey=abcdefgh\n",
		     "[key web]", "line 6 repeats the section of line 3");
	expect_error("repeated fixed section",
		     "[s3]\nbucket=x\n[key a]\nkey=12345678\n[s3]\nregion=eu-west-1\n", "[s3]",
		     "line 5 repeats the section of line 1");
	expect_error("repeated key in a section",
		     "[s3]\nbucket=x\n[key a]\nkey=12345678\n ; a comment\n  KEY = abcdefgh\n",
		     "[key a] key", "line 6 repeats line 4");
	expect_error("repeated key after a continued line",
		     "[s3]\nbucket=x\nregion = us-\\\neast-1\n[key a]\nkey=12345678\n"
		     "[key a]\nkey=abcdefgh\n",
		     "[key a]", "line 7 repeats the section of line 5");
	expect_error("a continued key counts from its first line",
		     "[s3]\nbucket=x\n[key a]\nkey=1234\\\n5678\nkey=abcdefgh\n", "[key a] key",
		     "line 6 repeats line 4");
	expect_error("one name in two spellings of [key NAME]",
		     "[s3]\nbucket=x\n[key a]\nkey=12345678\n[key  a]\nkey=abcdefgh\n", "[key  a]",
		     "same name");
	expect_error("one name in two spellings of [plan NAME]",
		     "[s3]\nbucket=x\n[plan p]\nrate=1\n[plan  p]\nrate=2\n[key a]\nkey=12345678\n",
		     "[plan  p]", "same name");
	/* A comment ending in '\' swallows the next line, as iniparser reads it. */
	cfg = cfg_load(write_file("comment.ini", "[s3]\nbucket=x\n[key a]\nkey=12345678\n"
						  "; was: \\\n[key a]\nenabled=no\n"),
		       err, sizeof err);
	CHECK(cfg && cfg->keys.n == 1 && !cfg->keys.keys[0].enabled,
	      "a section line continued into a comment is no repeat (%s)", cfg ? "ok" : err);
	cfg_free(cfg);
	cfg = cfg_load(dir, err, sizeof err);
	CHECK(!cfg && strstr(err, dir) && strstr(err, "is a directory"),
	      "a directory given as the file is named as one: %s", err);
	cfg_free(cfg);

	cfg = cfg_load(write_file("nocache.ini", "[s3]\nbucket=x\noriginals_prefix=\n[server]\n"
						 "derivative_cache=no\nformats=jpg, png\n[key a]\n"
						 "key=12345678\n"),
		       err, sizeof err);
	CHECK(cfg && !cfg->server.derivative_cache,
	      "empty originals prefix is fine without the cache (%s)", cfg ? "ok" : err);
	CHECK(cfg && cfg->server.formats == ((1u << IMG_JPEG) | (1u << IMG_PNG)),
	      "formats list parsed (jpg alias, comma)");
	cfg_free(cfg);

	expect_error("plan without limits", "[s3]\nbucket=x\n[plan p]\n[key a]\nkey=12345678\n",
		     "[plan p]", "rate, a quota");
	expect_error(
	    "burst without rate",
	    "[s3]\nbucket=x\n[plan p]\nburst=5\nquota=9\nperiod=day\n[key a]\nkey=12345678\n",
	    "[plan p] burst", "needs a rate");
	expect_error("quota without period",
		     "[s3]\nbucket=x\n[plan p]\nquota=9\n[key a]\nkey=12345678\n",
		     "[plan p] period", "day, week or month");
	expect_error("bad period",
		     "[s3]\nbucket=x\n[plan p]\nquota=9\nperiod=year\n[key a]\nkey=12345678\n",
		     "[plan p] period", "year");
	expect_error("bad rate", "[s3]\nbucket=x\n[plan p]\nrate=fast\n[key a]\nkey=12345678\n",
		     "[plan p] rate", "fast");
	expect_error("bad backend",
		     "[s3]\nbucket=x\n[limits]\nbackend=etcd\n[key a]\nkey=12345678\n",
		     "[limits] backend", "etcd");
	expect_error("relative state file",
		     "[s3]\nbucket=x\n[limits]\nstate_file=state\n[key a]\nkey=12345678\n",
		     "[limits] state_file", "absolute");
	cfg = cfg_load(write_file("plans.ini", "[s3]\nbucket=x\n[plan Gold]\nrate=2.5\nquota=100\n"
					       "period=week\n[key a]\nkey=12345678\nplan=gold\n"
					       "[metrics]\nkey=metrics-key-1\n"),
		       err, sizeof err);
	CHECK(cfg && cfg->n_plans == 1 && cfg->plans[0].rate == 2.5 && cfg->plans[0].burst == 3 &&
		  cfg->plans[0].quota == 100 && cfg->plans[0].period == PERIOD_WEEK &&
		  cfg->keys.keys[0].plan == 0 && cfg->metrics_keys.n == 1,
	      "plan loaded (burst defaults to one second of rate, names case-insensitive) (%s)",
	      cfg ? "ok" : err);
	cfg_free(cfg);

	unsetenv("IMGSVC_CONFIG");
	CHECK(strcmp(cfg_default_path("/x.ini"), "/x.ini") == 0, "-c wins");
	setenv("IMGSVC_CONFIG", "/env.ini", 1);
	CHECK(strcmp(cfg_default_path(NULL), "/env.ini") == 0, "IMGSVC_CONFIG next");
	unsetenv("IMGSVC_CONFIG");
	CHECK(strstr(cfg_default_path(NULL), "/imgsvc/imgsvc.ini") != NULL, "sysconfdir default");

	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK(system(cmd) == 0, "temp dir removed");
}
