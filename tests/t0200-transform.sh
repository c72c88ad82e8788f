#!/bin/bash
# t0200-transform.sh - transformation parameters (w, h, fit, rotate, q, fm)
# through lighttpd against moto (signature checking on): output sizes for
# each fit mode, no enlargement except by fill, EXIF orientations 1-8 and
# rotations checked by pixel colours, formats and Content-Type, fm=auto and
# Accept, metadata stripped, ICC kept, CMYK to RGB, alpha, GIF to PNG, 400s
# naming the parameter, and one ETag for equivalent requests.
#
# Images: the photos of tests/data/images and those of make-fixtures.sh
# (quads.png: TL red, TR green, BL blue, BR yellow; thirds.png: vertical
# thirds red, green, blue).

. "$(dirname "$0")/lib.sh"
require_imgsvc
require_tools moto_server aws curl gm lighttpd

make_fixtures
start_moto
dir=$T/fixtures
mkdir -p "$dir/$PREFIX"
for f in photo12mp.jpg photo2mp.jpg photo-dune.png photo13mp-progressive.jpg; do
	cp "$IMAGES/$f" "$dir/$PREFIX$f"
done
for f in quads.png thirds.png orient-{1,2,3,4,5,6,7,8}.jpg progressive.jpg gps.jpg \
	icc.jpg cmyk.jpg quads.webp alpha.png anim.gif; do
	cp "$GEN/$f" "$dir/$PREFIX$f"
done
upload_dir "$dir"
write_config "$T/imgsvc.ini"
start_lighttpd "$T/imgsvc.ini" 1

# --- sizes on the 4000x3000 photo --------------------------------------------
size_case() { # size_case QUERY W H FORMAT [PATH]
	local path=${5:-/photo12mp.jpg}
	tget "$path?$1"
	check "$path?$1: 200" status_is 200
	check "$path?$1: ${2}x$3 $4" body_size_near "$2" "$3" "$4"
}
size_case "w=400" 400 300 JPEG
size_case "h=300" 400 300 JPEG
size_case "w=400&h=400" 400 300 JPEG
size_case "w=1000&h=200" 267 200 JPEG
size_case "w=400&h=400&fit=cover" 400 400 JPEG
size_case "w=300&h=500&fit=cover" 300 500 JPEG
size_case "w=400&h=100&fit=fill" 400 100 JPEG
size_case "w=3000" 3000 2250 JPEG
check "w=3000: Content-Type image/jpeg" header_is Content-Type image/jpeg

# --- fit modes on thirds.png (300x200: red | green | blue) -----------------
tget "/thirds.png?w=100&h=200&fit=cover"
check "thirds.png cover 100x200: 100x200 PNG" body_identifies_as "100 200 PNG"
check "  centre crop: left edge green (not red)" body_colour_at 5 100 green
check "  centre crop: right edge green (not blue)" body_colour_at 94 100 green
tget "/thirds.png?w=50&h=100&fit=cover"
check "thirds.png cover 50x100 (scaled 150x100, cropped): 50x100" body_identifies_as "50 100 PNG"
check "  all green" body_colour_at 5 50 green
tget "/thirds.png?w=100&h=200&fit=fill"
check "thirds.png fill 100x200: exactly 100x200" body_identifies_as "100 200 PNG"
check "  stretched: left red" body_colour_at 10 100 red
check "  stretched: right blue" body_colour_at 90 100 blue
tget "/thirds.png?w=100&h=200"
check "thirds.png inside 100x200: 100x67" body_size_near 100 67 PNG
check "  whole image: left red" body_colour_at 10 33 red
check "  whole image: right blue" body_colour_at 90 33 blue

# --- no enlargement, except fill -----------------------------------------------
size_case "w=600" 300 200 PNG /quads.png
size_case "h=400" 300 200 PNG /quads.png
size_case "w=600&h=600" 300 200 PNG /quads.png
size_case "w=600&h=600&fit=cover" 300 200 PNG /quads.png
size_case "w=100&h=600&fit=cover" 100 200 PNG /quads.png
size_case "w=600&h=500&fit=fill" 600 500 PNG /quads.png

# --- EXIF orientation: every one upright ---------------------------------------
for n in 1 2 3 4 5 6 7 8; do
	tget "/orient-$n.jpg?w=150"
	check "EXIF orientation $n, w=150: 150x100 JPEG" body_size_near 150 100 JPEG
	check "EXIF orientation $n: upright (red top-left, yellow bottom-right)" \
		body_quads_are "red green blue yellow"
done
no_exif() {
	local v
	v=$(imgtool meta "$T/resp.body") || return 1
	case $v in *Exif*) echo "metadata: $v" && return 1 ;; esac
}
check "  and the output carries no Orientation tag (no Exif)" no_exif

