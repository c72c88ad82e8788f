#!/bin/bash
# t0230-limits.sh - what imgsvc refuses before decoding, and what it
# survives: 413 for a pixel bomb (quickly, without decoding) and over
# max_source_bytes / max_source_pixels, 415 for non-images and formats left
# out of [server] formats, 400 for bad parameters, and truncated or corrupt
# images. After every error the same worker serves a normal request.
# Through lighttpd (one worker) against moto (signature checking on).

. "$(dirname "$0")/lib.sh"
require_imgsvc
require_tools moto_server aws curl gm lighttpd

make_fixtures
make_small_png
start_moto
dir=$T/fixtures
mkdir -p "$dir/$PREFIX"
for f in photo2mp.jpg photo12mp.jpg photo13mp-progressive.jpg photo-dune.png; do
	cp "$IMAGES/$f" "$dir/$PREFIX$f"
done
cp "$T/small.png" "$GEN/quads.png" "$GEN/quads.webp" "$GEN/anim.gif" "$GEN/bomb.png" \
	"$GEN/text.jpg" "$GEN/svg.jpg" "$GEN/pdf.jpg" "$GEN/truncated.jpg" "$dir/$PREFIX"
# A valid JPEG header (SOI .. SOS of photo2mp.jpg) followed by noise, and a
# PNG cut off in its image data.
"$PY" - "$IMAGES/photo2mp.jpg" "$dir/${PREFIX}garbage.jpg" <<'EOF'
import random, sys
data = open(sys.argv[1], "rb").read()
sos = data.index(b"\xff\xda")
rnd = random.Random(42)
open(sys.argv[2], "wb").write(data[:sos + 14] + bytes(rnd.randrange(256) for _ in range(200000)))
EOF
head -c 600000 "$IMAGES/photo-dune.png" >"$dir/${PREFIX}truncated.png"
upload_dir "$dir"

same_worker_serves() {
	get /small.png
	status_is 200 && body_same_as "$T/small.png" || return 1
	one_worker_is "$WORKER"
}
after() {
	check "  then the same worker serves a normal request (after: $1)" same_worker_serves
}
no_img_ms() { # no_img_ms PATH: the request's log line lacks img_ms
	wait_log_line " $1 " || { echo "no log line for $1"; return 1; }
	case $LOG_LINE in *img_ms=*) echo "decoded: $LOG_LINE" && return 1 ;; esac
}
# error_or_image W H FORMAT: a clean JSON 4xx/5xx, or a 200 that is a
# decodable W x H (+-1 px) image (GraphicsMagick may decode what is there).
error_or_image() {
	case $HTTP_STATUS in
	200) body_size_near "$1" "$2" "$3" ;;
	4?? | 5??) json_error "$HTTP_STATUS" ;;
	*) echo "status $HTTP_STATUS" && show_response && return 1 ;;
	esac
}

# --- default limits ------------------------------------------------------------------
write_config "$T/imgsvc.ini"
start_lighttpd "$T/imgsvc.ini" 1
A_PID=$LIGHTTPD_PID
get /small.png
WORKER=$(imgsvc_pids | head -n 1)
check "one worker (pid ${WORKER:-none}) serves small.png" same_worker_serves

for q in "w=100" "fm=webp" ""; do
	log_mark
	timed_get "/bomb.png${q:+?$q}"
	ok_json_error "20000x20000 PNG bomb (${q:-no parameters, wider than max_width}): 413" 413
	check "  answered in ${ELAPSED_MS} ms (< 2000)" test "$ELAPSED_MS" -lt 2000
	check "  never decoded (no img_ms in its log line)" no_img_ms /bomb.png
	after "bomb ${q:-clamp}"
done

for f in text svg pdf; do
	log_mark
	get "/$f.jpg?w=100"
	ok_json_error "$f.jpg (not an image) with w=100: 415" 415
	check "  never decoded (no img_ms in its log line)" no_img_ms "/$f.jpg"
	after "$f.jpg"
done

