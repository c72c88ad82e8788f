#!/bin/bash
# t0310-redis.sh - the Redis fleet backend (src/redislimit.c) against real
# redis-servers on loopback.
#
# tests/redisprobe drives redis_admit as several "hosts" would: separate
# processes with their own connections to one redis-server. The cases:
# exact quota and burst under concurrency, Retry-After, key independence,
# key expiry, a script Redis forgot (NOSCRIPT), a Unix socket, AUTH, a
# Redis that is down, hung or back (timeouts, one connect a second,
# reconnect), the Lua rules against plan.c at chosen clocks, valgrind, and
# two imgsvc instances (two "hosts", each with its own state file) sharing
# one redis-server behind lighttpd.

. "$(dirname "$0")/lib.sh"

PROBE=$builddir/tests/redisprobe
command -v redis-server >/dev/null 2>&1 ||
	skip_all "redis-server not installed (Debian package: redis-server)"
command -v redis-cli >/dev/null 2>&1 ||
	skip_all "redis-cli not installed (Debian package: redis-tools)"
[ -x "$PROBE" ] ||
	skip_all "tests/redisprobe not built: configure found no hiredis (Debian package: libhiredis-dev)"

# start_redis NAME PORT [ARGS...]: a redis-server of this test (no
# persistence, files in $T/NAME); sets REDIS_PID.
start_redis() {
	local name=$1 port=$2
	shift 2
	mkdir -p "$T/$name"
	start_bg "$name" redis-server --port "$port" --bind 127.0.0.1 --save '' \
		--appendonly no --daemonize no --dir "$T/$name" "$@"
	REDIS_PID=$BG_PID
	if [ "$port" != 0 ]; then
		wait_port "$port" 10 || bail_out "redis-server $name did not listen on $port"
	fi
}

rcli() { # rcli PORT ARGS...
	local port=$1
	shift
	redis-cli -h 127.0.0.1 -p "$port" "$@"
}

