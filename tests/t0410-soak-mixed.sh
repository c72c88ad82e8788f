#!/bin/bash
# t0410-soak-mixed.sh - a long mixed load (SOAK_REQUESTS, default 10000)
# from parallel clients (curl --parallel) on two lighttpd pools of two imgsvc
# workers each, the mix of tests/soak_lib.sh:
#   main    moto (SigV4 checking on): originals (small and 1.2 MB, GET and
#           HEAD), an original over max_width (downscaled), derivative hits,
#           derivative misses (ever-new sizes, so each one decodes and is
#           written to the cache), 304 revalidations of originals and of
#           derivatives (If-None-Match with the ETag), and the client errors
#           400 (bad parameters), 403 (wrong or no key), 404 (missing
#           original, missing source of a derivative), 405 (DELETE, POST);
#   faults  tests/fakes3.py, for the S3 failures moto will not produce:
#           always503 (502 after the retries), denied (AccessDenied: 404),
#           hang (504 at timeout_ms, 1.5 s), fail503x1 (one 503, retried: 200),
#           plain originals, and health.
# Every 1000 requests hold a fixed number of each kind, mixed
# (tests/soakmix.py). After each 1000 the workers are sampled: PID, VmRSS,
# open file descriptors, requests served, and the live heap bytes of the
# worker's last "heap" log line ([server] heap_log_every = HEAP_EVERY).
#
# Asserted: every answer has its kind's status (and X-Cache, and size where
# fixed); the only 5xx are the injected ones, counted exactly, and the
# always503 ones were retried as configured; the four worker PIDs never
# change and both main workers take a share; the live heap of each worker
# (glibc's mallinfo2 in-use bytes) grows by at most 16 kB plus 4 bytes a
# request from the sample at request 2000 to the last, and its VmRSS by at
# most 8 MB (both skipped on a sanitized build); descriptors do not grow;
# imgsvc logs one line per request, with the status the client got.
#
# Why moto for the main pool: it is the real signature-checking S3 of the
# other tests, and at this mix (about 1.3 S3 calls a request) it keeps up
# with two workers (100 to 150 requests/s on a shared 2-core machine, moto
# included). Why fakes3.py for the faults: moto will not fail on demand,
# and the faults need a pool of their own because one imgsvc has one S3
# endpoint. SOAK_REQUESTS=100000 takes about 17 minutes there (run it with
# TEST_TIMEOUT=3600 under run-all.sh).

. "$(dirname "$0")/lib.sh"

require_imgsvc
require_tools moto_server aws curl lighttpd gm

TOTAL=${SOAK_REQUESTS:-10000}
STEP=1000
WARM=2000
[ "$TOTAL" -ge $((WARM + STEP)) ] || WARM=$STEP
[ "$TOTAL" -ge $((2 * STEP)) ] || bail_out "SOAK_REQUESTS must be at least $((2 * STEP))"
# The leak bound is on the live heap, not on VmRSS. VmRSS is the heap's
# high-water mark (never trimmed: mallopt in main.c) plus everything else
# mapped: it moves in steps of up to a decoded image (about 1 MB) when a
# large block finds no free hole, with nothing leaking, and a clean CI run
# once failed a bound of 1 MB plus 16 bytes a request (+1,484 kB over
# 1,264 requests). The bytes in use between two requests move only when
# something outlives its request. Every worker logs them every HEAP_EVERY
# requests (src/heap.c); glibc's per-thread cache (tcache) is turned off
# for the workers (GLIBC_TUNABLES below) because mallinfo2 counts the
# blocks it parks as in use: with it on, the figure creeps up by about
# 100 kB over the first 5,000 requests of a worker as the caches of its
# threads (GraphicsMagick's OpenMP ones too) fill, then stays. With it off,
# over six default runs, from request 2000 to the end: the main workers
# moved by -656 to +624 bytes, the faults workers by -2,928 to +2,896 (the
# S3 connection, closed after a hang and opened again). So HEAP_SLACK_KB
# plus HEAP_PER_REQUEST bytes a request is ample for
# noise and fails a leak of 10 to 15 bytes a request in a main worker (the
# figure is printed with each worker's case): a build with the injected
# leak (configure --enable-test-leak=256) grew by 789,312 bytes over 2,900
# requests and 1,182,576 over 4,350 (272 a request: 256 and malloc's
# header), against bounds of 27,984 and 33,784, and failed all four
# workers' cases, while VmRSS grew by 1,384 and 1,496 kB, no more than in
# the clean run that failed. VmRSS stays in the trace, with only a guard
# of RSS_GUARD_KB against growth outside malloc (anonymous maps).
HEAP_EVERY=50
HEAP_SLACK_KB=16
HEAP_PER_REQUEST=4
RSS_GUARD_KB=8192
WORKER_TUNABLES=glibc.malloc.tcache_count=0
# Open descriptors may differ by the S3 connections, which each of a
# worker's threads (16 by default) keeps for itself (libcurl cannot share
# connections between threads), up to two at once (a cache hit's GET and
# HEAD): one is closed after a hang and reopened by that thread's next
# request, and a thread opens its own the first time it serves. Past that,
# little more; a leak of one a request would be thousands.
FD_SLACK=$((2 + 2 * 16))