for q in "x=1" "w=0" "w=4001" "fit=crop" "w=10&w=20" "rotate=45" "q=101" "fm=bmp" "w="; do
	get "/photo2mp.jpg?$q"
	name=${q%%=*}
	check "?$q through the server: 400 naming '$name'" json_error_names 400 "$name"
	after "?$q"
done

log_mark
get "/truncated.jpg?w=100"
check "truncated JPEG (400000 of 1242241 bytes), w=100: a clean error or a 100x63 image" \
	error_or_image 100 63 JPEG
check "  logged" wait_log_line " /truncated.jpg "
after "truncated JPEG"
get "/garbage.jpg?w=100"
check "JPEG header followed by noise, w=100: a clean error or a 100x63 image" \
	error_or_image 100 63 JPEG
after "corrupt JPEG"
get "/truncated.png?w=100"
check "truncated PNG (600000 of 2058794 bytes), w=100: a clean error or a 100x63 image" \
	error_or_image 100 63 PNG
after "truncated PNG"
get "/truncated.jpg?w=100&rotate=90&fm=webp"
check "truncated JPEG again (rotate=90, WebP): a clean error or a 100x160 image" \
	error_or_image 100 160 WEBP
after "truncated JPEG, WebP"

stop_bg "$A_PID"
for _ in $(seq 50); do [ -z "$(imgsvc_pids)" ] && break; sleep 0.1; done

# --- tight limits ----------------------------------------------------------------------
CFG_MAX_SOURCE_BYTES=2000000 CFG_MAX_SOURCE_PIXELS=5000000 CFG_FORMATS="jpeg png" \
	CFG_MAX_OUTPUT_DIMENSION=1000 write_config "$T/tight.ini"
start_lighttpd "$T/tight.ini" 1
get /small.png
WORKER=$(imgsvc_pids | head -n 1)
check "tight limits: one worker (pid ${WORKER:-none}) serves small.png" same_worker_serves

log_mark
timed_get "/photo12mp.jpg?w=100"
ok_json_error "max_source_bytes 2000000, a 2940951-byte JPEG with w=100: 413" 413
check "  never decoded (no img_ms in its log line)" no_img_ms /photo12mp.jpg
after "over max_source_bytes"
get "/photo-dune.png?w=100"
ok_json_error "a 2058794-byte PNG with w=100: 413" 413
after "over max_source_bytes (PNG)"
get /photo-dune.png
check "the same PNG without parameters (no decoding needed): streamed, byte-identical" \
	body_same_as "$IMAGES/photo-dune.png"
log_mark
get "/photo13mp-progressive.jpg?w=100"
ok_json_error "max_source_pixels 5000000, a 13.4 MP JPEG of 1.5 MB with w=100: 413" 413
check "  never decoded (no img_ms in its log line)" no_img_ms /photo13mp-progressive.jpg
after "over max_source_pixels"
get "/photo2mp.jpg?w=100"
check "a 2.3 MP JPEG of 1.2 MB, within both limits: 200, 100x63" body_size_near 100 63 JPEG

get "/anim.gif?w=20"
ok_json_error "formats = jpeg png: a GIF with w=20: 415" 415
after "GIF not in formats"
get "/quads.webp?w=20"
ok_json_error "formats = jpeg png: a WebP with w=20: 415" 415
after "WebP not in formats"
get "/quads.png?w=20&fm=webp"
check "formats limits sources only: PNG to WebP output works" body_identifies_as "20 13 WEBP"

get "/photo2mp.jpg?w=1001"
check "max_output_dimension 1000: w=1001 is 400 naming 'w'" json_error_names 400 w
check "  and the message gives the configured bound (1000)" \
	grep -q '1000' "$T/resp.body"
after "w over max_output_dimension"
get "/photo2mp.jpg?h=1001"
check "max_output_dimension 1000: h=1001 is 400 naming 'h'" json_error_names 400 h
get "/photo2mp.jpg?w=1000"
check "w=1000: 200, 1000x625" body_identifies_as "1000 625 JPEG"
check "the same worker served everything (pid $WORKER)" one_worker_is "$WORKER"
