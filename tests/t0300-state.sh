#!/bin/bash
# t0300-state.sh - the host's shared state file (src/state.c), driven by
# tests/stateprobe and read by imgsvc-usage, without a web server:
#   exactness   8 processes hammering one key with a quota of 500 admit
#               exactly 500 (and a burst of 300 exactly 300); another key's
#               counters are untouched;
#   robustness  a process SIGKILLed while holding the lock does not wedge
#               the others (they get through within a second);
#   restart     counts survive closing and reopening; a lock word left by a
#               "previous boot" is reset on open, keeping the data;
#   config      records are found by name: adding and removing keys keeps
#               the others' counters;
#   creation    processes starting together initialise the file once; a
#               foreign file or another version is refused, not wiped;
#   usage       imgsvc-usage as a table, CSV and JSON for a key and a date
#               range, its defaults, bad arguments, a read-only file;
#   metrics     the Prometheus text passes a strict parser
#               (tests/promparse.py) and promtool when installed.
# Finally valgrind: no leaks in stateprobe and imgsvc-usage.

. "$(dirname "$0")/lib.sh"
PROBE=$builddir/tests/stateprobe
USAGE=$builddir/imgsvc-usage
PROMPARSE=$TESTS_DIR/promparse.py
[ -x "$PROBE" ] || bail_out "no $PROBE (make check builds it)"
[ -x "$USAGE" ] || bail_out "no $USAGE (run make first)"
S=$T/state
probe() { "$PROBE" "$S" "$@"; }

# expect_out EXPECTED COMMAND...: the command succeeds and prints EXPECTED.
expect_out() {
	local want=$1 got
	shift
	got=$("$@" 2>&1) || { echo "exit status $?: $got"; return 1; }
	[ "$got" = "$want" ] && return 0
	printf 'expected: %s\n     got: %s\n' "$want" "$got"
	return 1
}

# --- creation --------------------------------------------------------------------
for i in 1 2 3 4 5 6 7 8; do
	probe open >"$T/open.$i" 2>&1 &
done
wait
check "8 processes opening a new file at once all succeed" \
	bash -c "cat '$T'/open.* | grep -cx ok | grep -qx 8"
check "  and it works: quota 3 admits 3 of 5" \
	expect_out "allowed 3 limited 2 retry 43200" probe admit first 5 quota=3
printf 'important data, not a state file\n' >"$T/other"
cp "$T/other" "$T/other.orig"
# A file that is not imgsvc's (state_file naming another file by mistake)
# is refused and left where it is, untouched.
"$PROBE" "$T/other" open >"$T/other.out" 2>&1
check "a foreign file is refused ($(head -c 70 "$T/other.out")...)" \
	grep -q "not an imgsvc state file" "$T/other.out"
check "  and left untouched, where it was" sh -c "cmp '$T/other' '$T/other.orig' && ! ls '$T'/other.damaged-* 2>/dev/null"
# Version 99 (a later imgsvc's): the version word follows the 8-byte magic.
cp "$S" "$T/v99"
printf '\x63' | dd of="$T/v99" bs=1 seek=8 conv=notrunc status=none
cp "$T/v99" "$T/v99.orig"
"$PROBE" "$T/v99" open >"$T/v99.out" 2>&1
check "a state file of another version is moved aside, naming both versions" \
	grep -Eq "version 99, this imgsvc uses version [0-9]+:.*moved aside to $T/v99.damaged-" "$T/v99.out"
check "  kept intact" sh -c "cmp '$T'/v99.damaged-* '$T/v99.orig'"

# --- exactness -------------------------------------------------------------------
probe admit bystander 3 quota=10 >/dev/null
probe hammer 8 2000 hammer 500 >"$T/hammer.out"
cat "$T/hammer.out" | sed 's/^/# /'
check "8 processes x 2000 requests, quota 500: exactly 500 admitted" \
	grep -qx "total: allowed 500 limited 15500 in [0-9]* ms" "$T/hammer.out"
