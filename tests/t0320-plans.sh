#!/usr/bin/env bash
# t0320-plans.sh - usage plans end to end: several imgsvc workers under
# lighttpd share one state file; a quota admits exactly Q requests of many
# parallel clients, then 429 "Limit Exceeded" with Retry-After until the UTC
# day ends; a throttle admits its burst then 429 "Too Many Requests" with
# Retry-After; unlimited and disabled keys; counts survive a restart and a
# config change; the metrics endpoint (admin key) agrees with what clients
# saw; imgsvc-usage reports the same.
. "$(dirname "$0")/lib.sh"
require_imgsvc
require_tools moto_server aws curl lighttpd

KEY_QUOTA=key-on-a-quota-plan-0001
KEY_RATE=key-on-a-rate-plan-00001
KEY_ADMIN=metrics-admin-key-000001
QUOTA=60
WORKERS=4
extra() { # extra [MORE]: plans, keys and the metrics key
	cat <<INI
[plan daily]
quota = $QUOTA
period = day

[plan slow]
rate = 1
burst = 4

[key quota]
key = "$KEY_QUOTA"
plan = daily

[key rate]
key = "$KEY_RATE"
plan = slow

[key parked]
key = "parked-key-with-plan-01"
plan = daily
enabled = no

[metrics]
key = "$KEY_ADMIN"
${1:-}
INI
}

start_moto
upload_fixtures photo2mp.jpg
CFG_EXTRA=$(extra) write_config "$T/imgsvc.ini"
start_lighttpd "$T/imgsvc.ini" "$WORKERS"

# 3 x QUOTA requests from 8 parallel clients: exactly QUOTA get through.
N=$((3 * QUOTA))
hammer() { # hammer KEY COUNT PARALLEL > codes
	seq "$2" | xargs -P "$3" -I{} curl -s -o /dev/null -w '%{http_code}\n' --noproxy '*' \
		-H "X-API-Key: $1" "$BASE/small.png" 2>/dev/null
}
hammer "$KEY_QUOTA" "$N" 8 >"$T/codes"
ok200=$(grep -cx 200 "$T/codes")
n429=$(grep -cx 429 "$T/codes")
say "quota $QUOTA, $N requests from 8 clients over $WORKERS workers: $ok200 x 200, $n429 x 429"
check "all $N answered" test "$(wc -l <"$T/codes")" = "$N"
check "exactly $QUOTA admitted ($ok200)" test "$ok200" = "$QUOTA"
check "the other $((N - QUOTA)) refused with 429 ($n429)" test "$n429" = $((N - QUOTA))
workers=$(imgsvc_pids | wc -l)
check "several workers shared the work ($workers running)" test "$workers" -ge 2

get /small.png "$KEY_QUOTA"
ok_json_error "over the quota: 429 Limit Exceeded" 429 "Limit Exceeded"
ra=$(hdr Retry-After)
now=$(date -u +%s)
midnight=$(( (now / 86400 + 1) * 86400 ))
check "  Retry-After ($ra s) is the time to the next UTC midnight ($((midnight - now)) s)" \
	test "$ra" -ge $((midnight - now - 5)) -a "$ra" -le $((midnight - now + 1))

get /small.png
check "a key without a plan is unlimited" status_is 200
get /small.png "parked-key-with-plan-01"
ok_json_error "a disabled key on a plan stays 403" 403 Forbidden

# Throttle: rate 1/s, burst 4. Ten at once: the burst passes, the rest wait.
start=$(date +%s%N)
hammer "$KEY_RATE" 10 10 >"$T/rate-codes"
secs=$(( ($(date +%s%N) - start) / 1000000000 + 1 ))
r200=$(grep -cx 200 "$T/rate-codes")
say "rate 1/s burst 4: 10 at once -> $r200 admitted within ${secs} s"
check "burst of 4 admitted at once ($r200, at most 4 + $secs refilled)" \
	test "$r200" -ge 4 -a "$r200" -le $((4 + secs))
check "the rest refused with 429" test "$(grep -cx 429 "$T/rate-codes")" = $((10 - r200))
get /small.png "$KEY_RATE"
ok_json_error "throttled: 429 Too Many Requests" 429 "Too Many Requests"
check "  Retry-After: 1 (one token a second)" header_is Retry-After 1
sleep 1.2
get /small.png "$KEY_RATE"
check "a second later a token has come back" status_is 200