. "$TESTS_DIR/soak_lib.sh"
SOAK_TOTAL=$TOTAL

soak_fixtures "$T/fixtures/$PREFIX"
start_moto
upload_dir "$T/fixtures"
mkdir -p "$T/objects"
cp "$SOAK_FIX/thumb.jpg" "$T/objects/thumb.jpg"
start_fakes3

CFG_HEAP_LOG_EVERY=$HEAP_EVERY write_config "$T/main.ini"
# timeout_ms: what a hang costs; the 503s with their two retries take a
# tenth of it (under 260 ms at a load average of 12).
CFG_ENDPOINT=$FAKE_URL CFG_KEY_ID=AKIDFAKE CFG_SECRET=fake-secret CFG_TIMEOUT_MS=1500 \
	CFG_CONNECT_TIMEOUT_MS=1000 CFG_RETRIES=2 CFG_STATE_FILE=$T/state/faults.state \
	CFG_HEAP_LOG_EVERY=$HEAP_EVERY write_config "$T/faults.ini"
# lighttpd hands its environment on to the workers it spawns.
GLIBC_TUNABLES=$WORKER_TUNABLES start_lighttpd "$T/main.ini" 2
MAIN=$BASE MAIN_LOG=$SERVER_LOG MAIN_HTTPD=$LIGHTTPD_PID
GLIBC_TUNABLES=$WORKER_TUNABLES start_lighttpd "$T/faults.ini" 2
FAULTS=$BASE FAULTS_LOG=$SERVER_LOG FAULTS_HTTPD=$LIGHTTPD_PID
BASE=$MAIN SERVER_LOG=$MAIN_LOG

# pool_pids LIGHTTPD_PID: the imgsvc workers that lighttpd spawned.
pool_pids() {
	local p
	for p in $(imgsvc_pids); do
		[ "$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)" = "$1" ] && echo "$p"
	done | sort -n | tr '\n' ' ' | sed 's/ $//'
}
fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# request_lines LOG: imgsvc's request lines (not warnings) in a log.
request_lines() { grep -E '^[^ ]+ imgsvc\[[0-9]+\] key=.* status=[0-9]+ ' "$1"; }
# heap_lines LOG: "PID REQUESTS INUSE_BYTES" of each heap line (src/heap.c).
heap_lines() {
	sed -n 's/^[^ ]* imgsvc\[\([0-9]*\)\] info: heap requests=\([0-9]*\) inuse_bytes=\([0-9]*\) .*/\1 \2 \3/p' "$1"
}

soak_warm "$MAIN" "$FAULTS"
soak_menu "$T/menu" "$MAIN" "$FAULTS"
soak_retried_keys "$T/objects" "$(soak_count fault-retried)"

