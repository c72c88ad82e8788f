#!/bin/bash
# t0160-soak.sh - 2000 requests to ONE imgsvc worker (lighttpd max-procs 1):
# originals, downscaled originals (GraphicsMagick), 404s and 403s, mixed.
# The worker must answer every one rightly, stay the same process, and
# its resident set (VmRSS) must not grow by more than 2 MB between request
# 200 and request 2000: a long-running FastCGI process leaks nothing per
# request.

. "$(dirname "$0")/lib.sh"

require_imgsvc
require_tools moto_server aws curl lighttpd

TOTAL=${SOAK_REQUESTS:-2000}
WARMUP=200
BOUND_KB=2048

start_moto
upload_fixtures photo2mp.jpg photo12mp.jpg
write_config "$T/imgsvc.ini"
start_lighttpd "$T/imgsvc.ini" 1

# The n-th request (1-based) of the mix, as a curl config block. Per 100:
# 1 downscaled 12 MP JPEG, 10 photo2mp.jpg, 40 small.png, 30 missing (404),
# 10 unknown key and 9 without key (403).
block() {
	local n=$1 r=$(($1 % 100)) path key=$KEY_WEB
	if [ $r = 0 ]; then path=photo12mp.jpg
	elif [ $((r % 10)) = 0 ]; then path=small.png key=
	elif [ $((r % 10)) = 1 ]; then path=photo2mp.jpg
	elif [ $((r % 10)) -le 5 ]; then path=small.png
	elif [ $((r % 10)) -le 8 ]; then path=missing-$n.jpg
	else path=small.png key=wrong-key-$n
	fi
	printf 'url = "%s/%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code} %s\\n"\n' \
		"$BASE" "$path" "$path"
	[ -n "$key" ] && printf 'header = "X-API-Key: %s"\n' "$key"
	printf 'next\n'
}

# run_batch FROM TO: requests FROM..TO over one keep-alive connection;
# appends "STATUS PATH WANT" to $T/soak.out.
run_batch() {
	local n
	: >"$T/batch.cfg"
	: >"$T/batch.want"
	for n in $(seq "$1" "$2"); do
		block "$n" >>"$T/batch.cfg"
		local r=$((n % 100)) want=200
		if [ $r != 0 ] && [ $((r % 10)) -ge 6 ] && [ $((r % 10)) -le 8 ]; then want=404; fi
		if [ $r != 0 ] && { [ $((r % 10)) = 9 ] || [ $((r % 10)) = 0 ]; }; then want=403; fi
		echo "$want" >>"$T/batch.want"
	done
	curl -sS --noproxy '*' --max-time 600 -K "$T/batch.cfg" >"$T/batch.got" 2>>"$T/curl.err"
	paste -d' ' "$T/batch.got" "$T/batch.want" >>"$T/soak.out"
}

: >"$T/soak.out"
start=$(date +%s)
run_batch 1 "$WARMUP"
WORKER_PID=$(imgsvc_pids | head -n 1)
rss_warm=$(rss_kb "$WORKER_PID")
n=$WARMUP
while [ "$n" -lt "$TOTAL" ]; do
	to=$((n + 200))
	[ "$to" -gt "$TOTAL" ] && to=$TOTAL
	run_batch $((n + 1)) "$to"
	n=$to
done
rss_end=$(rss_kb "$WORKER_PID")
elapsed=$(($(date +%s) - start))
say "VmRSS after $WARMUP requests: $rss_warm kB; after $TOTAL: $rss_end kB; $elapsed s"

answered=$(wc -l <"$T/soak.out")
wrong=$(awk '$1 != $3' "$T/soak.out" | wc -l)
check "all $TOTAL requests answered ($answered)" test "$answered" = "$TOTAL"
check "every status as expected ($wrong wrong)" test "$wrong" = 0
[ "$wrong" = 0 ] || awk '$1 != $3' "$T/soak.out" | sort | uniq -c | head -n 10 | sed 's/^/#   /'
check "one worker served all $TOTAL (pid $WORKER_PID)" one_worker_is "$WORKER_PID"
growth=$((rss_end - rss_warm))
if sanitized; then
	# ASan keeps freed blocks in quarantine (256 MB) and never hands them
	# back: its RSS grows without a leak. LeakSanitizer checks this
	# worker at exit instead.
	skip "VmRSS growth from request $WARMUP to $TOTAL" \
		"built with --enable-sanitizers: ASan's allocator quarantines freed memory, RSS means nothing ($growth kB)"
else
	check "VmRSS growth from request $WARMUP to $TOTAL: $growth kB ($rss_warm -> $rss_end kB) <= $BOUND_KB kB" \
		test "$growth" -le "$BOUND_KB"
fi
check "soak finished in $elapsed s (limit 300 s)" test "$elapsed" -le 300
