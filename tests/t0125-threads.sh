#!/usr/bin/env bash
# t0125-threads.sh - one imgsvc process serving several requests at once
# ([server] threads), the image slots file beside the state file, and
# SIGTERM finishing every request in flight. imgsvc runs under spawn-fcgi,
# one process, against tests/fakes3.py, whose /slow/ objects answer after
# 1 s: requests that overlap take about 1 s together, one after another
# they would take 1 s each.
. "$(dirname "$0")/lib.sh"
require_tools spawn-fcgi cgi-fcgi
require_imgsvc

N=6
mkdir -p "$T/objects"
cp "$IMAGES/photo2mp.jpg" "$T/objects/photo.jpg"
start_fakes3

CFG_ENDPOINT=$FAKE_URL CFG_KEY_ID=AKIDFAKE CFG_SECRET=fake-secret CFG_TIMEOUT_MS=5000 \
	CFG_THREADS=8 CFG_IMAGE_WORKERS=1 CFG_STATE_FILE=$T/thr.state \
	write_config "$T/imgsvc.ini"
start_spawn_fcgi "$T/imgsvc.ini"
sleep 0.3
WORKER=$(imgsvc_pids | head -n 1)

# creq I PATH [QUERY]: cgi_req's request into $T/r.I.raw, in the background.
creq() {
	env -i PATH="$PATH" GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1 \
		SERVER_NAME=127.0.0.1 SERVER_PORT=80 REMOTE_ADDR=127.0.0.1 \
		SERVER_SOFTWARE=cgi-fcgi SCRIPT_NAME="$MOUNT" QUERY_STRING="${3:-}" \
		REQUEST_METHOD=GET PATH_INFO="$2" REQUEST_URI="$MOUNT$2" \
		HTTP_X_API_KEY="$KEY_WEB" \
		timeout 30 cgi-fcgi -bind -connect "$FCGI_SOCKET" </dev/null >"$T/r.$1.raw" 2>/dev/null &
	BATCH="$BATCH $!"
}
# wait_batch: waits for the requests creq started (not the servers).
wait_batch() {
	wait $BATCH
	BATCH=
}
BATCH=
# all_ok: every response of the last batch is a 200.
all_ok() {
	local i bad=0
	for i in $(seq "$N"); do
		head -n 1 "$T/r.$i.raw" | grep -q '^Status: 200' || bad=$((bad + 1))
	done
	[ "$bad" = 0 ] || { diag "$bad of $N not 200"; return 1; }
}

check "the start-up line says 8 threads and 1 host-wide image slot" \
	log_has 'started: .* 8 threads, 1 image slots \(host-wide\)'
check "the slots file is made beside the state file" test -s "$T/thr.state.slots"

start=$(date +%s%N)
for i in $(seq "$N"); do creq "$i" /slow/photo.jpg; done
wait_batch
elapsed=$((($(date +%s%N) - start) / 1000000))
check "$N originals that each wait 1 s on S3 at once: all 200" all_ok
check "  in ${elapsed} ms: they overlapped (one after another: >= $((N * 1000)))" \
	test "$elapsed" -lt 3000
check "  one process served them all" test "$(imgsvc_pids | wc -w)" = 1

# Resizes with one image slot: all served, one image in work at a time.
THREADS_BEFORE=$(ls "/proc/$WORKER/task" | wc -l)
for i in $(seq "$N"); do creq "$i" /photo.jpg "w=$((100 + i))"; done
wait_batch
check "$N resizes at once with image_workers = 1: all 200" all_ok
check "  no slot left taken" sh -c "od -An -tx1 -j 128 -N 16 '$T/thr.state.slots' | grep -qv '[1-9a-f]'"
# GraphicsMagick's OpenMP keeps a pool of threads once an image used more
# than one; each image must run on its one thread (the slots share out the
# cores), so the resizes add no thread to the 8 serving ones and the main
# one (and a sanitizer's own, counted before as after).
check "  the worker runs as many threads after the resizes as before ($THREADS_BEFORE: no OpenMP pool)" \
	test "$(ls "/proc/$WORKER/task" | wc -l)" = "$THREADS_BEFORE"

