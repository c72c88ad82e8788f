#!/bin/bash
# t0136-cred-faults.sh - S3 credentials from a container endpoint
# (AWS_CONTAINER_CREDENTIALS_FULL_URI) and from IMDSv2
# (AWS_EC2_METADATA_SERVICE_ENDPOINT) that fail, through lighttpd (one
# worker). Both endpoints are tests/creds_stub.py on 127.0.0.1; S3 is
# tests/fakes3.py, which logs the access key id of every signature, so the
# test sees which credentials signed what.
#
# What imgsvc answers when it cannot get credentials: 502 with a JSON body
# (README "Responses": S3 "could not be reached" - a request it cannot sign never
# reaches it), whatever the reason (HTTP 500, garbage, a hang, credentials
# already expired), and S3 is not asked at all. Never past the deadline:
# each credential request is bounded by connect_timeout_ms and by what is
# left of timeout_ms. Expired credentials are never used: they are fetched
# again, and kept only while a failed refresh leaves them valid. The worker
# keeps serving, and the next request asks the endpoint again.

. "$(dirname "$0")/lib.sh"
require_imgsvc
require_tools curl lighttpd

DEADLINE=1500
CONNECT=1000
SLACK=1500
FAST_MS=1000

make_small_png
mkdir -p "$T/objects"
cp "$T/small.png" "$T/objects/small.png"
# fakes3.py logs the signing key id and the time of each request too.
export FAKES3_LONG_LOG=1
start_fakes3
# No credentials in the config, none in the environment or a shared file:
# only the endpoint under test can give any.
export AWS_SHARED_CREDENTIALS_FILE=$T/no-credentials-file
S3_KEY_ID= S3_SECRET=
CFG_KEY_ID=- CFG_ENDPOINT=$FAKE_URL CFG_TIMEOUT_MS=$DEADLINE CFG_CONNECT_TIMEOUT_MS=$CONNECT \
	CFG_RETRIES=2 write_config "$T/container.ini"
CFG_KEY_ID=- CFG_ENDPOINT=$FAKE_URL CFG_TIMEOUT_MS=$DEADLINE CFG_CONNECT_TIMEOUT_MS=$CONNECT \
	CFG_RETRIES=2 CFG_IMDS=yes write_config "$T/imds.ini"

# --- helpers -----------------------------------------------------------------------

# stub ARGS...: a fresh creds_stub.py (container path /creds); sets
# STUB_PORT, STUB_LOG (one line a request: METHOD PATH STATUS).
stub_n=0
stub() {
	local i
	[ -n "${STUB_PID:-}" ] && stop_bg "$STUB_PID"
	stub_n=$((stub_n + 1))
	STUB_LOG=$T/stub$stub_n.requests
	: >"$STUB_LOG"
	start_bg "stub$stub_n" "$PY" "$TESTS_DIR/creds_stub.py" --port-file "$T/stub$stub_n.port" \
		--log "$STUB_LOG" --container-path /creds --lifetime 600 "$@"
	STUB_PID=$BG_PID
	for i in $(seq 100); do [ -s "$T/stub$stub_n.port" ] && break; sleep 0.1; done
	[ -s "$T/stub$stub_n.port" ] || bail_out "creds_stub.py did not start"
	STUB_PORT=$(cat "$T/stub$stub_n.port")
}

# serve_with container|imds: lighttpd and imgsvc anew, imgsvc's
# environment pointing at the stub (only at 127.0.0.1), and at nothing else.
serve_with() {
	[ -n "${LIGHTTPD_PID:-}" ] && stop_bg "$LIGHTTPD_PID"
	case $1 in
	container)
		export AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$STUB_PORT/creds
		start_lighttpd "$T/container.ini" 1
		unset AWS_CONTAINER_CREDENTIALS_FULL_URI
		;;
	imds)
		unset AWS_EC2_METADATA_DISABLED
		export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$STUB_PORT
		start_lighttpd "$T/imds.ini" 1
		export AWS_EC2_METADATA_DISABLED=true
		unset AWS_EC2_METADATA_SERVICE_ENDPOINT
		;;
	esac
	http GET "$BASE/_imgsvc/health"
	WORKER=$(imgsvc_pids | head -n 1)
	[ -n "$WORKER" ] || bail_out "no imgsvc worker under lighttpd"
}

# s3_signers_are KEY...: the access key ids of S3's requests since the mark.
s3_signers_are() {
	local got
	got=$(fake_since | awk '{ print $5 }' | tr '\n' ' ')
	[ "$got" = "$* " ] && return 0
	echo "S3 saw requests signed by '${got% }', expected '$*'"
	return 1
}

s3_not_asked() {
	[ "$(fake_since | wc -l)" = 0 ] && return 0
	echo "S3 was asked:"
	fake_since
	return 1
}

# stub_saw N PATTERN: N requests of the stub's log match PATTERN.
stub_saw() {
	local n
	n=$(grep -c -- "$2" "$STUB_LOG")
	[ "$n" = "$1" ] && return 0
	echo "the stub saw $n request(s) matching '$2', expected $1:"
	cat "$STUB_LOG"
	return 1
}

between() {
	[ "$ELAPSED_MS" -ge "$1" ] && [ "$ELAPSED_MS" -le "$2" ] && return 0
	echo "took $ELAPSED_MS ms, expected $1..$2"
	return 1
}