# field NAME LINE: the word after NAME in a "name value name value" line.
field() {
	local want=$1
	# shellcheck disable=SC2086
	set -- $2
	while [ $# -ge 2 ]; do
		[ "$1" = "$want" ] && { echo "$2"; return 0; }
		shift 2
	done
	return 1
}

# probe OUT ARGS...: tests/redisprobe ARGS, output in $T/OUT.
probe() {
	local out=$1
	shift
	"$PROBE" "$@" >"$T/$out" 2>"$T/$out.err"
}

# summary_has OUT NAME=VALUE...: the summary line of a probe run.
summary_has() {
	local out=$1 line kv v
	shift
	line=$(tail -n 1 "$T/$out")
	for kv in "$@"; do
		v=$(field "${kv%%=*}" "$line")
		if [ "$v" != "${kv#*=}" ]; then
			echo "${kv%%=*} is '$v', expected ${kv#*=}; summary: $line"
			cat "$T/$out.err"
			return 1
		fi
	done
}

# calls_are OUT "V V V...": the verdicts of the calls (-v), in order; E for
# a failed call.
calls_are() {
	local got
	got=$(awk '$1 == "call" { printf "%s%s", sep, ($4 == 0 ? $6 : "E"); sep = " " }' "$T/$1")
	[ "$got" = "$2" ] && return 0
	echo "verdicts '$got', expected '$2'"
	cat "$T/$1"
	return 1
}

# call_field OUT N NAME: a field of call N.
call_field() {
	field "$3" "$(awk -v n="$2" '$1 == "call" && $2 == n' "$T/$1")"
}

R=$(free_port)
start_redis redis "$R"

# --- exactness ------------------------------------------------------------------

probe q8 -P 8 127.0.0.1 "$R" quota8 0 1 500 day 200
check "8 processes x 200 calls, quota 500 a day: exactly 500 allowed, 1100 refused" \
	summary_has q8 allowed=500 refused=1100 quota_exceeded=1100 errors=0

probe b8 -P 8 127.0.0.1 "$R" burst8 0.001 50 0 none 25
check "8 processes x 25 calls, burst 50 at 0.001/s: exactly 50 allowed, 150 rate-limited" \
	summary_has b8 allowed=50 rate_limited=150 errors=0
check "  their Retry-After: 1000 s (one token at 0.001/s)" summary_has b8 retry_after=1000

probe qb8 -P 8 127.0.0.1 "$R" both8 1000 1000 300 week 100
check "8 processes x 100 calls, rate 1000/s burst 1000, quota 300 a week: exactly 300 allowed" \
	summary_has qb8 allowed=300 refused=500 quota_exceeded=500 errors=0

# --- burst, Retry-After ----------------------------------------------------------

probe burst -v 127.0.0.1 "$R" burst 1 5 0 none 8
check "rate 1/s burst 5, 8 calls at once: 5 allowed, then 3 rate-limited" \
	calls_are burst "0 0 0 0 0 1 1 1"
check "  with Retry-After 1" summary_has burst retry_after=1

probe slow -v 127.0.0.1 "$R" slow 0.1 2 0 none 3
check "rate 0.1/s burst 2: the third call is refused with Retry-After 10" \
	calls_are slow "0 0 1"
check "  Retry-After 10" test "$(call_field slow 3 retry)" = 10

# quota_retry_ok OUT PERIOD: the refused call's Retry-After is the time to
# the end of the UTC period by Redis's clock (TIME read just after).
quota_retry_ok() {
	local out=$1 period=$2 now got want
	got=$(call_field "$out" 2 retry)
	now=$(rcli "$R" TIME | head -n 1)
	want=$("$PY" - "$period" "$now" <<'EOF'
import sys, datetime as dt
period, now = sys.argv[1], int(sys.argv[2])
t = dt.datetime.fromtimestamp(now, dt.timezone.utc)
day = t.replace(hour=0, minute=0, second=0, microsecond=0)
if period == "day":
    end = day + dt.timedelta(days=1)
elif period == "week":
    end = day - dt.timedelta(days=t.weekday()) + dt.timedelta(days=7)
else:
    end = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
print(int(end.timestamp()) - now)
EOF
)
	# TIME was read after the call: up to a second or two later.
	[ -n "$got" ] && [ "$got" -ge "$want" ] && [ "$got" -le $((want + 2)) ] && return 0
	echo "Retry-After '$got', expected $want (to the end of the UTC $period)"
	cat "$T/$out"
	return 1
}
for period in day week month; do
	probe "q-$period" -v 127.0.0.1 "$R" "quota-$period" 0 1 1 "$period" 2
	check "quota 1 a $period: the second call is refused (quota)" calls_are "q-$period" "0 2"
	check "  with Retry-After until the UTC $period ends" quota_retry_ok "q-$period" "$period"
done

# --- keys in Redis ---------------------------------------------------------------

quota_key_ttl_ok() {
	local start ttl now
	now=$(rcli "$R" TIME | head -n 1)
	start=$((now / 86400 * 86400))
	ttl=$(rcli "$R" TTL "imgsvc-test:{quota8}:quota:$start")
	# Until the end of the day plus a day's grace (TTL rounds to the second).
	[ "$ttl" -gt 86400 ] && [ "$ttl" -le $((start + 2 * 86400 - now + 1)) ] && return 0
	echo "TTL of imgsvc-test:{quota8}:quota:$start: '$ttl'"
	rcli "$R" --scan --pattern 'imgsvc-test:{quota8}*'
	return 1
}
check "the day's counter is imgsvc-test:{quota8}:quota:START, expiring a day after the day" \
	quota_key_ttl_ok
check "  it holds 500" test "$(rcli "$R" GET "imgsvc-test:{quota8}:quota:$(($(rcli "$R" TIME | head -n 1) / 86400 * 86400))")" = 500

bucket_vanishes() {
	local pttl
	probe vanish 127.0.0.1 "$R" vanish 1000 1 0 none 1 || return 1
	pttl=$(rcli "$R" PTTL "imgsvc-test:{vanish}:bucket")
	if ! [ "$pttl" -gt 0 ] || ! [ "$pttl" -le 1001 ]; then
		echo "PTTL of the bucket right after a call: '$pttl', expected 1..1001 ms"
		return 1
	fi
	sleep 1.2
	[ "$(rcli "$R" EXISTS "imgsvc-test:{vanish}:bucket")" = 0 ] && return 0
	echo "the bucket is still there after 1.2 s"
	return 1
}
check "a bucket expires once it would be full again (1 ms at 1000/s, plus 1 s)" bucket_vanishes

# --- two hosts, several keys -----------------------------------------------------

probe host1 127.0.0.1 "$R" shared 0 1 10 day 6
probe host2 127.0.0.1 "$R" shared 0 1 10 day 6
check "two hosts in turn share one key's quota (10): the first gets 6" summary_has host1 allowed=6
check "  the second 4 of 6" summary_has host2 allowed=4 refused=2

probe conc1 -P 4 127.0.0.1 "$R" shared2 0 1 300 month 100 &
c1=$!
probe conc2 -P 4 127.0.0.1 "$R" shared2 0 1 300 month 100 &
c2=$!
wait "$c1" "$c2"
sum_allowed() {
	local a b
	a=$(field allowed "$(tail -n 1 "$T/conc1")")
	b=$(field allowed "$(tail -n 1 "$T/conc2")")
	[ $((a + b)) = 300 ] && return 0
	echo "allowed $a + $b, expected 300 in all"
	return 1
}
check "two hosts at once, 4 processes x 100 calls each, quota 300 a month: 300 allowed in all" \
	sum_allowed
check "  and no errors" summary_has conc1 errors=0

probe other 127.0.0.1 "$R" other 0 1 10 day 12
check "another key is independent: 10 of 12 after 'shared' spent its quota" \
	summary_has other allowed=10 refused=2
probe odd 127.0.0.1 "$R" 'odd {key} ü:quota:0' 0 1 3 day 5
check "a key name with spaces, braces, ':' and non-ASCII: its own quota (3 of 5)" \
	summary_has odd allowed=3 refused=2
probe prefixed -x other-prefix: 127.0.0.1 "$R" shared 0 1 10 day 4
check "the same key under another prefix is independent" summary_has prefixed allowed=4

# --- the script forgotten by Redis (NOSCRIPT) --------------------------------------

eval_calls() {
	rcli "$R" INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_eval:calls=\([0-9]*\).*/\1/p' |
		grep . || echo 0
}
evals_before=$(eval_calls)
probe noscript -v -i 500 127.0.0.1 "$R" noscript 0 1 100 day 4 &
ns=$!
sleep 0.7
rcli "$R" SCRIPT FLUSH >/dev/null
wait "$ns"
check "SCRIPT FLUSH between calls: every call still answered" calls_are noscript "0 0 0 0"
check "  one EVAL after the flush (NOSCRIPT), then EVALSHA again" \
	test "$(($(eval_calls) - evals_before))" = 1

probe killed -v -i 500 127.0.0.1 "$R" killed 0 1 100 day 4 &
kp=$!
sleep 0.7
rcli "$R" CLIENT KILL TYPE normal >/dev/null
wait "$kp"
check "an idle connection closed by Redis (CLIENT KILL) is replaced: no call fails" \
	calls_are killed "0 0 0 0"

# --- Unix socket -------------------------------------------------------------------

start_redis redis-unix 0 --unixsocket "$T/redis.sock" --unixsocketperm 700
wait_socket "$T/redis.sock" || bail_out "redis-server made no socket $T/redis.sock"
probe unix "$T/redis.sock" 0 unix 0 1 2 day 3
check "a Unix socket path as the host: quota 2 of 3" summary_has unix allowed=2 refused=1 errors=0
stop_bg "$REDIS_PID"

# --- AUTH ----------------------------------------------------------------------------

RA=$(free_port)
PW="s3cret-$RANDOM$RANDOM"
start_redis redis-auth "$RA" --requirepass "$PW"
probe auth-ok -a "$PW" 127.0.0.1 "$RA" authkey 0 1 3 day 4
check "requirepass, the right password: works (3 of 4)" summary_has auth-ok allowed=3 errors=0
probe auth-none -v 127.0.0.1 "$RA" authkey 0 1 3 day 1
check "no password: redis_admit returns -1" calls_are auth-none "E"
check "  saying NOAUTH" grep -q NOAUTH "$T/auth-none"
conns() {
	rcli "$RA" --no-auth-warning -a "$PW" INFO stats | tr -d '\r' |
		sed -n 's/^total_connections_received://p'
}
before=$(conns)
probe auth-bad -v -a "wrong-$PW" 127.0.0.1 "$RA" authkey 0 1 3 day 30
after=$(conns)
check "a wrong password: redis_admit returns -1" \
	test "$(grep -c ' rc -1 ' "$T/auth-bad")" = 30
check "  saying WRONGPASS" grep -q WRONGPASS "$T/auth-bad"
check "  the password is in no error message" bash -c "! grep -qF -- '$PW' '$T/auth-bad' '$T/auth-bad.err'"
# after - before counts the connections INFO itself made (one) besides the
# probe's: 30 calls in well under a second may connect once, twice at most.
check "  30 failing calls in a row: at most 2 connections (one a second), not 30" \
	test "$((after - before - 1))" -le 2
stop_bg "$REDIS_PID"

# --- Redis unreachable -------------------------------------------------------------

# calls_within OUT MAX_MS: every call took at most MAX_MS.
calls_within() {
	local slow
	slow=$(awk -v max="$2" '$1 == "call" && $10 > max' "$T/$1")
	[ -z "$slow" ] && return 0
	echo "calls slower than $2 ms:"
	echo "$slow"
	return 1
}
CLOSED=$(free_port)
probe closed -v -t 300 127.0.0.1 "$CLOSED" k 0 1 10 day 3
check "a closed port: every call returns -1" calls_are closed "E E E"
check "  quickly (each within the 300 ms timeout + 400 ms)" calls_within closed 700
check "  the 2nd and 3rd do not connect again within the second" \
	test "$(grep -c 'unavailable (last attempt' "$T/closed")" = 2

RH=$(free_port)
start_redis redis-hung "$RH"
HUNG_PID=$REDIS_PID
kill -STOP -- "-$HUNG_PID"
probe hung -v -t 300 -i 250 127.0.0.1 "$RH" hung 0 1 1000 day 10
kill -CONT -- "-$HUNG_PID"
check "a hung Redis (SIGSTOP): every call returns -1" calls_are hung "E E E E E E E E E E"
check "  each within the 300 ms timeout + 400 ms" calls_within hung 700
hung_attempts_ok() {
	local slow total
	slow=$(awk '$1 == "call" && $10 >= 250' "$T/hung" | wc -l)
	total=$(awk '$1 == "call" { t += $10 } END { print t + 9 * 250 }' "$T/hung")
	# One attempt (one timeout) a second at most.
	[ "$slow" -ge 1 ] && [ "$slow" -le $((total / 1000 + 1)) ] && return 0
	echo "$slow calls waited for the timeout over $total ms:"
	cat "$T/hung"
	return 1
}
check "  only one call a second waits for the timeout; the others fail at once" hung_attempts_ok
stop_bg "$HUNG_PID"

# --- Redis back --------------------------------------------------------------------

RB=$(free_port)
start_redis redis-back "$RB"
probe back -v -t 300 -i 200 127.0.0.1 "$RB" back 0 1 1000 day 25 &
bp=$!
sleep 1
stop_bg "$REDIS_PID"
sleep 1.5
start_redis redis-back "$RB"
wait "$bp"
back_ok() {
	local v
	v=$(awk '$1 == "call" { printf "%s", ($4 == 0 ? "A" : "E") }' "$T/back")
	case $v in A*AE*EA*AAA) return 0 ;; esac
	echo "calls: $v (A ok, E failed); expected ok, then failures, then ok again"
	cat "$T/back"
	return 1
}
check "one process across a Redis restart: ok, -1 while it is down, ok again (reconnected)" \
	back_ok