# Resizes of originals that take 1 s to arrive: with image_workers = 1 the
# process holds at most 4 originals for image work at once (src/gate.h),
# so 6 take two rounds of the S3 wait, where 6 passthroughs took one.
start=$(date +%s%N)
for i in $(seq "$N"); do creq "$i" /slow/photo.jpg "w=$((200 + i))"; done
wait_batch
elapsed=$((($(date +%s%N) - start) / 1000000))
check "$N resizes of slow originals: all 200" all_ok
# (The upper bound only catches a hang: on a loaded machine six resizes
# one after another can take seconds.)
check "  in ${elapsed} ms: 4 originals in hand at once, then 2 (>= 2000; unbounded: one round)" \
	test "$elapsed" -ge 2000 -a "$elapsed" -lt 20000

# The host's one image slot held by another live process (a sleep whose
# pid the test writes in as the slot's owner, as a worker of another
# spawn-fcgi pool would be): resizes wait for it until their deadline
# (timeout_ms 5000), then answer 503 saying the server is busy, with
# Retry-After, and log which wait ran out. (Four wait for the slot holding
# the process's 4 places for originals, until their deadline; the other
# two wait for a place, and give up 1 s before theirs: a place freed at the
# deadline would start a fetch that could only time out, a 504.)
# Once the holder dies its slot is reclaimed and a resize succeeds.
sleep 60 &
HOLDER=$!
python3 -c 'import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(128)
    f.write(struct.pack("<i", int(sys.argv[2])))' "$T/thr.state.slots" "$HOLDER"
start=$(date +%s%N)
for i in $(seq "$N"); do creq "$i" /photo.jpg "w=$((300 + i))"; done
wait_batch
elapsed=$((($(date +%s%N) - start) / 1000000))
# busy_answers: how many of the batch are a JSON 503 saying the server is
# busy, with Retry-After: 1.
busy_answers() {
	local i n=0
	for i in $(seq "$N"); do
		head -n 1 "$T/r.$i.raw" | grep -q '^Status: 503' &&
			grep -q '^Content-Type: application/json' "$T/r.$i.raw" &&
			grep -q '^Retry-After: 1' "$T/r.$i.raw" &&
			grep -q '"Server busy: no capacity for the image work before the deadline; try again shortly"' \
				"$T/r.$i.raw" && n=$((n + 1))
	done
	echo "$n"
}
check "$N resizes while another process holds the only image slot: 503 busy, Retry-After, after the deadline (${elapsed} ms)" \
	test "$(busy_answers)" = "$N" -a "$elapsed" -ge 4900 -a "$elapsed" -lt 9000
check "  each logged as a 503 with the wait that ran out: 4 for the slot, 2 for a place" \
	test "$(grep -cE 'status=503 .*detail="no image slot came free before the deadline \(timeout_ms\): host busy"' \
		"$SERVER_LOG")" = 4 -a \
	"$(grep -cE 'status=503 .*detail="no place for another original before the deadline \(timeout_ms\): host busy"' \
		"$SERVER_LOG")" = 2
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
creq 1 /photo.jpg w=333
wait_batch
check "  once the holder is gone its slot is reclaimed: the next resize is a 200" \
	grep -q '^Status: 200' "$T/r.1.raw"

# SIGTERM while requests are in flight: each completes, then the exit.
for i in $(seq "$N"); do creq "$i" /slow/photo.jpg; done
sleep 0.4
kill -TERM "$WORKER"
wait_batch
check "SIGTERM with $N requests in flight: every one completes (200)" all_ok
for i in $(seq 50); do kill -0 "$WORKER" 2>/dev/null || break; sleep 0.1; done
check "  then the process exits" sh -c "! kill -0 $WORKER 2>/dev/null"
check "  and says so in the log" log_has 'stopping on signal: finishing the requests in flight'
