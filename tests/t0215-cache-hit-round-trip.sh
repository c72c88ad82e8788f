#!/bin/bash
# t0215-cache-hit-round-trip.sh - a derivative cache hit costs one S3 round
# trip: the derivative's GET and a HEAD of its original run side by side.
# Through lighttpd (one worker) against tests/fakes3.py answering every GET
# and HEAD DELAY ms late, as a distant S3 would:
#   - a hit takes about one DELAY, not two (the cache read, then the check
#     of the original, one after the other, took at least 2 x DELAY);
#   - S3 sees exactly one GET of the derivative and one HEAD of the
#     original for it, and nothing else;
#   - a hit is never stale: a rewritten original (a new ETag) makes the
#     next request a miss with the new image, and a deleted one a 404;
#   - a HEAD that fails on a hit falls back to a conditional GET of the
#     original: 304 serves the derivative, 200 the new original; on a miss
#     a failing HEAD does not hold up or fail the GET of the original;
#   - a cache read that fails is computed afresh from the original.

. "$(dirname "$0")/lib.sh"
require_imgsvc
require_tools curl lighttpd gm

DELAY=300
# A hit must beat this; the sequential path could not go under 2 x DELAY.
HIT_MAX=$((DELAY * 16 / 10))

make_small_png
mkdir -p "$T/objects"
for f in a.png b.png c.png d.png; do cp "$T/small.png" "$T/objects/$f"; done
gm convert -size 32x8 gradient:green-yellow "$T/wide.png"
export FAKES3_DELAY_MS=$DELAY
start_fakes3
CFG_ENDPOINT=$FAKE_URL CFG_KEY_ID=AKIDFAKE CFG_SECRET=fake-secret-0123456789 \
	CFG_TIMEOUT_MS=5000 CFG_RETRIES=2 CFG_DERIVATIVE_CACHE=yes write_config "$T/imgsvc.ini"
start_lighttpd "$T/imgsvc.ini" 1

# --- helpers -----------------------------------------------------------------------

# requests_are N: S3 saw N requests in all since the mark.
requests_are() {
	local n
	n=$(fake_since | wc -l)
	[ "$n" = "$1" ] && return 0
	echo "S3 saw $n requests, expected $1:"
	fake_since
	return 1
}

# wait_put KEY: the derivative's deferred PUT has reached S3.
wait_put() {
	local i
	for i in $(seq 50); do
		fake_since | grep -q " PUT /$BUCKET/$1 " && return 0
		sleep 0.1
	done
	echo "no PUT of $1 since the mark"
	fake_since
	return 1
}

# request PATH: GET with the web key; the worker's log line in LOG_LINE,
# its total_ms in TOTAL_MS.
request() {
	fake_mark
	log_mark
	tget "$1"
	wait_log_line " ${1%%\?*} "
	TOTAL_MS=$(printf '%s\n' "$LOG_LINE" | sed -n 's/.* total_ms=\([0-9]*\).*/\1/p')
}

# served AS CACHE: the last response is the derivative AS, X-Cache CACHE.
served() {
	status_is 200 || return 1
	body_identifies_as "$1" || return 1
	header_is X-Cache "$2"
}

# --- a miss, then hits ---------------------------------------------------------------

request "/a.png?w=8"
check "first request: the derivative, a miss" served "8 6 PNG" miss
check "  its derivative is written to the cache" wait_put resized/w-8/a.png
save_response miss

best=
for i in 1 2 3; do
	request "/a.png?w=8"
	check "hit $i: X-Cache: hit, the miss's bytes" \
		eval 'served "8 6 PNG" hit && body_same_as "$T/miss.body"'
	check "  one GET of the derivative, one HEAD of the original, nothing else" \
		eval 'fake_saw GET resized/w-8/a.png 1 200 && fake_saw HEAD ${PREFIX}a.png 1 200 && requests_are 2'
	check "  S3's delay is real: at least $DELAY ms (total_ms=$TOTAL_MS)" \
		test "${TOTAL_MS:-0}" -ge "$DELAY"
	[ -z "$best" ] || [ "${TOTAL_MS:-999999}" -lt "$best" ] && best=${TOTAL_MS:-999999}
done
# The fastest of three: a loaded machine may slow one down, but no hit of
# the sequential path was ever under 2 x DELAY.
check "a hit costs one round trip: $best ms < $HIT_MAX ms (1.6 x $DELAY)" \
	test "$best" -lt "$HIT_MAX"

# --- never stale -----------------------------------------------------------------------

cp "$T/wide.png" "$T/objects/a.png"
request "/a.png?w=8"
check "original rewritten (a new ETag): a miss with the new image" served "8 2 PNG" miss
check "  S3 saw the derivative's GET, the HEAD, then a GET of the original" \
	eval 'fake_saw GET resized/w-8/a.png 1 200 && fake_saw HEAD ${PREFIX}a.png 1 200 && fake_saw GET ${PREFIX}a.png 1 200'
check "  the derivative is written again" wait_put resized/w-8/a.png
request "/a.png?w=8"
check "  the request after: a hit with the new image" served "8 2 PNG" hit

rm "$T/objects/d.png"
request "/d.png?w=8"
check "d.png (deleted before it was ever asked for): 404" json_error 404
cp "$T/small.png" "$T/objects/d.png"
request "/d.png?w=8"
wait_put resized/w-8/d.png >/dev/null
request "/d.png?w=8"
check "d.png restored: a hit" served "8 6 PNG" hit
rm "$T/objects/d.png"
request "/d.png?w=8"
ok_json_error "d.png deleted, its derivative still cached: 404, never the derivative" 404

# --- a HEAD that fails -------------------------------------------------------------------

# head503/: every HEAD of the original is answered 503; a GET is served.
request "/head503/b.png?w=8"
check "a miss whose HEAD fails: the derivative all the same" served "8 6 PNG" miss
check "  from one GET of the original" fake_saw GET "${PREFIX}head503/b.png" 1 200
# The HEAD's retries (three attempts, DELAY each) are not waited for.
check "  not held up by the HEAD's retries ($TOTAL_MS ms < $((3 * DELAY)) ms)" \
	test "${TOTAL_MS:-999999}" -lt $((3 * DELAY))
check "  written to the cache" wait_put resized/w-8/head503/b.png
request "/head503/b.png?w=8"
check "a hit whose HEAD fails: served from the cache" served "8 6 PNG" hit
check "  after the HEAD's attempts (1 + retries = 3)" fake_saw HEAD "${PREFIX}head503/b.png" 3 503
check "  vouched for by a conditional GET of the original (304)" \
	fake_saw GET "${PREFIX}head503/b.png" 1 304
cp "$T/wide.png" "$T/objects/b.png"
request "/head503/b.png?w=8"
check "original rewritten, its HEAD failing: a miss with the new image" served "8 2 PNG" miss
check "  the conditional GET brought the new original (200)" \
	fake_saw GET "${PREFIX}head503/b.png" 1 200

# --- a cache read that fails -------------------------------------------------------------

# cache503/: the original is served; every GET of its derivative gets 503.
request "/cache503/c.png?w=8"
check "the cache read fails (503 on every attempt): computed afresh" served "8 6 PNG" miss
check "  from one GET of the original" fake_saw GET "${PREFIX}cache503/c.png" 1 200
check "  the failed read is logged as a warning" \
	log_has 'warning: derivative cache read failed \(S3 503 SlowDown\)'

check "the worker served every request (one process)" eval '[ "$(imgsvc_pids | wc -l)" = 1 ]'