script_loaded_on_connect() {
	local stats
	stats=$(rcli "$RB" INFO commandstats | tr -d '\r')
	if echo "$stats" | grep -q '^cmdstat_script|load:calls=[1-9]' &&
		! echo "$stats" | grep -q '^cmdstat_eval:'; then
		return 0
	fi
	echo "commandstats of the restarted Redis:"
	echo "$stats"
	return 1
}
check "  the restarted Redis got the script with the new connection (SCRIPT LOAD, no EVAL)" \
	script_loaded_on_connect

# --- the Lua rules against plan.c --------------------------------------------------

if [ -f "$srcdir/src/plan.c" ]; then
	for seed in 1 2 3 "$(date +%s)"; do
		probe "cmp-$seed" -C 127.0.0.1 "$R" "$seed"
		check "script and plan.c decide alike: 400 random plans and clocks (seed $seed)" \
			grep -q '^same [0-9]* decisions in 400 scenarios' "$T/cmp-$seed"
	done
else
	skip "script and plan.c decide alike" "src/plan.c does not exist yet"
fi

# --- valgrind ------------------------------------------------------------------------

vg() { # vg NAME ARGS...: redisprobe under valgrind; fails on a leak or error
	if sanitized; then
		# valgrind cannot run an ASan binary; LeakSanitizer, built in,
		# checks the same run: a leak or any other report exits 99.
		ASAN_OPTIONS="$ASAN_OPTIONS:exitcode=99" UBSAN_OPTIONS="$UBSAN_OPTIONS:exitcode=99" \
			"$PROBE" "${@:2}" >"$T/vg-$1.out" 2>&1
	else
		valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
			--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
			--log-file="$T/vg-$1.log" "$PROBE" "${@:2}" >"$T/vg-$1.out" 2>&1
	fi
	local rc=$?
	[ $rc != 99 ] && [ ! -s "$T/vg-$1.log" ] && return 0
	echo "$vg: exit $rc"
	head -n 40 "$T/vg-$1.log" 2>/dev/null
	return 1
}
vg=valgrind
sanitized && vg=LeakSanitizer
if sanitized || command -v valgrind >/dev/null 2>&1; then
	check "$vg: 50 calls against Redis, no leak, no error" \
		vg ok 127.0.0.1 "$R" vg 10 5 20 day 50
	check "$vg: a closed port (failures, the reconnect pause)" \
		vg closed -t 200 127.0.0.1 "$CLOSED" vg 1 1 1 day 3
	RV=$(free_port)
	start_redis redis-vg "$RV" --requirepass "$PW"
	check "$vg: a wrong password" vg auth -a nope 127.0.0.1 "$RV" vg 1 1 1 day 3
	check "$vg: the right password" vg auth2 -a "$PW" 127.0.0.1 "$RV" vg 1 1 1 day 3
	stop_bg "$REDIS_PID"
