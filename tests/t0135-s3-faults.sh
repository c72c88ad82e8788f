#!/bin/bash
# t0135-s3-faults.sh - every way S3 fails, through lighttpd (one worker)
# against tests/fakes3.py (issue 6). For each fault, asked for as an
# original and as a derivative (?w=8, derivative_cache on):
#   - the status README "Responses" gives, with its JSON body: 502 for an error answer,
#     a redirect, a broken or unreadable answer; 504 when S3 does not answer
#     within timeout_ms; 404 for NoSuchKey and AccessDenied; 415 for a 200
#     that is not an image but was to be transformed;
#   - the time it took: within the deadline plus slack, and not instant
#     where backoff must happen (the fake's clock shows each wait);
#   - the attempts S3 saw: 3 (retries = 2) for 500, 503 and a connection
#     broken before any byte reached the client; 1 for everything else;
#   - no PUT: nothing was written to the derivative cache;
#   - the same worker then serves a good request.
#
# [s3] timeout_ms = 2000 (DEADLINE), connect_timeout_ms = 1000, retries = 2;
# the backoff before retry n is 25-50 ms, then 50-100 ms (equal jitter).
#
# What a client sees when S3 breaks off an original mid-body: imgsvc holds
# the status, headers and first bytes until 256 KiB (STAGE_MAX) are ready
# to write. A smaller original has reached nobody yet: the attempt is
# retried, and when all fail the client gets a clean 502 (504 for a stall).
# A larger one is already on its way: imgsvc stops, and ends the FastCGI
# connection without END_REQUEST; lighttpd then closes the client's
# connection at once. The client has status 200, the whole object's
# Content-Length and fewer bytes: curl exits 18 ("transfer closed with N
# bytes remaining to read"). Never a complete-looking 200.

. "$(dirname "$0")/lib.sh"
require_imgsvc
require_tools curl lighttpd gm

DEADLINE=2000
# Generous for a loaded machine, yet below DEADLINE: a request that waited
# for two deadlines still fails.
SLACK=1500
FAST_MS=1500
BIG=photo.jpg
BIG_LEN=$(wc -c <"$IMAGES/photo2mp.jpg")

make_small_png
mkdir -p "$T/objects"
for f in good.png orig.png deriv.png deriv2.png; do cp "$T/small.png" "$T/objects/$f"; done
cp "$IMAGES/photo2mp.jpg" "$T/objects/$BIG"
# fakes3.py logs the signing key id and the time of each request too.
export FAKES3_LONG_LOG=1
start_fakes3
CFG_ENDPOINT=$FAKE_URL CFG_KEY_ID=AKIDFAKE CFG_SECRET=fake-secret-0123456789 \
	CFG_TIMEOUT_MS=$DEADLINE CFG_CONNECT_TIMEOUT_MS=1000 CFG_RETRIES=2 \
	CFG_DERIVATIVE_CACHE=yes write_config "$T/imgsvc.ini"
start_lighttpd "$T/imgsvc.ini" 1

# --- helpers -----------------------------------------------------------------------

# attempts_are KEY N: S3 saw N GETs of the original KEY since the mark.
attempts_are() { fake_saw GET "$PREFIX$1" "$2"; }

# gaps_at_least KEY MS...: the waits between consecutive attempts at KEY,
# by the fake's clock, are at least these.
gaps_at_least() {
	local key=$1
	shift
	fake_since | grep " GET /$BUCKET/$PREFIX$key " | awk '{ print $6 }' >"$T/times"
	"$PY" - "$T/times" "$@" <<'EOF'
import sys
t = [float(x) for x in open(sys.argv[1])]
want = [int(x) for x in sys.argv[2:]]
gaps = [round((b - a) * 1000) for a, b in zip(t, t[1:])]
if len(gaps) != len(want) or any(g < w for g, w in zip(gaps, want)):
    sys.exit("waits between attempts %s ms, expected at least %s" % (gaps, want))
EOF
}

no_cache_write() {
	fake_since | grep -q " PUT " || return 0
	echo "S3 saw a PUT:"
	fake_since | grep " PUT "
	return 1
}

between() {
	[ "$ELAPSED_MS" -ge "$1" ] && [ "$ELAPSED_MS" -le "$2" ] && return 0
	echo "took $ELAPSED_MS ms, expected $1..$2"
	return 1
}

# worker_serves: a good original, byte-identical, from the same worker.
# (It replaces the last response: check that first.)
worker_serves() {
	get /good.png
	status_is 200 || return 1
	body_same_as "$T/small.png" || return 1
	one_worker_is "$WORKER"
}