# --- rotate (clockwise, after EXIF) ------------------------------------------
rot_case() { # rot_case PATH QUERY W H QUADS
	tget "$1?$2"
	check "$1?$2: ${3}x$4" body_size_near "$3" "$4" JPEG
	check "$1?$2: quadrants $5" body_quads_are "$5"
}
rot_case /orient-1.jpg rotate=90 200 300 "blue red yellow green"
rot_case /orient-1.jpg rotate=180 300 200 "yellow blue green red"
rot_case /orient-1.jpg rotate=270 200 300 "green yellow red blue"
rot_case /orient-6.jpg rotate=90 200 300 "blue red yellow green"
rot_case /orient-8.jpg rotate=270 200 300 "green yellow red blue"
rot_case /orient-1.jpg "w=100&rotate=90" 100 150 "blue red yellow green"

# --- q -------------------------------------------------------------------------
tget "/photo2mp.jpg?w=800&q=30"
save_response q30
tget "/photo2mp.jpg?w=800&q=90"
save_response q90
check "q=30 and q=90: both 800x500 JPEG" sh -c \
	"[ \"\$(gm identify -format '%w %h %m' '$T/q30.body')\" = '800 500 JPEG' ] &&
	 [ \"\$(gm identify -format '%w %h %m' '$T/q90.body')\" = '800 500 JPEG' ]"
check "q=30 is smaller than q=90 ($(wc -c <"$T/q30.body") < $(wc -c <"$T/q90.body") bytes)" \
	test "$(wc -c <"$T/q30.body")" -lt "$(wc -c <"$T/q90.body")"
check "q=30 gives another ETag than q=90" test "$(tr -d '\r' <"$T/q30.head" | grep -i '^etag:')" != \
	"$(tr -d '\r' <"$T/q90.head" | grep -i '^etag:')"

# --- fm -------------------------------------------------------------------------
fm_case() { # fm_case PATH QUERY "W H FORMAT" CONTENT-TYPE [curl args]
	local p=$1 q=$2 want=$3 ct=$4
	shift 4
	tget "$p?$q" "$@"
	check "$p?$q: $want" body_identifies_as "$want"
	check "$p?$q: Content-Type $ct" header_is Content-Type "$ct"
}
fm_case /photo2mp.jpg "w=200&fm=png" "200 125 PNG" image/png
fm_case /photo2mp.jpg "w=200&fm=webp" "200 125 WEBP" image/webp
fm_case /quads.png "w=150&fm=jpeg" "150 100 JPEG" image/jpeg
fm_case /photo-dune.png "w=200" "200 125 PNG" image/png
fm_case /quads.webp "w=150" "150 100 WEBP" image/webp
check "  WebP source: colours right" body_quads_are "red green blue yellow"
fm_case /quads.png "fm=webp" "300 200 WEBP" image/webp

# fm=auto: explicit image/webp in Accept, q > 0; curl's */* does not count.
fm_case /photo2mp.jpg "w=200&fm=auto" "200 125 WEBP" image/webp -H 'Accept: image/avif,image/webp,*/*'
check "fm=auto: Vary: Accept" header_matches Vary '(^|, *)Accept(,|$)'
fm_case /photo2mp.jpg "w=200&fm=auto" "200 125 JPEG" image/jpeg
check "fm=auto with curl's Accept (*/*): Vary: Accept" header_matches Vary '(^|, *)Accept(,|$)'
fm_case /photo2mp.jpg "w=200&fm=auto" "200 125 JPEG" image/jpeg -H 'Accept: image/*'
fm_case /photo2mp.jpg "w=200&fm=auto" "200 125 JPEG" image/jpeg -H 'Accept: image/webp;q=0, */*'
fm_case /photo2mp.jpg "w=200&fm=auto" "200 125 WEBP" image/webp -H 'Accept: text/html, image/webp;q=0.5'

# --- alpha -------------------------------------------------------------------------
alpha_is() {
	local v
	v=$(imgtool alpha "$T/resp.body")
	[ "$v" = "$1" ] && return 0
	echo "alpha channel: $v, expected $1"
	return 1
}
flattened_white() { # the transparent half flattened onto white (README)
	local v
	v=$(imgtool colour "$T/resp.body" 75 25)
	[ "$v" = white ] && return 0
	echo "transparent area became '$v' (magenta = alpha dropped, not flattened)"
	return 1
}
fm_case /alpha.png "w=100&fm=auto" "100 50 PNG" image/png
check "  alpha.png, fm=auto without WebP: PNG keeps its alpha" alpha_is yes
fm_case /alpha.png "w=100&fm=auto" "100 50 WEBP" image/webp -H 'Accept: image/webp'
check "  alpha.png, fm=auto with WebP: the WebP has alpha" alpha_is yes
fm_case /alpha.png "w=100" "100 50 PNG" image/png
check "  alpha.png, no fm: alpha kept" alpha_is yes
fm_case /alpha.png "w=100&fm=jpeg" "100 50 JPEG" image/jpeg
check "  fm=jpeg: the opaque half is still red" body_colour_at 25 25 red
check "  fm=jpeg: the transparent half flattened onto white" flattened_white

# --- GIF -> PNG, first frame ---------------------------------------------------------
fm_case /anim.gif "w=20" "20 15 PNG" image/png
check "  one frame only" test "$(gm identify "$T/resp.body" 2>/dev/null | wc -l)" = 1
check "  the first frame (red)" body_colour_at 10 7 red

# --- progressive, CMYK ------------------------------------------------------------
fm_case /progressive.jpg "w=150" "150 100 JPEG" image/jpeg
check "  progressive source: colours right" body_quads_are "red green blue yellow"
fm_case /photo13mp-progressive.jpg "w=400" "400 300 JPEG" image/jpeg
fm_case /cmyk.jpg "w=150" "150 100 JPEG" image/jpeg
check "  CMYK source: the output JPEG has 3 components (RGB)" \
	test "$(imgtool jpeg-info "$T/resp.body" | cut -d' ' -f1)" = components=3
check "  CMYK source: colours right" body_quads_are "red green blue yellow"
fm_case /cmyk.jpg "w=150&fm=png" "150 100 PNG" image/png
check "  CMYK source to PNG: colours right" body_quads_are "red green blue yellow"

# --- metadata -------------------------------------------------------------------------
no_private_bytes() {
	local s
	for s in Exif GPS imgsvc-test-camera "secret comment"; do
		if grep -qaF "$s" "$T/resp.body"; then
			echo "'$s' found in the output"
			return 1
		fi
	done
}
meta_is() {
	local v
	v=$(imgtool meta "$T/resp.body")
	case " $v " in *" $1 "*) ;; *) echo "metadata '$v' lacks $1" && return 1 ;; esac
	case $v in *Exif* | *COM* | *EXIF* | *XMP* | *tEXt* | *zTXt* | *iTXt* | *eXIf*)
		echo "metadata left in the output: $v"
		return 1 ;;
	esac
}
tget "/gps.jpg?w=150"
check "gps.jpg?w=150: 200 JPEG" body_size_near 150 100 JPEG
check "  no Exif segment, no comment (only JFIF)" meta_is APP0:JFIF
check "  no GPS, camera or comment bytes anywhere" no_private_bytes
tget "/gps.jpg?w=150&fm=webp"
check "gps.jpg?w=150&fm=webp: no EXIF or XMP chunk" sh -c \
	"v=\$($PY '$TESTS_DIR/imgtool.py' meta '$T/resp.body'); [ \"\$v\" = none ] || { echo \"\$v\"; exit 1; }"
