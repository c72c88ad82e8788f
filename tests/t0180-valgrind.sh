#!/usr/bin/env bash
# t0180-valgrind.sh - one imgsvc worker under valgrind memcheck serves a mix
# of originals, clamped 12 MP JPEGs, HEADs, 403s, 404s, 400s, 405s, retried
# 503s and a 504, bodies broken off by S3 (cgi-fcgi, one at a time), then a
# short run of the soak's mix (tests/soak_lib.sh: VALGRIND_REQUESTS,
# default 300, every kind, from parallel clients through lighttpd), then
# exits on SIGTERM: no definite leak, no memory error.
# (tests/fakes3.py is the S3 here: the point is imgsvc's memory, not S3.)
. "$(dirname "$0")/lib.sh"
require_tools spawn-fcgi cgi-fcgi valgrind lighttpd curl gm
require_imgsvc
# An ASan binary cannot run under valgrind (both replace malloc; ASan's
# shadow memory is unmapped under valgrind). The sanitized run covers the
# same ground: every test's workers are leak-checked at exit.
sanitized && skip_all "built with --enable-sanitizers: valgrind cannot run an ASan binary (LeakSanitizer checks every test's workers instead)"

mkdir -p "$T/objects/fail503x1"
cp "$IMAGES/photo2mp.jpg" "$T/objects/photo.jpg"
cp "$IMAGES/photo12mp.jpg" "$T/objects/wide.jpg"
cp "$IMAGES/photo-dune.png" "$T/objects/dune.png"
make_small_png
cp "$T/small.png" "$T/objects/small.png"
start_fakes3
CFG_ENDPOINT=$FAKE_URL CFG_KEY_ID=AKIDFAKE CFG_SECRET=fake-secret \
	CFG_TIMEOUT_MS=2000 CFG_RETRIES=2 write_config "$T/imgsvc.ini"

spawn_n=1
FCGI_SOCKET=$T/vg.socket
SERVER_LOG=$T/vg.log
start_bg vg spawn-fcgi -n -s "$FCGI_SOCKET" -- "$(command -v valgrind)" --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite --error-exitcode=99 \
	--log-file="$T/valgrind.txt" "$IMGSVC" -c "$T/imgsvc.ini"
VG_PID=$BG_PID
wait_socket "$FCGI_SOCKET" || bail_out "spawn-fcgi did not create $FCGI_SOCKET"

fails=0
expect() { # expect STATUS PATH [METHOD [NAME=VALUE...]]
	local want=$1
	shift
	cgi_req "$@"
	[ "$HTTP_STATUS" = "$want" ] || { fails=$((fails + 1)); diag "$* -> $HTTP_STATUS, wanted $want"; }
}
for round in 1 2 3; do
	expect 200 /photo.jpg
	expect 200 /wide.jpg
	expect 200 /dune.png HEAD
	expect 404 /missing.jpg
	expect 403 /photo.jpg GET HTTP_X_API_KEY=wrong-key-123
	expect 400 /a/../b.jpg
	expect 405 /photo.jpg POST
	expect 200 /_imgsvc/health
	expect 502 /always503/photo.jpg
	expect 200 /wide.jpg GET QUERY_STRING="w=300&h=300&fit=cover&fm=webp"
	expect 200 /dune.png GET QUERY_STRING="w=200&rotate=90&fm=jpeg&q=60"
	expect 400 /photo.jpg GET QUERY_STRING="w=0"
done
expect 200 /fail503x1/photo.jpg
expect 504 /hang/photo.jpg
# Broken answers (t0135): retried and taken back, recovered, an aborted stream.
expect 502 /reset/small.png
expect 200 /shortx1/small.png
expect 200 /short/photo.jpg
expect 502 /short/small.png GET QUERY_STRING=w=8
expect 415 /html/page.png GET QUERY_STRING=w=8
check "every request under valgrind got its status ($fails wrong)" test "$fails" = 0
# Rounds 2 and 3: the two derivatives and wide.jpg's clamp (a derivative
# at max_width) are hits.
check "derivatives were cached and then served as hits" \
	sh -c "grep -c 'cache=hit' '$SERVER_LOG' | grep -qx 6"
check "a 201 to the cache write is a success (no warning)" \
	sh -c "! grep -q 'cache write failed' '$SERVER_LOG'"

cgi_req /wide.jpg
check "clamped output is 2000x1500 JPEG" body_identifies_as "2000 1500 JPEG"

# --- a short mixed run: every kind of t0410's soak, through lighttpd ------------
# The same menu (tests/soak_lib.sh) with fakes3 behind both "pools": hits,
# misses, 304s, 400/403/404/405, and the injected faults (always503: 502,
# denied: 404, hang: 504, fail503x1: 200), from parallel clients.
. "$TESTS_DIR/soak_lib.sh"
SOAK_TOTAL=${VALGRIND_REQUESTS:-300}
SOAK_PARALLEL=4
# Its images under soak/, beside the ones above; the fault prefixes and
# their thumb.jpg at the top, where fakes3 looks for them.
soak_fixtures "$T/objects/soak"
cp "$SOAK_FIX/thumb.jpg" "$T/objects/thumb.jpg"
LIGHTTPD_EXTERNAL=$FCGI_SOCKET start_lighttpd unused
soak_warm "$BASE/soak" "$BASE"
soak_menu "$T/menu" "$BASE/soak" "$BASE"
soak_retried_keys "$T/objects" "$(soak_count fault-retried)"
lines0=$(grep -c ' status=' "$SERVER_LOG")
t0=$(date +%s%N)
soak_batch 0 "$SOAK_TOTAL"
soak_check "$SOAK_TOTAL" $((($(date +%s%N) - t0) / 1000000))
absent=$(soakmix counts "$SOAK_MENU" "$SOAK_TOTAL" | awk '$2 == 0 { print $1 }' | tr '\n' ' ')
check "mixed run: every kind sent at least once (${absent:-none missing})" test -z "$absent"
check "mixed run: $SOAK_TOTAL answered ($answered), each as its kind must be ($wrong wrong)" \
	test "$answered" = "$SOAK_TOTAL" -a "$wrong" = 0
for i in $(seq 30); do
	lines=$(($(grep -c ' status=' "$SERVER_LOG") - lines0))
	[ "$lines" -ge "$SOAK_TOTAL" ] && break
	sleep 0.2
done
check "mixed run: one log line per request ($lines)" test "$lines" = "$SOAK_TOTAL"

# spawn-fcgi -n execs the program: VG_PID is valgrind running imgsvc.
kill -TERM "$VG_PID"
for i in $(seq 100); do grep -q "ERROR SUMMARY" "$T/valgrind.txt" 2>/dev/null && break; sleep 0.2; done
say "$(grep -E 'definitely lost|ERROR SUMMARY' "$T/valgrind.txt" | sed 's/^==[0-9]*== *//' | tr '\n' ' ')"
check "valgrind ran to the end" grep -q "ERROR SUMMARY" "$T/valgrind.txt"
check "no memory errors" grep -q "ERROR SUMMARY: 0 errors" "$T/valgrind.txt"
# What it found, in the log for whoever reads a failure.
grep -q "ERROR SUMMARY: 0 errors" "$T/valgrind.txt" ||
	sed -n '/^==[0-9]*== [A-Z][a-z]/,/^==[0-9]*== $/p' "$T/valgrind.txt" | head -80 >&2
check "no definite leaks" sh -c "grep -q 'ERROR SUMMARY' '$T/valgrind.txt' && ! grep -E 'definitely lost: [1-9]' '$T/valgrind.txt'"