# limits CLASS: MIN and MAX (ms) of a fault's time, and the least waits
# between its attempts (GAPS).
limits() {
	GAPS=
	case $1 in
	fast) MIN=0 MAX=$FAST_MS ;;
	backoff) MIN=75 MAX=$((DEADLINE + SLACK)) GAPS="25 50" ;;
	# The fake holds each broken answer 300 ms before the reset.
	resets) MIN=$((3 * 300 + 75)) MAX=$((DEADLINE + SLACK)) GAPS="325 350" ;;
	deadline) MIN=$((DEADLINE - 100)) MAX=$((DEADLINE + SLACK)) ;;
	esac
}

# fault TITLE PATH STATUS ATTEMPTS CLASS: one request, every expectation.
fault() {
	local title=$1 path=$2 status=$3 want=$4 key
	key=${path%%\?*}
	key=${key#/}
	limits "$5"
	fake_mark
	timed_get "$path"
	ok_json_error "$title: $status with a JSON message" "$status"
	check "$title: $want attempt(s) at S3" attempts_are "$key" "$want"
	check "$title: took $ELAPSED_MS ms ($MIN..$MAX)" between "$MIN" "$MAX"
	if [ -n "$GAPS" ]; then
		# shellcheck disable=SC2086
		check "$title: backed off between attempts (>= $GAPS ms)" gaps_at_least "$key" $GAPS
	fi
	check "$title: the same worker then serves a good request" worker_serves
	check "$title: nothing written to the derivative cache" no_cache_write
}

# both TITLE MODE STATUS ATTEMPTS CLASS: as an original and as a derivative.
both() {
	fault "$1, original" "/$2/orig.png" "$3" "$4" "$5"
	fault "$1, ?w=8" "/$2/deriv.png?w=8" "$3" "$4" "$5"
}

# --- control: the checks above can fail -------------------------------------------

get /good.png
check "control: a good original is served" body_same_as "$T/small.png"
WORKER=$(imgsvc_pids | head -n 1)
fake_mark
tget "/deriv2.png?w=8"
check "control: a good derivative is served" body_identifies_as "8 6 PNG"
get /good.png
check "control: its derivative is written (a PUT the fake sees)" \
	sh -c "tail -n +$((FAKE_MARK + 1)) '$FAKE_REQUESTS' | grep -q ' PUT /$BUCKET/resized/w-8/deriv2.png '"

# --- errors S3 answers ---------------------------------------------------------------

both "500 InternalError on every attempt" always500 502 3 backoff
both "503 SlowDown on every attempt" always503 502 3 backoff
both "500 with a garbage body (no S3 XML)" garbage500 502 3 backoff
both "503 without a body" empty503 502 3 backoff
both "403 AccessDenied" denied 404 1 fast
check "403 AccessDenied: logged as a warning naming s3:ListBucket" \
	log_has 'warning: .*AccessDenied.*s3:ListBucket'
both "403 SignatureDoesNotMatch" forbidden 502 1 fast
both "403 without a body" empty403 502 1 fast
both "400 with a garbage body" garbage400 502 1 fast
both "301 PermanentRedirect" redirect301 502 1 fast
check "301 PermanentRedirect: the log names it" log_has 'status=502 .*S3 301 PermanentRedirect after 1 attempt'
both "307 TemporaryRedirect" redirect307 502 1 fast
fault "NoSuchKey, original" /missing.png 404 1 fast
fault "NoSuchKey, ?w=8" "/missing.png?w=8" 404 1 fast

# --- S3 silent or broken off -------------------------------------------------------------

both "no answer at all" hang 504 1 deadline
both "status line and headers, then no body" hangheaders 504 1 deadline
both "half the body, then FIN (short of Content-Length)" short 502 3 backoff
both "half the body, then a reset (RST)" reset 502 3 resets
both "half the body, then silence" stallbody 504 1 deadline
check "a stalled body is logged as a timeout" log_has 'stallbody/orig.png status=504 .*Timeout'

# --- not an image ---------------------------------------------------------------------------

fault "200 text/html, to be transformed" "/html/page.png?w=8" 415 1 fast
# An original is streamed as it is (README "Responses": a file
# that is not a recognised image is passed through), but never as a page
# a browser would run: application/octet-stream, nosniff.
fake_mark
get /html/page.png
check "200 text/html as an original: passed through as application/octet-stream, nosniff" \
	eval 'status_is 200 && header_is Content-Type application/octet-stream && header_is X-Content-Type-Options nosniff && grep -q "Please sign in" "$T/resp.body"'
check "200 text/html as an original: one attempt, no cache write" \
	eval 'attempts_are html/page.png 1 && no_cache_write'

# --- transient: one failure, then the object -------------------------------------------------

# recovers TITLE PATH: served byte-identical after 2 attempts.
recovers() {
	local key=${2#/}
	fake_mark
	get "$2"
	check "$1: served after a retry, byte-identical" body_same_as "$T/small.png"
	check "$1: 2 attempts at S3" attempts_are "$key" 2
}
recovers "503 SlowDown once" /fail503x1/orig.png
recovers "short body once (nothing sent yet, so retried)" /shortx1/orig.png
recovers "reset once (nothing sent yet, so retried)" /resetx1/orig.png
fake_mark
tget "/shortx1/deriv.png?w=8"
check "short body once, ?w=8: the derivative is made from the whole retried source" \
	body_identifies_as "8 6 PNG"
get /good.png
check "  and that one is written to the cache" \
	sh -c "tail -n +$((FAKE_MARK + 1)) '$FAKE_REQUESTS' | grep -q ' PUT /$BUCKET/resized/w-8/shortx1/deriv.png '"

# --- a large original breaks off after it started streaming ----------------------------------

# broken_stream TITLE MODE CLASS DETAIL: status 200 already out, the
# connection closed early, curl says so.
broken_stream() {
	local title=$1 size
	limits "$3"
	[ "$3" = fast ] && MAX=$((FAST_MS + 300))
	fake_mark
	timed_get "/$2/$BIG"
	size=$(wc -c <"$T/resp.body")
	check "$title: the client has status 200 and the whole Content-Length ($BIG_LEN)" \
		eval 'status_is 200 && header_is Content-Length "$BIG_LEN"'
	check "$title: but fewer bytes ($size), and curl reports the early close (exit 18)" \
		eval '[ "$size" -gt 0 ] && [ "$size" -lt "$BIG_LEN" ] && grep -q "curl: (18) transfer closed with $((BIG_LEN - size)) bytes remaining" "$T/curl.err"'
	check "$title: closed when imgsvc gives up, not at lighttpd's idle timeout ($ELAPSED_MS ms; $MIN..$MAX)" \
		between "$MIN" "$MAX"
	check "$title: one attempt (bytes had reached the client)" attempts_are "$2/$BIG" 1
	check "$title: logged" log_has "/$2/$BIG status=200 bytes=$size .*failed after the response started \\($4\\)"
	check "$title: the same worker then serves a good request" worker_serves
	check "$title: nothing written to the derivative cache" no_cache_write
}
broken_stream "1.2 MB original, half, then FIN" short fast 502
broken_stream "1.2 MB original, half, then a reset" reset fast 502
broken_stream "1.2 MB original, half, then silence" stallbody deadline 504
fault "1.2 MB original to transform, half, then FIN" "/short/$BIG?w=100" 502 3 backoff

# --- an S3 that answers nothing, cache reads included -----------------------------------------

stop_bg "$LIGHTTPD_PID"
start_bg fakes3-hang "$PY" "$TESTS_DIR/fakes3.py" "$T/hang.port" "$T/objects" "$FAKE_REQUESTS" hang
for i in $(seq 100); do [ -s "$T/hang.port" ] && break; sleep 0.1; done
[ -s "$T/hang.port" ] || bail_out "fakes3.py (hang) did not start"
CFG_ENDPOINT=http://127.0.0.1:$(cat "$T/hang.port") CFG_KEY_ID=AKIDFAKE \
	CFG_SECRET=fake-secret-0123456789 CFG_TIMEOUT_MS=$DEADLINE CFG_CONNECT_TIMEOUT_MS=1000 \
	CFG_RETRIES=2 CFG_DERIVATIVE_CACHE=yes write_config "$T/hang.ini"
start_lighttpd "$T/hang.ini" 1
fake_mark
timed_get "/orig.png?w=8"
ok_json_error "S3 silent for everything, ?w=8: 504 with a JSON message" 504
check "  one deadline for the cache read and the original together ($ELAPSED_MS ms)" \
	between $((DEADLINE - 100)) $((DEADLINE + SLACK))
check "  S3 saw the cache read, and no GET of the original after the deadline" \
	eval 'fake_since | grep -q " GET /$BUCKET/resized/w-8/orig.png hang" && attempts_are orig.png 0'
WORKER=$(imgsvc_pids | head -n 1)
http GET "$BASE/_imgsvc/health"
check "  the worker still answers (health)" eval 'status_is 200 && one_worker_is "$WORKER"'