# --- the run -------------------------------------------------------------------------
MAIN_PIDS=$(pool_pids "$MAIN_HTTPD")
FAULTS_PIDS=$(pool_pids "$FAULTS_HTTPD")
set -- $MAIN_PIDS
[ $# = 2 ] || bail_out "main pool: workers '$MAIN_PIDS', expected 2"
set -- $FAULTS_PIDS
[ $# = 2 ] || bail_out "faults pool: workers '$FAULTS_PIDS', expected 2"
main0=$(request_lines "$MAIN_LOG" | wc -l)
faults0=$(request_lines "$FAULTS_LOG" | wc -l)
# Only the requests of the run, each pool's log from here on.
log_after() { # log_after LOG LINES-BEFORE
	request_lines "$1" | tail -n +$(($2 + 1))
}

# sample N: one line per worker "N POOL PID VmRSS_kB FDS SERVED RssAnon_kB
# HEAP_REQUESTS HEAP_INUSE", SERVED = the requests of the run it has logged,
# the last two from its last heap line so far (0 0 before the first).
sample() {
	local n=$1 pool pid log base pids
	for pool in main faults; do
		if [ $pool = main ]; then log=$MAIN_LOG base=$main0 pids=$MAIN_PIDS
		else log=$FAULTS_LOG base=$faults0 pids=$FAULTS_PIDS; fi
		log_after "$log" "$base" | sed -n 's/^[^ ]* imgsvc\[\([0-9]*\)\].*/\1/p' |
			sort | uniq -c >"$T/served"
		heap_lines "$log" >"$T/heap"
		for pid in $pids; do
			echo "$n $pool $pid $(rss_kb "$pid") $(fd_count "$pid")" \
				"$(awk -v p="$pid" '$2 == p { print $1 }' "$T/served" | grep . || echo 0)" \
				"$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status")" \
				"$(awk -v p="$pid" '$1 == p { r = $2; b = $3 } END { print r + 0, b + 0 }' "$T/heap")"
		done
	done
}

: >"$T/results"
: >"$T/trace"
say "soak: $TOTAL requests, $SOAK_PARALLEL parallel clients, 2+2 workers (main: $MAIN_PIDS; faults: $FAULTS_PIDS)"
t_start=$(date +%s%N)
n=0
while [ "$n" -lt "$TOTAL" ]; do
	to=$((n + STEP))
	[ "$to" -gt "$TOTAL" ] && to=$TOTAL
	soak_batch "$n" "$to"
	# The log line of the last request may follow its response.
	for i in $(seq 50); do
		logged=$(($(request_lines "$MAIN_LOG" | wc -l) + $(request_lines "$FAULTS_LOG" | wc -l)))
		[ $((logged - main0 - faults0)) -ge "$to" ] && break
		sleep 0.1
	done
	sample "$to" >>"$T/trace"
	n=$to
done
t_end=$(date +%s%N)
ms=$(((t_end - t_start) / 1000000))
END_MAIN_PIDS=$(pool_pids "$MAIN_HTTPD")
END_FAULTS_PIDS=$(pool_pids "$FAULTS_HTTPD")

# --- figures -----------------------------------------------------------------------
soak_check "$TOTAL" "$ms"
# The trace as a table, a row a sample: VmRSS kB/live heap kB/open fds of
# each worker. All rows go to the log; TAP gets every tenth when there are
# many.
trace_table() {
	awk '
		$1 != row { if (row != "") print line; row = $1; line = sprintf("%7d", $1) }
		{ line = line sprintf("  %16s", $4 "/" sprintf("%.1f", $9 / 1024) "/" $5) }
		END { print line }' "$T/trace" |
		awk -v every="$1" -v warm="$WARM" -v total="$TOTAL" '$1 == warm || $1 == total || $1 % every == 0'
}
head_row=$(printf '%7s' request; for pid in $MAIN_PIDS; do printf '  %16s' "m:$pid"; done
	for pid in $FAULTS_PIDS; do printf '  %16s' "f:$pid"; done)
every=$STEP
[ "$TOTAL" -gt $((20 * STEP)) ] && every=$((TOTAL / 10 / STEP * STEP))
say "workers (m: main, f: faults) sampled every $STEP requests, VmRSS kB/live heap kB/open fds$([ "$every" != "$STEP" ] && echo ", every $every shown; all in the log"):"
{ echo "$head_row"; trace_table "$every"; } | sed 's/^/#   /'
{ echo "$head_row"; trace_table "$STEP"; } | sed 's/^/# trace /' >&2
# heap_window PID: "REQUESTS0 INUSE0 REQUESTS1 INUSE1", the worker's heap
# line at the sample at request $WARM (its first one when it had none yet)
# and at the last sample.
heap_window() {
	local log=$MAIN_LOG r0 b0 r1 b1
	case " $FAULTS_PIDS " in *" $1 "*) log=$FAULTS_LOG ;; esac
	read -r r0 b0 < <(awk -v n="$WARM" -v p="$1" '$1 == n && $3 == p { print $8, $9 }' "$T/trace")
	read -r r1 b1 < <(awk -v n="$TOTAL" -v p="$1" '$1 == n && $3 == p { print $8, $9 }' "$T/trace")
	[ "${r0:-0}" = 0 ] && read -r _ r0 b0 < <(heap_lines "$log" | awk -v p="$1" '$1 == p' | head -n 1)
	echo "${r0:-0} ${b0:-0} ${r1:-0} ${b1:-0}"
}
for pid in $MAIN_PIDS $FAULTS_PIDS; do
	read -r hr0 hb0 hr1 hb1 < <(heap_window "$pid")
	say "  worker $pid: $(awk -v p="$pid" '$3 == p { r = $4; a = $7 } $3 == p && $1 == w { r0 = $4; a0 = $7 }
		END { printf "VmRSS %+d kB, RssAnon %+d kB from request %d to the end", r - r0, a - a0, w }' w="$WARM" "$T/trace");" \
		"live heap $hb0 -> $hb1 bytes ($((hb1 - hb0)), its requests $hr0 to $hr1)"
