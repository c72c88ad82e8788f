#!/bin/bash
# t0236-memory.sh - the memory of a request is a budget (README "Memory"):
# with the default settings no request takes a worker past 512 MB, the
# worker's peak (VmHWM in /proc/PID/status) read after each request:
#   - a 97 KB PNG of 10000x10000 (the old default max_source_pixels):
#     413 before decoding, plain and with parameters;
#   - a PNG at max_source_pixels (6000x4000): its plain GET is downscaled
#     to max_width within the budget, and the second plain GET is a cache
#     hit (clamped originals are kept like any derivative);
#   - its full-size rotation: 413, the estimate over max_image_memory;
#   - fit=fill from 1x1 to 4000x4000: 400 naming max_output_pixels;
#     to 3840x2160 (max_output_pixels): 200;
#   - a 24 MP JPEG, plain and rotated at half size: 200.
# Then, with image_workers = 1 (GraphicsMagick's memory limit is then one
# image's budget) and a small max_image_memory, work over it is refused
# with 413 and the worker stays small.
# Through lighttpd (one worker) against moto (signature checking on).
# Sanitized builds carry shadow memory and quarantines: the statuses are
# checked there, the peaks skipped.

. "$(dirname "$0")/lib.sh"
require_imgsvc
require_tools moto_server aws curl gm lighttpd

LIMIT_KB=$((512 * 1024))

make_small_png
start_moto
dir=$T/fixtures
mkdir -p "$dir/$PREFIX"
gm convert -size 10000x10000 xc:white "png:$dir/${PREFIX}bomb10k.png"
gm convert -size 6000x4000 xc:white "png:$dir/${PREFIX}max.png"
gm convert -size 1x1 xc:red "png:$dir/${PREFIX}one.png"
gm convert -size 6000x4000 gradient:red-blue -quality 85 "jpg:$dir/${PREFIX}photo24mp.jpg"
cp "$T/small.png" "$dir/$PREFIX"
upload_dir "$dir"

# peak_under: the worker's VmHWM is under 512 MB.
peak_under() {
	local kb
	kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$WORKER/status" 2>/dev/null)
	[ -n "$kb" ] || { echo "no VmHWM for pid $WORKER"; return 1; }
	say "worker VmHWM $kb kB"
	[ "$kb" -lt "$LIMIT_KB" ] && return 0
	echo "VmHWM $kb kB, over $LIMIT_KB kB"
	return 1
}
peak() {
	if sanitized; then
		skip "  worker peak under 512 MB (after $1)" "sanitized build"
	else
		check "  worker peak under 512 MB (after $1)" peak_under
	fi
}
# message_has TEXT: the JSON error's message contains TEXT.
message_has() {
	local m
	m=$(json_get "$T/resp.body" 'd["message"]')
	case $m in *"$1"*) return 0 ;; esac
	echo "message '$m' lacks '$1'"
	return 1
}

# --- default settings ----------------------------------------------------------------
write_config "$T/imgsvc.ini"
start_lighttpd "$T/imgsvc.ini" 1
A_PID=$LIGHTTPD_PID
get /small.png
WORKER=$(imgsvc_pids | head -n 1)
check "one worker (pid ${WORKER:-none}) serves small.png" status_is 200
peak "small.png"

for q in "" "w=100"; do
	timed_get "/bomb10k.png${q:+?$q}"
	ok_json_error "10000x10000 PNG of $(wc -c <"$dir/${PREFIX}bomb10k.png") bytes${q:+ ?$q}: 413" 413
	check "  answered in ${ELAPSED_MS} ms (< 2000)" test "$ELAPSED_MS" -lt 2000
	peak "bomb10k.png${q:+?$q}"
done

get /max.png
check "6000x4000 PNG (max_source_pixels), plain GET: 200, 2000x1333" \
	body_identifies_as "2000 1333 PNG"
check "  computed now (X-Cache: miss)" header_is X-Cache miss
save_response clamp1
peak "max.png, downscaled"
wait_object "resized/w-2000/max.png" >/dev/null 2>&1
get /max.png
check "the second plain GET: a cache hit (X-Cache: hit)" header_is X-Cache hit
check "  the same bytes" body_same_as "$T/clamp1.body"
check "  the same ETag" header_is ETag "$(tr -d '\r' <"$T/clamp1.head" | grep -i '^etag:' |
	sed 's/^[^:]*: *//')"
get "/max.png?w=2000"
check "  and the same derivative as ?w=2000 (X-Cache: hit)" header_is X-Cache hit

get "/max.png?rotate=90"
ok_json_error "its full-size rotation: 413 (over max_image_memory)" 413
check "  the message says so" message_has max_image_memory
peak "max.png?rotate=90"

get "/one.png?w=4000&h=4000&fit=fill"
ok_json_error "1x1 PNG, fit=fill to 4000x4000: 400" 400
check "  the message names max_output_pixels" message_has max_output_pixels
get "/one.png?w=3840&h=2160&fit=fill"
check "1x1 PNG, fit=fill to 3840x2160 (max_output_pixels): 200" \
	body_identifies_as "3840 2160 PNG"
peak "fit=fill 3840x2160"

get /photo24mp.jpg
check "6000x4000 JPEG, plain GET: 200, 2000x1333" body_identifies_as "2000 1333 JPEG"
peak "photo24mp.jpg"
get "/photo24mp.jpg?w=2000&rotate=90"
check "  rotated at w=2000: 200, 2000x3000" body_identifies_as "2000 3000 JPEG"
peak "photo24mp.jpg?w=2000&rotate=90"
check "the same worker served everything (pid $WORKER)" one_worker_is "$WORKER"
stop_bg "$A_PID"
for _ in $(seq 50); do [ -z "$(imgsvc_pids)" ] && break; sleep 0.1; done

# --- a small budget ------------------------------------------------------------------
CFG_IMAGE_WORKERS=1 write_config "$T/small.ini"
sed -i 's/^\[server\]$/[server]\nmax_image_memory = 100000000/' "$T/small.ini"
start_lighttpd "$T/small.ini" 1
get /small.png
WORKER=$(imgsvc_pids | head -n 1)
check "max_image_memory = 100000000: small.png is served" status_is 200
get "/photo24mp.jpg?w=4000"
ok_json_error "  a 24 MP JPEG at w=4000: 413" 413
get "/photo24mp.jpg?w=400"
check "  at w=400 (decoded at 1/8): 200" body_identifies_as "400 267 JPEG"
if sanitized; then
	skip "  worker peak under 150 MB" "sanitized build"
else
	LIMIT_KB=$((150 * 1024))
	check "  worker peak under 150 MB" peak_under
fi