else
	skip "valgrind: redisprobe" "valgrind not installed"
fi

# --- two imgsvc instances ("hosts") sharing one redis-server -------------------------

missing=
for t in lighttpd moto_server aws curl; do
	case $t in
	moto_server) find_moto || missing="$missing $t" ;;
	aws) find_aws || missing="$missing $t" ;;
	*) command -v "$t" >/dev/null 2>&1 || missing="$missing $t" ;;
	esac
done
[ -x "$IMGSVC" ] || missing="$missing imgsvc"
if [ -n "$missing" ]; then
	skip "two imgsvc instances sharing one redis-server" "missing:$missing"
	exit 0
fi

KEY_FLEET=fleet-key-on-a-shared-quota-01
KEY_BURST=fleet-key-on-a-shared-burst-1
KEY_ONE=fleet-key-with-a-quota-of-one
QUOTA=12
fleet_extra() {
	cat <<INI
[plan fleet-daily]
quota = $QUOTA
period = day

[plan fleet-burst]
rate = 0.01
burst = 3

[plan fleet-one]
quota = 1
period = day

[key fleet]
key = "$KEY_FLEET"
plan = fleet-daily

[key burst]
key = "$KEY_BURST"
plan = fleet-burst

[key one]
key = "$KEY_ONE"
plan = fleet-one
INI
}