done

# --- assertions ----------------------------------------------------------------------
check "all $TOTAL requests answered ($answered; $missing missing)" test "$answered" = "$TOTAL"
check "every answer has its kind's status, X-Cache and size ($wrong wrong)" test "$wrong" = 0

n502=$(soak_count fault-503) n504=$(soak_count fault-hang)
statuses_5xx() { # statuses_5xx "200:5 502:3 ...": the 5xx part
	tr ' ' '\n' <<<"$1" | grep '^5' | tr '\n' ' ' | sed 's/ $//'
}
check "5xx: exactly the injected ones, $n502 x 502 (always503) + $n504 x 504 (hang) = $n5xx" \
	test "$n5xx" = $((n502 + n504))
check "5xx from the main pool (moto): none ('$(statuses_5xx "$main_status")')" \
	test -z "$(statuses_5xx "$main_status")"
check "5xx from the faults pool: '502:$n502 504:$n504'" \
	test "$(statuses_5xx "$faults_status")" = "502:$n502 504:$n504"
nretried=$(soak_count fault-retried)
check "fakes3 answered each retried key one 503, then 200 ($nretried keys)" \
	test "$(grep -c ' /imgsvc-test/original-images/fail503x1/r[0-9]*/thumb.jpg 503$' "$FAKE_REQUESTS")" = "$nretried" -a \
	"$(grep -c ' /imgsvc-test/original-images/fail503x1/r[0-9]*/thumb.jpg 200$' "$FAKE_REQUESTS")" = "$nretried"

check "faults log: every always503 request was tried 3 times (retries = 2)" \
	test "$(log_after "$FAULTS_LOG" "$faults0" | grep ' /always503/' | grep -c 'after 3 attempt(s)')" = "$n502"