check "  no GPS, camera or comment bytes anywhere" no_private_bytes
tget "/icc.jpg?w=150"
check "icc.jpg?w=150: the ICC profile is kept, byte for byte" \
	test "$(imgtool icc-sha "$T/resp.body")" = "$(sha256sum "$GEN/icc.icc" | cut -d' ' -f1)"

# --- response headers of a derivative ---------------------------------------------
get /photo2mp.jpg
orig_etag=$(hdr ETag)
orig_lm=$(hdr Last-Modified)
tget "/photo2mp.jpg?w=321"
check "derivative: 200" status_is 200
check "  Content-Length is the body's" header_is Content-Length "$(wc -c <"$T/resp.body")"
check "  strong, quoted ETag" header_matches ETag '^"[^"]+"$'
check "  ETag differs from the original's" test "$(hdr ETag)" != "$orig_etag"
check "  Last-Modified is the original's" header_is Last-Modified "$orig_lm"
check "  Cache-Control from the config" header_is Cache-Control "public, max-age=60"
check "  X-Cache: hit or miss" header_matches X-Cache '^(hit|miss)$'
d_len=$(hdr Content-Length)
d_etag=$(hdr ETag)
http HEAD "$BASE/photo2mp.jpg?w=321" -H "X-API-Key: $KEY_WEB"
check "HEAD of the derivative: 200" status_is 200
check "  the same Content-Length as GET" header_is Content-Length "$d_len"
check "  the same ETag as GET" header_is ETag "$d_etag"
raw_http "HEAD $MOUNT/photo2mp.jpg?w=321 HTTP/1.0" "X-API-Key: $KEY_WEB"
check "  no body (raw HTTP/1.0 exchange)" body_empty