start_moto
upload_fixtures photo2mp.jpg
RE=$(free_port)
start_redis redis-fleet "$RE"
FLEET_PID=$REDIS_PID
# host NAME [FAILURE]: an imgsvc "host" (lighttpd, 2 workers, its own state
# file) using the shared Redis; sets BASE_NAME and LOG_NAME.
host() {
	mkdir -p "$T/host-$1"
	CFG_EXTRA=$(fleet_extra) CFG_BACKEND=redis CFG_REDIS_PORT=$RE CFG_REDIS_TIMEOUT_MS=200 \
		CFG_REDIS_FAILURE=${2:-open} CFG_STATE_FILE=$T/host-$1/state \
		write_config "$T/host-$1.ini"
	start_lighttpd "$T/host-$1.ini" 2
	printf -v "BASE_$1" '%s' "$BASE"
	printf -v "LOG_$1" '%s' "$SERVER_LOG"
}
host A
host B
host C closed

# 3 x QUOTA requests, half to each host, 4 clients each at once.
hammer_hosts() { # hammer_hosts KEY COUNT_PER_HOST > codes
	local b pids=()
	for b in "$BASE_A" "$BASE_B"; do
		seq "$2" | xargs -P 4 -I{} curl -s -o /dev/null -w '%{http_code}\n' --noproxy '*' \
			-H "X-API-Key: $1" "$b/small.png" 2>/dev/null &
		pids+=($!)
	done
	# Not a bare wait: that would wait for the servers too.
	wait "${pids[@]}"
}
hammer_hosts "$KEY_FLEET" $((3 * QUOTA / 2)) >"$T/fleet-codes"
n200=$(grep -cx 200 "$T/fleet-codes")
n429=$(grep -cx 429 "$T/fleet-codes")
say "quota $QUOTA, $((3 * QUOTA)) requests over two hosts: $n200 x 200, $n429 x 429"
check "two hosts, one quota of $QUOTA a day: exactly $QUOTA admitted in all ($n200)" \
	test "$n200" = "$QUOTA"