check "  the bystander key still has its 7 left" \
	expect_out "allowed 7 limited 3 retry 43200" probe admit bystander 10 quota=10
probe hammer 8 1000 burst 0 300 >"$T/burst.out"
check "8 processes x 1000 requests, burst 300 (rate 0.001/s): exactly 300 admitted" \
	grep -qx "total: allowed 300 limited 7700 in [0-9]* ms" "$T/burst.out"
say "$(tail -n 1 "$T/hammer.out") (quota); $(tail -n 1 "$T/burst.out") (burst)"
probe metrics >"$T/m1.txt"
check "  refusals counted per key: 15500 for hammer, 7700 for burst" \
	bash -c "grep -qx 'imgsvc_rate_limited_total{key=\"hammer\"} 15500' '$T/m1.txt' &&
		grep -qx 'imgsvc_rate_limited_total{key=\"burst\"} 7700' '$T/m1.txt'"

# The report reads while workers write: it must not disturb them.
probe hammer 8 20000 busy 100000 >"$T/busy.out" &
hpid=$!
for i in $(seq 20); do "$USAGE" -s "$S" --format json >/dev/null; done
wait $hpid
check "imgsvc-usage running during a hammer: still exactly 100000 of 160000" \
	grep -qx "total: allowed 100000 limited 60000 in [0-9]* ms" "$T/busy.out"

# --- robustness ------------------------------------------------------------------
probe kill-holder 4 >"$T/kill.out" 2>&1
krc=$?
sed 's/^/# /' "$T/kill.out"
check "a lock holder SIGKILLed: 4 waiters blocked on it and 4 later ones get through < 1 s" \
	test $krc = 0
check "  ($(tail -n 1 "$T/kill.out"))" grep -q "^slowest: [0-9]* ms" "$T/kill.out"
probe metrics >"$T/m2.txt"
check "  the takeover is counted (imgsvc_state_lock_recoveries_total 1)" \
	grep -qx "imgsvc_state_lock_recoveries_total 1" "$T/m2.txt"
check "  and the state still counts (bystander: quota full)" \
	expect_out "allowed 0 limited 1 retry 43200" probe admit bystander 1 quota=10

# --- restart ---------------------------------------------------------------------
probe admit restart 3 quota=5 >/dev/null
probe record restart 200 1000 2024-01-01 3
check "reopened: the quota count survives (2 of 5 left)" \
	expect_out "allowed 2 limited 1 retry 43200" probe admit restart 3 quota=5
probe stale keep-boot
start=$(date +%s%N)
check "a lock word left held, same boot id: the admission gives up within its bound (no hang), reported unavailable" \
	expect_out "allowed 1 limited 0 retry 0 unavailable 1" timeout 5 "$PROBE" "$S" admit restart 1 quota=5
took=$((($(date +%s%N) - start) / 1000000))
check "  in $took ms (< 2000)" test "$took" -lt 2000
probe stale
start=$(date +%s%N)
check "the same lock word under a previous boot's id: reset on open, admission answers" \
	expect_out "allowed 0 limited 1 retry 43200" timeout 5 "$PROBE" "$S" admit restart 1 quota=5
took=$((($(date +%s%N) - start) / 1000000))
check "  in $took ms (< 1000)" test "$took" -lt 1000
check "  and kept the usage (restart: 3 requests, 3000 bytes on 2024-01-01)" \
	expect_out "restart 2024-01-01 3 0 3 0 0 0 3000 0" probe usage restart

# --- config change: records found by name -----------------------------------------
probe admit alpha 1 quota=5 >/dev/null
probe admit beta 2 quota=5 >/dev/null
probe admit gamma 3 quota=5 >/dev/null
# A new config: alpha removed, delta and 200 more keys added.
for i in $(seq 200); do probe admit "new-key-$i" 1 quota=5 >/dev/null; done
probe admit delta 5 quota=5 >/dev/null
check "keys added and removed: beta keeps its count (3 of 5 left)" \
	expect_out "allowed 3 limited 1 retry 43200" probe admit beta 4 quota=5
