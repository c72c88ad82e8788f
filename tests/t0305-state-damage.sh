#!/bin/bash
# t0305-state-damage.sh - the state file damaged in each region while a
# worker serves (lighttpd, one worker, moto): random bytes over the key
# records, the usage records, the tables' counts and the metrics; a stale
# lock word; a bad magic. After each: the worker keeps serving, health is
# 200 at once, the damage is logged, and a key with burst 5 still gets at
# most 5 of 8 quick requests through. tests/stateprobe prints the layout.
. "$(dirname "$0")/lib.sh"
require_imgsvc
require_tools moto_server aws curl lighttpd
PROBE=$builddir/tests/stateprobe
[ -x "$PROBE" ] || skip_all "tests/stateprobe not built (make tests/stateprobe)"

KEY_BURST=key-with-a-burst-of-5-0001
S=$T/state/imgsvc.state
start_moto
upload_fixtures photo2mp.jpg
CFG_EXTRA=$(
	cat <<INI
[plan five]
rate = 0.001
burst = 5

[key burst]
key = "$KEY_BURST"
plan = five
INI
) write_config "$T/imgsvc.ini"
start_lighttpd "$T/imgsvc.ini" 1
WORKER=$(imgsvc_pids | head -n 1)

# region NAME: "OFFSET SIZE" of a region of the file.
region() { "$PROBE" "$S" layout | awk -v r="$1" '$1 == r { print $2, $3 }'; }
# scribble OFFSET SIZE: random bytes over that part of the file, in place.
scribble() {
	head -c "$2" /dev/urandom | dd of="$S" bs=1 seek="$1" conv=notrunc status=none
}
# eight_quick: how many of 8 quick requests of the burst key are 200.
eight_quick() {
	local i n=0
	for i in $(seq 8); do
		http GET "$BASE/small.png" -H "X-API-Key: $KEY_BURST"
		[ "$HTTP_STATUS" = 200 ] && n=$((n + 1))
	done
	echo "$n"
}
# serving TITLE: health at once, a keyed request served, the same worker.
serving() {
	local t0 ms
	t0=$(date +%s%N)
	http GET "$BASE/_imgsvc/health"
	ms=$((($(date +%s%N) - t0) / 1000000))
	check "$1: health 200 in $ms ms" test "$HTTP_STATUS" = 200 -a "$ms" -lt 150
	get /small.png
	check "$1: a request of a key without a plan is served" status_is 200
	check "$1: the same worker ($WORKER)" one_worker_is "$WORKER"
}

check "control: burst 5 admits 5 of 8 quick requests" test "$(eight_quick)" = 5

# The key records: every slot random, the burst key's among them. Its
# record is found damaged on its next use and starts again as a new key's:
# a full burst of 5, never more.
rm -f "$S".damaged-*
read -r off size < <(region keys)
scribble "$off" "$size"
n=$(eight_quick)
check "random key records: burst 5 still admits at most 5 of 8 ($n)" test "$n" -le 5 -a "$n" -ge 1
check "  the damaged record is logged" log_has 'warning: state file: a damaged plan record .* cleared'
serving "random key records"

# The usage records and the metrics: counts of requests, never admissions.
read -r off size < <(region usage)
scribble "$off" 65536
scribble $((off + size - 65536)) 65536
read -r off size < <(region metrics)
scribble "$off" "$size"
serving "random usage records and metrics"
check "  the damaged metrics are reset, and that is logged" \
	log_has 'warning: state file: damaged metrics counters reset to zero'
"$PROBE" "$S" metrics >"$T/metrics.txt" 2>&1
check "  the metrics still render" grep -q '^imgsvc_requests_total' "$T/metrics.txt"

# The tables' counts: impossible values make every record be checked.
read -r off size < <(region counts)
printf '\377\377\377\377\377\377\377\377' | dd of="$S" bs=1 seek="$off" conv=notrunc status=none
n=$(eight_quick)
check "impossible table counts: burst 5 admits at most 5 of 8 ($n)" test "$n" -le 5
check "  the recount is logged" log_has 'warning: state file: impossible record counts; every record checked'
serving "impossible table counts"

# A stale lock word (held by a thread of this boot that does not exist):
# health answers at once, keyed requests get redis_failure's answer
# (open: admitted) after the bounded wait, and it is logged.
"$PROBE" "$S" stale keep-boot
t0=$(date +%s%N)
get /small.png "$KEY_BURST"
ms=$((($(date +%s%N) - t0) / 1000000))
check "stale lock word: a keyed request is answered ($HTTP_STATUS) in $ms ms, not hung" \
	test "$HTTP_STATUS" = 200 -a "$ms" -lt 2000
check "  the lock not taken is logged" log_has 'state file lock'
serving "stale lock word"
out=$("$IMGSVC" -t -c "$T/imgsvc.ini" 2>&1)
check "  imgsvc -t fails on it, saying why" \
	sh -c "! '$IMGSVC' -t -c '$T/imgsvc.ini' >/dev/null 2>&1 && printf '%s' \"\$1\" | grep -q 'lock was not free within 200 ms'" _ "$out"

# A bad magic: the running worker keeps its mapping and serves; imgsvc -t
# says a worker will move the file aside; a new worker does so and serves.
read -r off size < <(region magic)
printf 'garbage!' | dd of="$S" bs=1 seek="$off" conv=notrunc status=none
serving "bad magic, running worker"
out=$("$IMGSVC" -t -c "$T/imgsvc.ini" 2>&1)
check "  imgsvc -t passes, saying a worker will move it aside ($out)" \
	sh -c "'$IMGSVC' -t -c '$T/imgsvc.ini' >/dev/null 2>&1 && printf '%s' \"\$1\" | grep -q 'bad magic); a worker will move it aside'" _ "$out"
stop_bg "$LIGHTTPD_PID"
start_lighttpd "$T/imgsvc.ini" 1
WORKER=$(imgsvc_pids | head -n 1)
serving "bad magic, a new worker"
check "  it moved the file aside and said so" \
	sh -c "ls '$S'.damaged-* >/dev/null 2>&1 && grep -q 'bad magic); moved aside to ' '$SERVER_LOG'"
check "  burst 5 admits 5 of 8 in the new file" test "$(eight_quick)" = 5

# state_file naming a file that is not imgsvc's: -t fails, nothing moved.
printf 'not a state file\n' >"$T/foreign"
sed "s|^state_file = .*|state_file = $T/foreign|" "$T/imgsvc.ini" >"$T/foreign.ini"
out=$("$IMGSVC" -t -c "$T/foreign.ini" 2>&1)
check "a foreign file as state_file: imgsvc -t fails ($out), the file stays" \
	sh -c "! '$IMGSVC' -t -c '$T/foreign.ini' >/dev/null 2>&1 && printf '%s' \"\$1\" | grep -q 'a worker refuses it' && [ \"\$(cat '$T/foreign')\" = 'not a state file' ]" _ "$out"
