#!/bin/bash
# t0235-truncated.sh - a truncated or corrupt image is never served as a good
# one: a transform of a JPEG, PNG, GIF or WebP cut short answers 415 (no
# 200, no public Cache-Control), is logged, and nothing is written to the
# derivative cache; garbage behind a valid 16x16 header is 415, not 413. A
# JPEG with more than 512 KiB of metadata before its frame header is
# probed to the end of it: resized, and clamped the same way on every GET.
# Through lighttpd (one worker) against moto (signature checking on).

. "$(dirname "$0")/lib.sh"
require_imgsvc
require_tools moto_server aws curl gm lighttpd

make_fixtures
make_small_png
start_moto
dir=$T/fixtures
mkdir -p "$dir/$PREFIX"
cp "$T/small.png" "$dir/$PREFIX"
# Each format from one 1200x800 noisy picture (noise: no run compresses
# away, so every cut point lands inside the pixel data), cut at 30, 60 and
# 90 % of its length.
gm convert -size 1200x800 plasma:fractal +noise Gaussian "$T/full.png" ||
	bail_out "gm convert failed"
for fmt in jpg png gif webp; do
	gm convert "$T/full.png" "$T/full.$fmt" || bail_out "gm convert $fmt failed"
	len=$(stat -c %s "$T/full.$fmt")
	for pct in 30 60 90; do
		head -c $((len * pct / 100)) "$T/full.$fmt" >"$dir/${PREFIX}cut$pct.$fmt"
	done
done
# A valid 16x16 PNG header (signature and IHDR) followed by noise.
"$PY" - "$T/small.png" "$dir/${PREFIX}garbage16.png" <<'EOF'
import random, struct, sys, zlib
ihdr = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
head = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + \
    struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
rnd = random.Random(7)
body = bytes(rnd.randrange(256) for _ in range(400))
idat = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
open(sys.argv[2], "wb").write(head + idat + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))
EOF
# A valid 4000x2500 JPEG with ten APP2 segments of 65533 bytes (about
# 640 KiB of metadata) spliced in before its frame header.
gm convert -size 4000x2500 gradient:red-blue -quality 80 "$T/wide.jpg" || bail_out "gm convert wide"
"$PY" - "$T/wide.jpg" "$dir/${PREFIX}bigmeta.jpg" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
seg = b"\xff\xe2" + (65533).to_bytes(2, "big") + b"X" * 65531
open(sys.argv[2], "wb").write(data[:2] + seg * 10 + data[2:])
EOF
# The same picture cut at 60 %: wider than max_width, so a plain GET clamps it.
head -c $(($(stat -c %s "$T/wide.jpg") * 60 / 100)) "$T/wide.jpg" >"$dir/${PREFIX}widecut.jpg"
upload_dir "$dir"

write_config "$T/imgsvc.ini"
start_lighttpd "$T/imgsvc.ini" 1

not_public() {
	case $(hdr Cache-Control) in *public*) echo "Cache-Control: $(hdr Cache-Control)" && return 1 ;; esac
	return 0
}

for fmt in jpg png gif webp; do
	for pct in 30 60 90; do
		log_mark
		get "/cut$pct.$fmt?w=100"
		ok_json_error "$fmt cut at $pct %, w=100: 415" 415
		check "  not public" not_public
		check "  logged" wait_log_line " /cut$pct.$fmt "
	done
done
get "/cut60.jpg?w=100"
ok_json_error "cut JPEG again: still 415 (no cached copy)" 415
check "  the log says why" log_since_mark_has "truncated or corrupt"

log_mark
get /widecut.jpg
ok_json_error "plain GET of a 4000 px original cut at 60 % (clamped): 415" 415
check "  not public" not_public
check "  logged" wait_log_line " /widecut.jpg "

log_mark
get "/garbage16.png?w=8"
ok_json_error "16x16 PNG header with a garbage body, w=8: 415 (not 413)" 415

get /small.png
check "a normal request still works" status_is 200

# --- a JPEG with 640 KiB of metadata before its frame header --------------------------
get "/bigmeta.jpg?w=300"
check "JPEG with 640 KiB of APP2 before SOF, w=300: 200, 300x188" body_identifies_as "300 188 JPEG"
same_answers() {
	local i tag size first=
	for i in $(seq 12); do
		get /bigmeta.jpg
		status_is 200 || return 1
		tag=$(hdr ETag) size=$(stat -c %s "$T/resp.body")
		[ -n "$first" ] || first="$tag $size"
		[ "$tag $size" = "$first" ] || { echo "GET $i: $tag $size, GET 1: $first" && return 1; }
	done
	body_identifies_as "2000 1250 JPEG"
}
check "plain GET 12 times: the 2000 px clamp each time, one ETag and size" same_answers

# Nothing but the originals in the bucket: no derivative was written.
no_derivatives() {
	sleep 1
	list_keys >"$T/all-keys" || return 1
	if grep -v "^$PREFIX" "$T/all-keys" | grep -v bigmeta; then return 1; fi
	return 0
}
check "nothing written outside $PREFIX but bigmeta's (no damaged derivative cached)" no_derivatives