check "  gamma too (2 left)" expect_out "allowed 2 limited 1 retry 43200" probe admit gamma 3 quota=5
check "  and alpha, back in the config, has its 4 left" \
	expect_out "allowed 4 limited 1 retry 43200" probe admit alpha 5 quota=5

# --- usage report ----------------------------------------------------------------
U=$T/usage-state
u() { "$PROBE" "$U" "$@"; }
u record web 200 1000 2024-02-28 5
u record web 304 0 2024-02-28 2
u record web 404 120 2024-02-28 1
u record web 200 2000 2024-02-29 3
u record web 429 60 2024-02-29 4
u record web 502 100 2024-03-01 1
u record mobile 200 500 2024-02-29 2
u record mobile 500 50 2024-03-02 1
u record 'odd, "quoted" key' 200 7 2024-02-29 1
u record - 400 10 2024-02-29 3 # no valid key: metrics only

"$USAGE" -s "$U" -k web --from 2024-02-28 --to 2024-02-29 >"$T/table.txt" 2>&1
cat >"$T/table.want" <<'EOF'
KEY    DATE        REQUESTS  2XX  3XX  4XX  5XX  429  BYTES
web    2024-02-28         8    5    2    1    0    0   5120
web    2024-02-29         7    3    0    4    0    4   6240
TOTAL                    15    8    2    5    0    4  11360
EOF
check "table, key web, 2024-02-28..29: rows, aligned columns and the total" \
	diff -u "$T/table.want" "$T/table.txt"

"$USAGE" -s "$U" --from 2024-02-29 --to 2024-03-02 --format csv >"$T/csv.txt" 2>&1
cat >"$T/csv.want" <<'EOF'
key,date,requests,2xx,3xx,4xx,5xx,429,bytes
mobile,2024-02-29,2,2,0,0,0,0,1000
mobile,2024-03-02,1,0,0,0,1,0,50
"odd, ""quoted"" key",2024-02-29,1,1,0,0,0,0,7
web,2024-02-29,7,3,0,4,0,4,6240
web,2024-03-01,1,0,0,0,1,0,100
EOF
check "CSV, every key, 2024-02-29..03-02: a header, rows by key then day, RFC 4180 quoting" \
	diff -u "$T/csv.want" "$T/csv.txt"

"$USAGE" -s "$U" --from 2024-02-28 --to 2024-03-31 --format json >"$T/json.txt" 2>&1
check "JSON, every key, February to March: an array of objects that json.load accepts" \
	"$PY" -c 'import json, sys
rows = json.load(open(sys.argv[1]))
want = {("web", "2024-02-28"): (8, 5, 2, 1, 0, 0, 5120),
        ("web", "2024-02-29"): (7, 3, 0, 4, 0, 4, 6240),
        ("web", "2024-03-01"): (1, 0, 0, 0, 1, 0, 100),
        ("mobile", "2024-02-29"): (2, 2, 0, 0, 0, 0, 1000),
        ("mobile", "2024-03-02"): (1, 0, 0, 0, 1, 0, 50),
        ("odd, \"quoted\" key", "2024-02-29"): (1, 1, 0, 0, 0, 0, 7)}
got = {(r["key"], r["date"]): tuple(r[c] for c in
       ("requests", "2xx", "3xx", "4xx", "5xx", "429", "bytes")) for r in rows}
assert len(rows) == len(want), rows
assert got == want, got' "$T/json.txt"
check "  an empty range gives []" expect_out "[]" \
	"$USAGE" -s "$U" --from 2020-01-01 --to 2020-01-31 --format json
