#!/bin/bash
# t0130-s3-failures.sh - S3 errors reach the client as 502/504 JSON, in
# bounded time, and the worker keeps serving (lighttpd, one worker each):
#   - a wrong secret: moto (signature checking on) answers
#     SignatureDoesNotMatch -> 502
#   - an unknown access key: InvalidAccessKeyId -> 502
#   - nothing listens on the endpoint port -> 502
#   - the endpoint accepts connections and never answers (a python3
#     listener on loopback) -> 504 within [s3] timeout_ms plus slack

. "$(dirname "$0")/lib.sh"

require_imgsvc
require_tools moto_server aws curl lighttpd
start_moto
upload_fixtures photo2mp.jpg

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# timed_get PATH: get, and the time it took in $ELAPSED_MS.
timed_get() {
	local t0
	t0=$(now_ms)
	get "$1"
	ELAPSED_MS=$(($(now_ms) - t0))
}

within() { # within MS
	[ "$ELAPSED_MS" -le "$1" ] && return 0
	echo "took $ELAPSED_MS ms, more than $1 ms"
	return 1
}

worker_alive() {
	http GET "$BASE/_imgsvc/health"
	status_is 200 || return 1
	one_worker_is "$WORKER_PID"
}

# failure_cases TITLE STATUS LIMIT_MS: two requests fail the same way in
# bounded time, the worker stays.
failure_cases() {
	local title=$1 status=$2 limit=$3
	timed_get /photo2mp.jpg
	ok_json_error "$title: GET answers $status with a JSON message" "$status"
	check "$title: within $limit ms (took $ELAPSED_MS)" within "$limit"
	WORKER_PID=$(imgsvc_pids | head -n 1)
	check "$title: then health 200 from the same worker" worker_alive
	timed_get /photo2mp.jpg
	check "$title: a second GET fails the same way" status_is "$status"
	check "$title: still one worker (pid $WORKER_PID)" one_worker_is "$WORKER_PID"
}

# --- control: the right secret works -------------------------------------------
write_config "$T/good.ini"
start_lighttpd "$T/good.ini"
get /photo2mp.jpg
check "control: the right key serves photo2mp.jpg" body_same_as "$IMAGES/photo2mp.jpg"

# --- wrong secret ---------------------------------------------------------------
CFG_SECRET=wrong-secret-0123456789 write_config "$T/badsecret.ini"
stop_bg "$LIGHTTPD_PID"
start_lighttpd "$T/badsecret.ini"
failure_cases "wrong S3 secret" 502 5000
check "wrong S3 secret: the log names SignatureDoesNotMatch" log_has SignatureDoesNotMatch
check "wrong S3 secret: the log never holds the secret" log_lacks wrong-secret-0123456789

# --- unknown access key ---------------------------------------------------------
CFG_KEY_ID=AKIAUNKNOWNUNKNOWN00 write_config "$T/badkey.ini"
stop_bg "$LIGHTTPD_PID"
start_lighttpd "$T/badkey.ini"
failure_cases "unknown access key id" 502 5000

# --- credentials SigV4 cannot sign with ------------------------------------------
# An access key id holding '/' cannot go into the signature's scope: the
# request is not sent at all (unsigned, S3 would answer 403 AccessDenied,
# which reads as a 404 and a ListBucket warning), and the client gets 500.
CFG_KEY_ID=AKIA/SLASHED/KEY0000 write_config "$T/unsignable.ini"
stop_bg "$LIGHTTPD_PID"
start_lighttpd "$T/unsignable.ini"
failure_cases "credentials SigV4 refuses" 500 5000
check "credentials SigV4 refuses: the log says the request could not be signed" \
	log_has 'status=500 .*SigningFailed.*cannot sign the request'
check "credentials SigV4 refuses: nothing went to S3 (no AccessDenied, no ListBucket warning)" \
	log_lacks 'AccessDenied'

# --- nothing listening ----------------------------------------------------------
closed=$(free_port)
CFG_ENDPOINT=http://127.0.0.1:$closed CFG_TIMEOUT_MS=3000 CFG_CONNECT_TIMEOUT_MS=1000 \
	write_config "$T/closed.ini"
stop_bg "$LIGHTTPD_PID"
start_lighttpd "$T/closed.ini"
failure_cases "endpoint port closed" 502 5000

# --- accepts, never answers -----------------------------------------------------
hang_port=$(free_port)
start_bg hang "$PY" -c '
import socket, sys, threading, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
held = []
def drain(c):
    try:
        while c.recv(65536):
            pass
    except OSError:
        pass
while True:
    c, _ = s.accept()
    held.append(c)
    threading.Thread(target=drain, args=(c,), daemon=True).start()
' "$hang_port"
wait_port "$hang_port" || bail_out "hanging listener did not start"
CFG_ENDPOINT=http://127.0.0.1:$hang_port CFG_TIMEOUT_MS=1500 CFG_CONNECT_TIMEOUT_MS=1000 \
	write_config "$T/hang.ini"
stop_bg "$LIGHTTPD_PID"
start_lighttpd "$T/hang.ini"
failure_cases "endpoint never answers (timeout_ms 1500)" 504 4000
check "endpoint never answers: it did wait for the deadline (took $ELAPSED_MS ms)" \
	test "$ELAPSED_MS" -ge 1300
