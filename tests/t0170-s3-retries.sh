#!/usr/bin/env bash
# t0170-s3-retries.sh - retries, keep-alive, AccessDenied and SIGTERM against
# tests/fakes3.py, a fault-injecting S3 stand-in on loopback (moto will not
# answer 503 or stall on demand). imgsvc runs under spawn-fcgi, one worker.
. "$(dirname "$0")/lib.sh"
require_tools spawn-fcgi cgi-fcgi
require_imgsvc

mkdir -p "$T/objects"
cp "$IMAGES/photo2mp.jpg" "$T/objects/photo.jpg"
start_fakes3

CFG_ENDPOINT=$FAKE_URL CFG_KEY_ID=AKIDFAKE CFG_SECRET=fake-secret \
	CFG_TIMEOUT_MS=3000 CFG_RETRIES=3 write_config "$T/imgsvc.ini"
start_spawn_fcgi "$T/imgsvc.ini"
sleep 0.3
WORKER=$(imgsvc_pids | head -n 1)

attempts() { grep -c " GET /$BUCKET/$PREFIX$1 " "$FAKE_REQUESTS"; }

cgi_req /photo.jpg
check "GET through the fake S3" status_is 200
check "body byte-identical" body_same_as "$IMAGES/photo2mp.jpg"

cgi_req /fail503x2/photo.jpg
check "503 SlowDown twice, then 200: served" status_is 200
check "  after exactly 3 attempts" test "$(attempts fail503x2/photo.jpg)" = 3
check "  body byte-identical" body_same_as "$IMAGES/photo2mp.jpg"

cgi_req /fail500x1/photo.jpg
check "500 once, then 200: served" status_is 200
check "  after exactly 2 attempts" test "$(attempts fail500x1/photo.jpg)" = 2

start=$(date +%s%N)
cgi_req /always503/photo.jpg
elapsed=$((($(date +%s%N) - start) / 1000000))
ok_json_error "503 on every attempt: 502" 502
check "  1 + retries (3) = 4 attempts" test "$(attempts always503/photo.jpg)" = 4
check "  backoff stays within the deadline (${elapsed} ms < 3000)" test "$elapsed" -lt 3000
check "  logged with S3's code" log_has 'always503/photo.jpg status=502 .*SlowDown after 4 attempt'

cgi_req /denied/photo.jpg
ok_json_error "S3 AccessDenied on GET: 404" 404
check "  warning names s3:ListBucket" log_has 'warning: .*AccessDenied.*s3:ListBucket'

cgi_req /nothing-here.jpg
ok_json_error "NoSuchKey: 404, no retry" 404
check "  exactly 1 attempt" test "$(attempts nothing-here.jpg)" = 1

# Kept-alive connections serve many requests: each of the worker's 16
# threads (the default) keeps its own (libcurl cannot share connections
# between threads), so 48 GETs one after another, taken by whichever
# thread is waiting, need at most 16 connections.
before=$(wc -l <"$FAKE_REQUESTS")
for i in $(seq 48); do cgi_req /photo.jpg; done
ports=$(tail -n +$((before + 1)) "$FAKE_REQUESTS" | awk '{print $1}' | sort -u | wc -l)
check "48 GETs reuse kept-alive S3 connections, at most one a thread (saw $ports, <= 16)" \
	test "$ports" -ge 1 -a "$ports" -le 16

start=$(date +%s%N)
cgi_req /hang/photo.jpg
elapsed=$((($(date +%s%N) - start) / 1000000))
ok_json_error "S3 accepts and never answers: 504" 504
check "  answered at the deadline (${elapsed} ms, deadline 3000)" \
	test "$elapsed" -ge 2900 -a "$elapsed" -lt 4500
check "  logged as a timeout" log_has 'hang/photo.jpg status=504'

check "the same worker served everything" one_worker_is "$WORKER"
cgi_req /photo.jpg
check "and it still serves" status_is 200

# SIGTERM while a request is in flight: the request completes, then exit.
(sleep 0.4; kill -TERM "$WORKER") &
killer=$!
cgi_req /slow/photo.jpg
wait "$killer"
check "SIGTERM mid-request: the request completes (200)" status_is 200
check "  with the whole body" body_same_as "$IMAGES/photo2mp.jpg"
for i in $(seq 50); do kill -0 "$WORKER" 2>/dev/null || break; sleep 0.1; done
check "  then the worker exits" sh -c "! kill -0 $WORKER 2>/dev/null"
check "  and says so in the log" log_has 'stopping on signal'