check "  a key with no usage gives only the header (CSV)" \
	expect_out "key,date,requests,2xx,3xx,4xx,5xx,429,bytes" "$USAGE" -s "$U" -k nobody --format csv

now_ms=$(($(date +%s) * 1000))
today=$(date -u +%Y-%m-%d)
u record today 200 42 "$now_ms" 2
check "default range is today (UTC): today's row, nothing from 2024" \
	expect_out "today,$today,2,2,0,0,0,0,84" bash -c "'$USAGE' -s '$U' --format csv | tail -n +2"
check "--from alone runs to today" \
	bash -c "'$USAGE' -s '$U' --from 2024-03-02 --format csv | cut -d, -f1,2 | tr '\n' ' ' |
		grep -qx 'key,date mobile,2024-03-02 today,$today '"
check "--to alone is that one day" \
	expect_out "mobile,2024-03-02,1,0,0,0,1,0,50" \
	bash -c "'$USAGE' -s '$U' --to 2024-03-02 --format csv | tail -n +2"

# -c: the state file named by [limits] state_file.
cat >"$T/imgsvc.ini" <<EOF
[s3]
bucket = $BUCKET
[limits]
state_file = $U
[key web]
key = $KEY_WEB
EOF
"$USAGE" -c "$T/imgsvc.ini" -k web --from 2024-02-28 --to 2024-02-29 >"$T/table-c.txt" 2>&1
check "-c CONFIG reads [limits] state_file: the same table" diff -u "$T/table.want" "$T/table-c.txt"

# bad_args WANT_STATUS MESSAGE-REGEX ARGS...
bad_args() {
	local want=$1 re=$2 out rc
	shift 2
	out=$("$USAGE" "$@" 2>&1)
	rc=$?
	[ $rc = "$want" ] || { echo "exit status $rc, want $want: $out"; return 1; }
	printf '%s\n' "$out" | grep -qE -- "$re" || { echo "message: $out"; return 1; }
}
check "bad format: exit 2 with the usage" bad_args 2 "usage: imgsvc-usage" -s "$U" --format xml
check "not a date (2023-02-29): exit 2 naming it" bad_args 2 "--from: '2023-02-29' is not a date" \
	-s "$U" --from 2023-02-29
check "not a date (24-1-1): exit 2" bad_args 2 "--to: '24-1-1' is not a date" -s "$U" --to 24-1-1
check "from after to: exit 2" bad_args 2 "starts \(2024-03-02\) after it ends \(2024-03-01\)" \
	-s "$U" --from 2024-03-02 --to 2024-03-01
check "-c and -s together: exit 2" bad_args 2 "exclude each other" -s "$U" -c "$T/imgsvc.ini"
check "unknown option: exit 2" bad_args 2 "usage:" -s "$U" --bogus
check "stray argument: exit 2" bad_args 2 "unexpected argument 'web'" -s "$U" web
check "missing state file: exit 1 naming it, and not created" \
	bash -c "! '$USAGE' -s '$T/none' 2>'$T/none.err' && grep -q '$T/none: No such file' '$T/none.err' &&
		test ! -e '$T/none'"

# A state file the reader cannot write: mapped read-only, read without the lock.
mkdir -p "$T/ro"
cp "$U" "$T/ro/state"
chmod 755 "$T/ro"
chmod 444 "$T/ro/state"
# root opens any file read-write: read it as nobody when nobody can.
reader=
if [ "$(id -u)" != 0 ]; then
	reader=self
elif command -v setpriv >/dev/null &&
	setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$USAGE" 2>/dev/null; then
	reader=nobody
fi
if [ -n "$reader" ]; then
	if [ $reader = nobody ]; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups "$USAGE" -s "$T/ro/state" -k web \
			--from 2024-02-28 --to 2024-02-29 >"$T/table-ro.txt" 2>&1
	else
		"$USAGE" -s "$T/ro/state" -k web --from 2024-02-28 --to 2024-02-29 >"$T/table-ro.txt" 2>&1
	fi
	check "a state file the reader cannot write ($reader): the same table" \
		diff -u "$T/table.want" "$T/table-ro.txt"
