#!/bin/bash
# t0240-metadata.sh - what metadata leaves imgsvc (README "Metadata",
# Security "Metadata of originals"):
#   - a PNG made from a JPEG carries none of GraphicsMagick's own text
#     chunks (JPEG-Quality, JPEG-Colorspace, JPEG-Sampling-factors,
#     EXIFOrientation): gm identify -verbose shows none, and the PNG has
#     no tEXt/zTXt/iTXt/eXIf chunk;
#   - strip_originals = yes: a JPEG original (at most max_width) with GPS,
#     Make and Artist in its Exif and a comment comes back without them,
#     with exactly the same pixels, its orientation kept, under an ETag of
#     its own that revalidates to 304; a PNG original loses its tEXt; an
#     original without metadata is served byte for byte under S3's ETag;
#   - strip_originals = no (the default): the same JPEG comes back byte for
#     byte, GPS and all.
# Through lighttpd (one worker) against moto (signature checking on).

. "$(dirname "$0")/lib.sh"
require_imgsvc
require_tools moto_server aws curl gm lighttpd

make_small_png
start_moto
dir=$T/fixtures
mkdir -p "$dir/$PREFIX"
gm convert -size 300x200 gradient:red-blue -quality 90 "jpg:$T/plain.jpg"
imgtool exif-gps "$T/plain.jpg" "$dir/${PREFIX}gps.jpg"
imgtool exif-gps "$T/plain.jpg" "$dir/${PREFIX}gps6.jpg" 6
cp "$T/plain.jpg" "$dir/${PREFIX}plain.jpg"
cp "$IMAGES/photo2mp.jpg" "$IMAGES/photo-dune.png" "$dir/$PREFIX"
upload_dir "$dir"

# pixels_same FILE: the body decodes to exactly FILE's pixels (raw RGB: a PPM
# would carry the comment).
pixels_same() {
	gm convert "$T/resp.body" "rgb:$T/a.rgb" && gm convert "$1" "rgb:$T/b.rgb" || return 1
	cmp -s "$T/a.rgb" "$T/b.rgb" && return 0
	echo "the pixels differ from $1's"
	return 1
}
# lacks_bytes STRING...: none of them anywhere in the body.
lacks_bytes() {
	local s
	for s in "$@"; do
		if grep -qaF "$s" "$T/resp.body"; then
			echo "'$s' found in the body"
			return 1
		fi
	done
}
meta_is() {
	local v
	v=$(imgtool meta "$T/resp.body")
	[ "$v" = "$1" ] && return 0
	echo "metadata blocks '$v', expected '$1'"
	return 1
}
no_gm_text() {
	local v
	v=$(gm identify -verbose "$T/resp.body" 2>&1 |
		grep -E 'JPEG-Quality|JPEG-Colorspace|JPEG-Sampling-factors|EXIFOrientation')
	[ -z "$v" ] && return 0
	echo "gm identify -verbose shows: $v"
	return 1
}
PRIVATE="GPS imgsvc-test-camera imgsvc-test-artist secret comment"

# --- the default: strip_originals = no -------------------------------------------------
write_config "$T/imgsvc.ini"
start_lighttpd "$T/imgsvc.ini" 1
A_PID=$LIGHTTPD_PID

get "/photo2mp.jpg?w=100&fm=png"
check "photo2mp.jpg?w=100&fm=png: 200 PNG" body_identifies_as "100 63 PNG"
check "  gm identify -verbose: no JPEG-Quality, JPEG-Colorspace, JPEG-Sampling-factors, EXIFOrientation" \
	no_gm_text
check "  no text or Exif chunk at all (only pHYs may remain)" sh -c \
	"v=\$($PY '$TESTS_DIR/imgtool.py' meta '$T/resp.body'); case \$v in *tEXt*|*zTXt*|*iTXt*|*eXIf*) echo \"\$v\"; exit 1;; esac"
get "/gps6.jpg?rotate=90&fm=png"
check "gps6.jpg?rotate=90&fm=png: no GraphicsMagick text chunks either" no_gm_text
check "  nor the source's private bytes" lacks_bytes $PRIVATE

get /gps.jpg
check "strip_originals = no: gps.jpg comes back byte for byte (GPS, Make, Artist, comment)" \
	body_same_as "$dir/${PREFIX}gps.jpg"
stop_bg "$A_PID"
for _ in $(seq 50); do [ -z "$(imgsvc_pids)" ] && break; sleep 0.1; done

# --- strip_originals = yes ------------------------------------------------------------
write_config "$T/strip.ini"
sed -i 's/^\[server\]$/[server]\nstrip_originals = yes/' "$T/strip.ini"
start_lighttpd "$T/strip.ini" 1

get /plain.jpg
s3_etag=$(hdr ETag)
get /gps.jpg
check "strip_originals = yes: gps.jpg is 200 JPEG 300x200" body_identifies_as "300 200 JPEG"
check "  without GPS, Make, Artist or the comment" lacks_bytes $PRIVATE
check "  no Exif segment, no comment: only JFIF" meta_is APP0:JFIF
check "  exactly the original's pixels" pixels_same "$dir/${PREFIX}gps.jpg"
check "  smaller than the original" test "$(wc -c <"$T/resp.body")" -lt \
	"$(wc -c <"$dir/${PREFIX}gps.jpg")"
etag=$(hdr ETag)
head_object "${PREFIX}gps.jpg" && aws_etag=$(json_get "$T/obj.json" 'd["ETag"]')
check "  under an ETag of its own, not S3's ($aws_etag)" test -n "$etag" -a "$etag" != "$aws_etag"
http GET "$BASE/gps.jpg" -H "X-API-Key: $KEY_WEB" -H "If-None-Match: $etag"
check "  If-None-Match with that ETag: 304" status_is 304

get /gps6.jpg
check "gps6.jpg (Orientation 6): private bytes gone" lacks_bytes $PRIVATE
check "  the orientation kept (EXIF Orientation 6)" \
	test "$(gm identify -format '%[EXIF:Orientation]' "$T/resp.body")" = 6
check "  exactly the original's pixels" pixels_same "$dir/${PREFIX}gps6.jpg"

get /photo-dune.png
check "photo-dune.png: its tEXt chunks gone (pHYs stays)" meta_is pHYs
check "  exactly the original's pixels" pixels_same "$IMAGES/photo-dune.png"

get /plain.jpg
check "plain.jpg (no metadata but JFIF): byte for byte" body_same_as "$T/plain.jpg"
check "  under S3's ETag, as before" header_is ETag "$s3_etag"