check "main pool: the same two workers throughout ($MAIN_PIDS)" test "$END_MAIN_PIDS" = "$MAIN_PIDS"
check "faults pool: the same two workers throughout ($FAULTS_PIDS)" test "$END_FAULTS_PIDS" = "$FAULTS_PIDS"
# Both main workers busy: each took at least a tenth of the pool's
# requests. lighttpd does not share them out evenly (19% and 81% in one
# CI run, 27% and 73% over 100,000), so no more than that is asked; the
# leak bound each worker's RSS case can see is printed with it.
for pid in $MAIN_PIDS; do
	served=$(awk -v p="$pid" -v n="$TOTAL" '$1 == n && $3 == p { print $6 }' "$T/trace")
	check "main worker $pid served $served of $main_requests (at least a tenth)" \
		test "$((served * 10))" -ge "$main_requests"
done

# status_hist: "CODE:COUNT ..." of request lines on stdin, as soakmix writes them.
status_hist() {
	sed -n 's/.* status=\([0-9]*\) .*/\1/p' | sort | uniq -c |
		awk '{ printf "%s%s:%s", (NR > 1 ? " " : ""), $2, $1 }'
}
for pool in main faults; do
	if [ $pool = main ]; then log=$MAIN_LOG base=$main0; else log=$FAULTS_LOG base=$faults0; fi
	want=${pool}_requests wanth=${pool}_status
	lines=$(log_after "$log" "$base" | wc -l)
	check "$pool log: one line per request ($lines lines, ${!want} requests)" test "$lines" = "${!want}"
	hist=$(log_after "$log" "$base" | status_hist)
	check "$pool log: the statuses the clients got ($hist)" test "$hist" = "${!wanth}"
done
SERVER_LOG=$MAIN_LOG
check "main log: no derivative cache write failed" log_lacks "cache write failed"

# Per worker: the sample at $WARM against the last one.
sanitized=no
"$IMGSVC" -V 2>&1 | grep -q sanitizers && sanitized=yes
for pid in $MAIN_PIDS $FAULTS_PIDS; do
	read -r _ pool _ rss0 _ _ < <(awk -v n="$WARM" -v p="$pid" '$1 == n && $3 == p' "$T/trace")
	read -r _ _ _ rss1 _ _ < <(awk -v n="$TOTAL" -v p="$pid" '$1 == n && $3 == p' "$T/trace")
	read -r hr0 hb0 hr1 hb1 < <(heap_window "$pid")
	grow=$((hb1 - hb0)) reqs=$((hr1 - hr0))
	bound=$((HEAP_SLACK_KB * 1024 + reqs * HEAP_PER_REQUEST))
	title="$pool worker $pid: live heap $hb0 -> $hb1 bytes from its request $hr0 to $hr1 ($grow over $reqs requests) <= $bound"
	rtitle="$pool worker $pid: VmRSS $rss0 -> $rss1 kB from request $WARM to $TOTAL ($((rss1 - rss0)) kB) <= $RSS_GUARD_KB kB"
	if [ $sanitized = yes ]; then
		skip "$title" "sanitized build: ASan's allocator, not glibc's"
		skip "$rtitle" "sanitized build: RSS says nothing"
	else
		[ "$reqs" -gt 0 ] && say "$pool worker $pid: $reqs requests between its heap lines: the next case fails a leak of $((bound / reqs + 1)) bytes a request or more"
		if [ "$reqs" -gt 0 ]; then
			check "$title" test "$grow" -le "$bound"
		else
			# A short run (SOAK_REQUESTS) may leave a worker too few.
			skip "$title" "fewer than $HEAP_EVERY requests after request $WARM: no two heap lines"
		fi
		check "$rtitle" test $((rss1 - rss0)) -le "$RSS_GUARD_KB"
	fi
	fds=$(awk -v p="$pid" '$3 == p { print $5 }' "$T/trace" | sort -n | uniq | tr '\n' ' ')
	lo=$(awk -v p="$pid" '$3 == p { print $5 }' "$T/trace" | sort -n | head -n 1)
	hi=$(awk -v p="$pid" '$3 == p { print $5 }' "$T/trace" | sort -n | tail -n 1)
	check "$pool worker $pid: open descriptors stay within $FD_SLACK (seen: ${fds% })" \
		test $((hi - lo)) -le "$FD_SLACK"
done