serves_as() { # serves_as KEY_ID: a good request, signed with KEY_ID, same worker
	fake_mark
	get /small.png
	status_is 200 || return 1
	body_same_as "$T/small.png" || return 1
	s3_signers_are "$1" || return 1
	one_worker_is "$WORKER"
}

# no_creds TITLE MIN MAX REASON: the request fails for want of credentials.
no_creds() {
	fake_mark
	log_mark
	timed_get /small.png
	ok_json_error "$1: 502 with a JSON message" 502
	check "$1: took $ELAPSED_MS ms ($2..$3)" between "$2" "$3"
	check "$1: S3 was not asked" s3_not_asked
	check "$1: the log says why" log_since_mark_has "status=502 .*NoCredentials.*$4"
}

# --- container endpoint --------------------------------------------------------------

stub
serve_with container
check "container: control: served, signed with the stub's first key" serves_as ASIASTUB0001
check "container: the next request reuses the credentials" serves_as ASIASTUB0001
check "container: the endpoint was asked once" stub_saw 1 "GET /creds 200"

stub --fault 500 --fault-count 1
serve_with container
no_creds "container answers 500" 0 $FAST_MS "container: GET .*: HTTP 500"
check "container answers 500: then served by the same worker, asking again" \
	serves_as ASIASTUB0001

stub --fault garbage --fault-count 1
serve_with container
no_creds "container answers 200 with garbage" 0 $FAST_MS "answer is not a valid JSON object"
check "container answers garbage: then served by the same worker" serves_as ASIASTUB0001

stub --fault hang --fault-count 1
serve_with container
no_creds "container never answers" $((CONNECT - 100)) $((CONNECT + SLACK)) "container: GET .*timed out"
check "container never answers: then served by the same worker" serves_as ASIASTUB0001

stub --expires=-60,3600
serve_with container
no_creds "container hands out expired credentials" 0 $FAST_MS "ASIASTUB0001 had already expired"
check "expired on arrival: the next request fetches again and is served with the new ones" \
	serves_as ASIASTUB0002

# Valid for 2-3 s (the stub's clock has whole seconds).
stub --expires=3,3600
serve_with container
check "short-lived credentials: served with them" serves_as ASIASTUB0001
sleep 3.5
check "  after their expiry, fetched again: the next request is signed with new ones" \
	serves_as ASIASTUB0002

# The first document is valid 7-8 s; every later request to the stub fails.
stub --expires=8 --fail-after 1
serve_with container
issued=$(date +%s%N)
check "refresh fails: served with the first credentials" serves_as ASIASTUB0001
check "  a refresh (inside the margin) fails, the still-valid ones are kept" serves_as ASIASTUB0001
while [ $((($(date +%s%N) - issued) / 1000000)) -lt 8500 ]; do sleep 0.2; done
no_creds "  once they have expired and the refresh fails, they are not used" 0 $FAST_MS \
	"refreshing S3 credentials from container failed: GET .*: HTTP 500"
check "  (the endpoint was asked again each time)" stub_saw 2 "GET /creds 500"

# S3 says ExpiredToken (a clock out of step): fetched again, retried.
stub
serve_with container
fake_mark
get /expiredx1/small.png
check "S3 answers ExpiredToken: fetched again and retried, served" \
	body_same_as "$T/small.png"
check "  the retry was signed with the new credentials" s3_signers_are ASIASTUB0001 ASIASTUB0002
check "  the endpoint was asked twice" stub_saw 2 "GET /creds 200"

# --- IMDSv2 ---------------------------------------------------------------------------

stub
serve_with imds
check "IMDSv2: control: served, signed with the stub's first key" serves_as ASIASTUB0001
check "IMDSv2: token, role, credentials asked once each" \
	eval 'stub_saw 1 "PUT /latest/api/token 200" && stub_saw 2 "GET /latest/meta-data/iam/security-credentials/"'

stub --token-fault hang --fault-count 1
serve_with imds
no_creds "IMDSv2 token request never answered" $((CONNECT - 100)) $((CONNECT + SLACK)) \
	"imds: PUT .*/latest/api/token: .*timed out"
check "IMDSv2 token hang: then served by the same worker" serves_as ASIASTUB0001

stub --fault 500 --fault-count 1
serve_with imds
no_creds "IMDSv2 credentials answer 500" 0 $FAST_MS "imgsvc-test-role: HTTP 500"
check "IMDSv2 500: then served by the same worker" serves_as ASIASTUB0001

stub --fault garbage --fault-count 1
serve_with imds
no_creds "IMDSv2 credentials answer garbage" 0 $FAST_MS "answer is not a valid JSON object"
check "IMDSv2 garbage: then served by the same worker" serves_as ASIASTUB0001

stub --expires=-60,3600
serve_with imds
no_creds "IMDSv2 hands out expired credentials" 0 $FAST_MS "ASIASTUB0001 had already expired"
check "IMDSv2 expired: the next request fetches again and is served" serves_as ASIASTUB0002

# The token PUT and the credentials GET each answer after 0.9 s: each
# within connect_timeout_ms, together past timeout_ms. The second is cut
# to what is left of the deadline.
stub --token-fault slow --fault slow --delay 0.9
serve_with imds
no_creds "IMDSv2 slow (token and credentials 0.9 s each)" $((DEADLINE - 100)) $((DEADLINE + SLACK)) \
	"imds: GET .*imgsvc-test-role: .*timed out"

check "no secret or session token of the stub in the log" \
	eval 'log_lacks "stub/secret+" && log_lacks "stub-session-token"'