else
	skip "a read-only state file" "running as root and nobody cannot run $USAGE"
fi

# --- metrics ---------------------------------------------------------------------
M=$T/metrics-state
m() { "$PROBE" "$M" "$@"; }
m record web 200 1000 2024-02-28 3 0.004 0.002 hit
m record web 200 3000 2024-02-28 2 0.3 0.2 miss
m record web 404 10 2024-02-28 1 0.01
m record web 418 10 2024-02-28 1 12
m record web 429 0 2024-02-28 4 0.001
m record web 503 0 2024-02-28 2 0.001
m admit "$(printf 'we\\ird "key"\nx')" 3 quota=1 >/dev/null
m admit "$(printf 'bad-utf8-\xff')" 2 quota=1 >/dev/null
m metrics >"$T/metrics.txt"
check "metrics parse strictly as Prometheus text 0.0.4" "$PY" "$PROMPARSE" "$T/metrics.txt"
"$PY" "$PROMPARSE" "$T/metrics.txt" >"$T/metrics.parsed" 2>&1
# has_all: every line of stdin is a parsed sample (labels sorted, escaped).
has_all() {
	local missing
	missing=$(grep -vxFf "$T/metrics.parsed")
	[ -z "$missing" ] && return 0
	printf 'missing: %s\n' "$missing"
	return 1
}
check "requests by status: 200 -> 5, 429 -> 4, 503 -> 2 (fail closed), 418 counted as other" has_all <<'EOF'
imgsvc_requests_total{status="200"} 5
imgsvc_requests_total{status="404"} 1
imgsvc_requests_total{status="429"} 4
imgsvc_requests_total{status="503"} 2
imgsvc_requests_total{status="504"} 0
imgsvc_requests_total{status="other"} 1
EOF
check "latency histogram: cumulative buckets, +Inf = count = 13, the sum exact" has_all <<'EOF'
imgsvc_request_duration_seconds_bucket{le="0.005"} 9
imgsvc_request_duration_seconds_bucket{le="0.01"} 10
imgsvc_request_duration_seconds_bucket{le="0.25"} 10
imgsvc_request_duration_seconds_bucket{le="0.5"} 12
imgsvc_request_duration_seconds_bucket{le="10"} 12
imgsvc_request_duration_seconds_bucket{le="+Inf"} 13
imgsvc_request_duration_seconds_sum 12.628000
imgsvc_request_duration_seconds_count 13
EOF
check "S3 histogram: only the 5 requests that asked S3" has_all <<'EOF'
imgsvc_s3_duration_seconds_bucket{le="0.005"} 3
imgsvc_s3_duration_seconds_bucket{le="0.1"} 3
imgsvc_s3_duration_seconds_bucket{le="0.25"} 5
imgsvc_s3_duration_seconds_bucket{le="+Inf"} 5
imgsvc_s3_duration_seconds_sum 0.406000
imgsvc_s3_duration_seconds_count 5
EOF
check "cache hits 3, misses 2, bytes out 9020" has_all <<'EOF'
imgsvc_cache_hits_total 3
imgsvc_cache_misses_total 2
imgsvc_response_bytes_total 9020
imgsvc_state_records{table="usage"} 1
imgsvc_state_dropped_total{reason="bad_key_name"} 0
EOF
"$PROBE" "$T/long-state" record "$(printf 'k%.0s' $(seq 65))" 200 1 2024-02-28
"$PROBE" "$T/long-state" metrics | "$PY" "$PROMPARSE" - >"$T/long.parsed"
check "a key name over 64 bytes is not stored, and that is counted" \
	bash -c "grep -qx 'imgsvc_state_dropped_total{reason=\"bad_key_name\"} 1' '$T/long.parsed' &&
		grep -qx 'imgsvc_state_records{table=\"usage\"} 0' '$T/long.parsed' &&
		grep -qx 'imgsvc_requests_total{status=\"200\"} 1' '$T/long.parsed'"