# --- parameters that change nothing: the original -------------------------------------
for q in "fit=inside" "rotate=0" "q=82" "fit=cover" "rotate=0&fit=inside&q=82"; do
	tget "/photo2mp.jpg?$q"
	check "?$q alone: the original, byte-identical" body_same_as "$IMAGES/photo2mp.jpg"
	check "?$q alone: the original's ETag" header_is ETag "$orig_etag"
done

# --- one ETag for equivalent requests --------------------------------------------
etag_of() { tget "$1"; ETAG=$(hdr ETag); [ "$HTTP_STATUS" = 200 ] || ETAG="(status $HTTP_STATUS)"; }
same_etag() { # same_etag TITLE QUERY-A QUERY-B
	local a
	etag_of "/photo2mp.jpg?$2"
	a=$ETAG
	etag_of "/photo2mp.jpg?$3"
	check "$1" test "$a" = "$ETAG" -a "${a:0:1}" = '"'
}
same_etag "order does not matter" "w=300&h=200&fit=cover" "fit=cover&h=200&w=300"
same_etag "percent-encoded names and values" "w=300&h=200&fit=cover" "%77=300&h=%32%30%30&fit=cov%65r"
same_etag "explicit defaults (rotate=0, q=82) dropped" "w=300&h=200&fit=cover" \
	"rotate=0&w=300&q=82&h=200&fit=cover"
same_etag "fit without both w and h dropped" "w=300" "w=300&fit=cover"
same_etag "fit=inside dropped" "w=300&h=200" "w=300&h=200&fit=inside"
same_etag "q dropped for PNG output" "w=300&fm=png" "w=300&fm=png&q=50"
same_etag "fm=jpg is fm=jpeg (README)" "w=300&fm=jpeg" "w=300&fm=jpg"
etag_of "/photo2mp.jpg?w=300&h=200&fit=cover"
a=$ETAG
etag_of "/photo2mp.jpg?w=301&h=200&fit=cover"
check "a different w: a different ETag" test "$a" != "$ETAG"
etag_of "/photo2mp.jpg?w=300&h=200&fit=fill"
check "a different fit: a different ETag" test "$a" != "$ETAG"

# The max_width clamp of an original is ?w=2000 (README): same ETag, bytes.
tget "/photo12mp.jpg?w=2000"
save_response w2000
get /photo12mp.jpg
check "GET photo12mp.jpg (clamped to max_width 2000): the ETag of ?w=2000" \
	header_is ETag "$(tr -d '\r' <"$T/w2000.head" | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')"
check "  and its bytes" body_same_as "$T/w2000.body"

# Errors before any transformation.
tget "/no-such-image.jpg?w=100"
ok_json_error "a missing original with w=100: 404" 404
http GET "$BASE/photo2mp.jpg?w=100"
ok_json_error "w=100 without an API key: 403 Forbidden" 403 Forbidden

# --- 400 for each bad parameter, naming it ----------------------------------------------
bad() { # bad QUERY PARAM
	tget "/photo2mp.jpg?$1"
	check "?$1: 400 naming '$2'" json_error_names 400 "$2"
}
bad "x=1" x
bad "w=100&colour=red" colour
bad "W=100" W
bad "w=0" w
bad "w=4001" w
bad "w=abc" w
bad "w=-5" w
bad "w=1.5" w
bad "w=1e3" w
bad "w=" w
bad "w" w
bad "w=10&w=20" w
bad "w=10&w=10" w
bad "h=0" h
bad "h=99999999999999999999999" h
bad "fit=crop" fit
bad "fit=" fit
bad "w=100&fit=inside&fit=cover" fit
bad "rotate=45" rotate
bad "rotate=-90" rotate
bad "rotate=360" rotate
bad "q=0" q
bad "q=101" q
bad "q=high" q
bad "fm=gif" fm
bad "fm=jpg2" fm
bad "fm=" fm
tget "/photo2mp.jpg?w=4000"
check "w=4000 (the maximum): 200" status_is 200

# --- [server] quality: the default q -------------------------------------------------
CFG_QUALITY=30 CFG_DERIVATIVE_CACHE=no write_config "$T/q30.ini"
start_lighttpd "$T/q30.ini" 1
tget "/photo2mp.jpg?w=800"
check "quality = 30 in the config: ?w=800 is 800x500 JPEG" body_identifies_as "800 500 JPEG"
check "  and smaller than q=90 ($(wc -c <"$T/resp.body") < $(wc -c <"$T/q90.body") bytes)" \
	test "$(wc -c <"$T/resp.body")" -lt "$(wc -c <"$T/q90.body")"
a=$(hdr ETag)
tget "/photo2mp.jpg?w=800&q=30"
check "  q=30 equals the configured default: the same ETag as no q" header_is ETag "$a"