check "  the other $((2 * QUOTA)) refused with 429 ($n429)" test "$n429" = $((2 * QUOTA))
fleet_count() {
	local now
	now=$(rcli "$RE" TIME | head -n 1)
	rcli "$RE" GET "imgsvc:{fleet}:quota:$((now / 86400 * 86400))"
}
check "  the count lives in Redis: imgsvc:{fleet}:quota:DAY = $QUOTA" test "$(fleet_count)" = "$QUOTA"

for h in A B; do
	b=BASE_$h
	BASE=${!b}
	get /small.png "$KEY_FLEET"
	ok_json_error "host $h, over the shared quota: 429 Limit Exceeded" 429 "Limit Exceeded"
	ra=$(hdr Retry-After)
	now=$(date -u +%s)
	left=$(((now / 86400 + 1) * 86400 - now))
	check "  Retry-After ($ra s) is the time to the next UTC midnight ($left s)" \
		test "${ra:-0}" -ge $((left - 5)) -a "${ra:-0}" -le $((left + 2))
done

codes=
for h in A B A B; do
	b=BASE_$h
	BASE=${!b}
	get /small.png "$KEY_BURST"
	codes="$codes $HTTP_STATUS"
done
codes_are() { # codes_are GOT WANT
	[ "$1" = "$2" ] && return 0
	echo "statuses:$1, expected$2"
	return 1
}
check "a burst of 3 shared by two hosts: A, B, A pass, the 4th (B) is 429" \
	codes_are "$codes" " 200 200 200 429"
check "  Retry-After 100 (one token at 0.01/s)" header_is Retry-After 100

stop_bg "$FLEET_PID"
BASE=$BASE_A
timed_get /small.png "$KEY_FLEET"
check "Redis down, redis_failure = open: admitted (200)" status_is 200
check "  within the 200 ms timeout and some (${ELAPSED_MS} ms)" test "$ELAPSED_MS" -lt 1500
SERVER_LOG=$LOG_A
check "  logged as a warning" log_has 'Redis unavailable'
BASE=$BASE_C
timed_get /small.png "$KEY_FLEET"
check "Redis down, redis_failure = closed: 503" status_is 503
check "  within the timeout and some (${ELAPSED_MS} ms)" test "$ELAPSED_MS" -lt 1500

start_redis redis-fleet "$RE"
sleep 1.1
back_codes=
for h in A B A B; do
	b=BASE_$h
	BASE=${!b}
	get /small.png "$KEY_ONE"
	back_codes="$back_codes $HTTP_STATUS"
done
# The restarted Redis is empty: the key of quota 1 gets one request in all.
check "Redis back: the hosts reconnect and share its counts again (200, then 429 x 3)" \
	codes_are "$back_codes" " 200 429 429 429"