# Metrics: the admin key only; numbers agree with what the clients saw.
http GET "$BASE/_imgsvc/metrics"
ok_json_error "metrics without a key: 403" 403
http GET "$BASE/_imgsvc/metrics" -H "X-API-Key: $KEY_QUOTA"
ok_json_error "metrics with an API key that is not the admin key: 403" 403
http GET "$BASE/_imgsvc/metrics" -H "Authorization: Bearer $KEY_QUOTA"
ok_json_error "metrics with another key as a bearer token: 403" 403
http GET "$BASE/_imgsvc/metrics" -H "Authorization: Bearer $KEY_ADMIN"
check "metrics with the admin key as a bearer token (Prometheus): 200" status_is 200
http GET "$BASE/_imgsvc/metrics" -H "X-API-Key: $KEY_ADMIN"
check "metrics with the admin key: 200" status_is 200
check "  text/plain; version=0.0.4" header_matches Content-Type '^text/plain; version=0.0.4'
cp "$T/resp.body" "$T/metrics.txt"
check "  strict exposition-format parse" "$PY" "$TESTS_DIR/promparse.py" "$T/metrics.txt"
if command -v promtool >/dev/null 2>&1; then
	check "  promtool check metrics" sh -c "promtool check metrics <'$T/metrics.txt'"
else
	skip "  promtool check metrics" "promtool not installed (Debian package prometheus)"
fi
"$PY" "$TESTS_DIR/promparse.py" "$T/metrics.txt" >"$T/samples" 2>/dev/null
sample() { awk -v n="$1" '$1 == n { print $2 }' "$T/samples"; }
limited_quota=$(sample 'imgsvc_rate_limited_total{key="quota"}')
total_429=$(sample 'imgsvc_requests_total{status="429"}')
all_429=$(( $(grep -cx 429 "$T/codes") + $(grep -cx 429 "$T/rate-codes") + 2 ))
check "  429s of key quota: $limited_quota (clients saw $((n429 + 1)))" \
	test "${limited_quota%.*}" = $((n429 + 1))
check "  all 429s across workers: $total_429 (clients saw $all_429)" test "${total_429%.*}" = "$all_429"
check "  a request latency histogram" grep -q '^imgsvc_request_duration_seconds_bucket{le="+Inf"}' "$T/metrics.txt"

# Usage report: the same numbers, by key and day.
usage() { "$builddir/imgsvc-usage" -c "$T/imgsvc.ini" "$@"; }
today=$(date -u +%Y-%m-%d)
usage -k quota --format json >"$T/usage.json" 2>"$T/usage.err"
check "imgsvc-usage --format json runs" test $? = 0
check "  key quota today: $((N + 1)) requests, $QUOTA 2xx, $((n429 + 1)) 429s" "$PY" -c '
import json, sys
rows = json.load(open(sys.argv[1]))
r = [x for x in rows if x.get("key") == "quota" and x.get("date") == sys.argv[2]]
assert len(r) == 1, rows
r = r[0]
want = {"requests": int(sys.argv[3]), "2xx": int(sys.argv[4]), "429": int(sys.argv[5])}
got = {k: r.get(k) for k in want}
assert got == want, (got, want)
' "$T/usage.json" "$today" $((N + 1)) "$QUOTA" $((n429 + 1))
usage -k quota --format csv >"$T/usage.csv"
check "  CSV has a header and today's row" sh -c "head -n 1 '$T/usage.csv' | grep -q '^key,date,' && grep -q '^quota,$today,' '$T/usage.csv'"
usage --from "$today" --to "$today" >"$T/usage.txt"
check "  table lists every key used today" sh -c "grep -q '^quota ' '$T/usage.txt' && grep -q '^rate ' '$T/usage.txt'"

# Restart: the same state file, the quota still spent.
stop_bg "$LIGHTTPD_PID"
for i in $(seq 50); do [ -z "$(imgsvc_pids)" ] && break; sleep 0.1; done
start_lighttpd "$T/imgsvc.ini" "$WORKERS"
get /small.png "$KEY_QUOTA"
check "after a restart the quota is still spent (429)" status_is 429

# Config change: a key added, one removed; the quota key's count stays.
CFG_EXTRA=$(extra '[key newcomer]
key = "newly-added-key-000001"
plan = daily') write_config "$T/imgsvc.ini"
sed -i '/^\[key retired\]/,/^$/d' "$T/imgsvc.ini"
stop_bg "$LIGHTTPD_PID"
for i in $(seq 50); do [ -z "$(imgsvc_pids)" ] && break; sleep 0.1; done
start_lighttpd "$T/imgsvc.ini" "$WORKERS"
get /small.png "$KEY_QUOTA"
check "after keys were added and removed, the quota key is still at its quota (429)" status_is 429
get /small.png "newly-added-key-000001"
check "the new key starts with its own quota (200)" status_is 200
