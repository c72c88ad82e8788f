#!/bin/bash
# make-fixtures.sh DIR - generated test images for the transformation tests
# (t0200-t0230), written into DIR with GraphicsMagick and tests/imgtool.py
# (Python standard library). Takes a few seconds; run once per test script.
#
#   quads.png             300x200, quadrants TL red, TR green (#00ff00),
#                         BL blue, BR yellow: asymmetric, so any rotation
#                         or mirror shows in the four quadrant colours
#   thirds.png            300x200, vertical thirds red, green, blue
#   orient-1..8.jpg       quads stored transformed so that applying the EXIF
#                         Orientation tag (written by imgtool.py) makes it
#                         upright again; 5-8 are stored 200x300
#   progressive.jpg       quads as a progressive JPEG (-interlace Line)
#   gps.jpg               quads with an Exif APP1 (Make, GPS IFD) and a COM
#   icc.jpg, icc.icc      quads with an ICC v2 RGB profile (imgtool.py icc)
#   cmyk.jpg              quads converted to CMYK (4-component JPEG)
#   quads.webp            quads as WebP
#   alpha.png             200x100 RGBA: left half opaque red, right half
#                         transparent (magenta hidden under alpha 0)
#   anim.gif              animated GIF 40x30, frame 1 red, frame 2 blue
#   truncated.jpg         the first 400000 bytes of photo2mp.jpg
#   bomb.png              20000x20000 greyscale PNG, < 1 MB
#   text.jpg, svg.jpg, pdf.jpg   not images, whatever the name says
#
# Each generated file is checked (dimensions, and for the orientations that
# `gm convert -auto-orient` makes them upright): a broken fixture stops here
# rather than making a test pass or fail for the wrong reason.
set -eu
out=$1
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
tool() { "$PY" "$here/imgtool.py" "$@"; }
die() { echo "make-fixtures: $*" >&2; exit 1; }
mkdir -p "$out"
cd "$out"

gm convert -size 150x100 xc:red xc:'#00ff00' +append q-top.png
gm convert -size 150x100 xc:blue xc:yellow +append q-bottom.png
gm convert q-top.png q-bottom.png -append quads.png
rm -f q-top.png q-bottom.png
[ "$(tool quads quads.png)" = "red green blue yellow" ] || die "quads.png is wrong"

# thirds.png: a centred crop (cover) and a stretch (fill) differ on it.
gm convert -size 100x200 xc:red xc:'#00ff00' xc:blue +append thirds.png
[ "$(tool colour thirds.png 50 100) $(tool colour thirds.png 250 100)" = "red blue" ] ||
	die "thirds.png is wrong"

# Stored image = the inverse of what the orientation tag asks the viewer to
# do (2, 4, 5, 7 are their own inverses; 6 = rotate 90 CW to view, so it
# is stored rotated 90 CCW; 8 the other way round).
for n in 1 2 3 4 5 6 7 8; do
	case $n in
	1) op= ;;
	2) op=-flop ;;
	3) op="-rotate 180" ;;
	4) op=-flip ;;
	5) op="-rotate 90 -flop" ;; # transpose
	6) op="-rotate 270" ;;
	7) op="-rotate 90 -flip" ;; # transverse
	8) op="-rotate 90" ;;
	esac
	# shellcheck disable=SC2086
	gm convert quads.png $op -strip -quality 95 "stored-$n.jpg"
	tool exif-orient "stored-$n.jpg" "orient-$n.jpg" "$n"
	rm -f "stored-$n.jpg"
	gm convert "orient-$n.jpg" -auto-orient "check-$n.png"
	[ "$(tool quads "check-$n.png")" = "red green blue yellow" ] ||
		die "orient-$n.jpg is not upright after gm -auto-orient: $(tool quads "check-$n.png")"
	[ "$(gm identify -format '%w %h' "check-$n.png")" = "300 200" ] ||
		die "orient-$n.jpg: upright size is not 300x200"
	rm -f "check-$n.png"
done

gm convert quads.png -strip -interlace Line -quality 90 progressive.jpg
[ "$(tool jpeg-info progressive.jpg)" = "components=3 progressive=yes" ] ||
	die "progressive.jpg is not progressive"

gm convert quads.png -strip -quality 90 plain.jpg
tool exif-gps plain.jpg gps.jpg
case $(tool meta gps.jpg) in *APP1:Exif*COM* | *COM*APP1:Exif*) ;; *) die "gps.jpg lacks Exif or COM" ;; esac
grep -q imgsvc-test-camera gps.jpg || die "gps.jpg: no Make in its Exif"

tool icc icc.icc
gm convert plain.jpg -profile icc.icc icc.jpg
[ "$(tool icc-sha icc.jpg)" = "$(sha256sum icc.icc | cut -d' ' -f1)" ] ||
	die "icc.jpg does not carry icc.icc"
rm -f plain.jpg

gm convert quads.png -strip -colorspace CMYK -quality 95 cmyk.jpg
[ "$(tool jpeg-info cmyk.jpg)" = "components=4 progressive=no" ] ||
	die "cmyk.jpg is not a 4-component JPEG"
[ "$(tool quads cmyk.jpg)" = "red green blue yellow" ] || die "cmyk.jpg colours are wrong"

gm convert quads.png -quality 90 quads.webp
[ "$(gm identify -format '%m %w %h' quads.webp)" = "WEBP 300 200" ] || die "quads.webp"

tool png-alpha alpha.png 200 100
[ "$(tool alpha alpha.png)" = yes ] || die "alpha.png has no alpha"

gm convert -delay 20 -size 40x30 xc:red xc:blue -loop 0 anim.gif
[ "$(gm identify anim.gif | wc -l)" = 2 ] || die "anim.gif does not have 2 frames"

head -c 400000 "$here/data/images/photo2mp.jpg" >truncated.jpg

tool png-bomb bomb.png 20000 20000
[ "$(wc -c <bomb.png)" -lt 1000000 ] || die "bomb.png is not small"

printf 'This is not an image, just text named .jpg\n' >text.jpg
cat >svg.jpg <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">
  <rect width="100" height="100" fill="red"/>
</svg>
EOF
# A minimal one-page PDF (the xref offsets are not exact; readers cope).
cat >pdf.jpg <<'EOF'
%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 100 100] >> endobj
trailer << /Root 1 0 R >>
%%EOF
EOF
exit 0