check 'rate-limited by key: label values escaped (\\ \" \n), bytes not UTF-8 replaced' has_all <<'EOF'
imgsvc_rate_limited_total{key="we\\ird \"key\"\nx"} 2
imgsvc_rate_limited_total{key="bad-utf8-�"} 1
EOF
if command -v promtool >/dev/null; then
	check "promtool check metrics accepts them" \
		bash -c "promtool check metrics <'$T/metrics.txt'"
else
	skip "promtool check metrics" "promtool not installed (Debian package: prometheus)"
fi

# The parser is strict: each of these breaks one rule and must be refused.
reject() { # reject TITLE TEXT
	printf '%b' "$2" >"$T/bad.txt"
	check "promparse refuses $1" bash -c "! '$PY' '$PROMPARSE' '$T/bad.txt' >/dev/null 2>&1"
}
H='# HELP h_seconds x\n# TYPE h_seconds histogram\n'
reject "non-cumulative buckets" "${H}h_seconds_bucket{le=\"1\"} 5\nh_seconds_bucket{le=\"+Inf\"} 4\nh_seconds_sum 1\nh_seconds_count 4\n"
reject "a histogram without +Inf" "${H}h_seconds_bucket{le=\"1\"} 5\nh_seconds_sum 1\nh_seconds_count 5\n"
reject "_count != +Inf bucket" "${H}h_seconds_bucket{le=\"+Inf\"} 5\nh_seconds_sum 1\nh_seconds_count 6\n"
reject "a bad escape" '# HELP c_total x\n# TYPE c_total counter\nc_total{k="a\\q"} 1\n'
reject "a series twice" '# HELP c_total x\n# TYPE c_total counter\nc_total 1\nc_total 2\n'
reject "a sample without TYPE" 'c_total 1\n'
reject "a bad metric name" '# HELP 1c x\n# TYPE 1c counter\n1c 1\n'
reject "a bad value" '# HELP c_total x\n# TYPE c_total counter\nc_total one\n'

# --- valgrind (LeakSanitizer in a sanitized build) ---------------------------------
vg=
if sanitized; then
	# valgrind cannot run an ASan binary; LeakSanitizer, built in, checks
	# the same runs: a leak or any other report makes the program exit 99.
	vg=LeakSanitizer
	vg() {
		ASAN_OPTIONS="$ASAN_OPTIONS:exitcode=99" UBSAN_OPTIONS="$UBSAN_OPTIONS:exitcode=99" \
			"$@" >/dev/null
	}
elif command -v valgrind >/dev/null; then
	vg=valgrind
	vg() {
		valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
			--error-exitcode=99 "$@" >/dev/null
	}
fi
if [ -n "$vg" ]; then
	check "$vg: stateprobe admit, record, usage, metrics leak nothing" \
		bash -c "$(declare -f vg)
			vg '$PROBE' '$T/vg' admit k 5 quota=3 rate=2 burst=2 &&
			vg '$PROBE' '$T/vg' record k 200 10 2024-01-01 3 0.1 0.05 hit &&
			vg '$PROBE' '$T/vg' usage && vg '$PROBE' '$T/vg' metrics"
	check "$vg: imgsvc-usage (table, CSV, JSON, -c) leaks nothing" \
		bash -c "$(declare -f vg)
			vg '$USAGE' -s '$U' --from 2024-01-01 &&
			vg '$USAGE' -s '$U' --from 2024-01-01 --format csv &&
			vg '$USAGE' -s '$U' --from 2024-01-01 --format json &&
			vg '$USAGE' -c '$T/imgsvc.ini' -k web --from 2024-02-28"
else
	skip "valgrind" "valgrind not installed"
fi
