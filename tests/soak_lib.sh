# soak_lib.sh - the mixed load of the soak tests, sourced after lib.sh by
# t0410-soak-mixed.sh (a long run on two lighttpd pools: moto, and fakes3.py
# for the faults) and t0180-valgrind.sh (a short one, one imgsvc under
# valgrind, fakes3.py for everything). tests/soakmix.py makes the curl
# configurations and checks the answers; this file says what is requested.
#
#   soak_fixtures DIR      the images of the mix, small so decodes are cheap:
#                          small.png (16x12), thumb.jpg (480x300), dune.png
#                          (320x200), wide.jpg (2400x150, over max_width),
#                          photo2mp.jpg (1.2 MB); SOAK_FIX=DIR
#   soak_retried_keys DIR COUNT
#                          fakes3 objects for the fail503x1 kind: fakes3
#                          fails only the first request of a path, so each
#                          request gets a key of its own, r0/thumb.jpg ...
#                          (links to DIR/rr)
#   soak_warm MAIN FAULTS  setup cases: the derivatives of the hit kinds are
#                          made and cached (through MAIN, a URL up to the
#                          mount), ETags and sizes noted; FAULTS serves
#                          thumb.jpg
#   soak_menu FILE MAIN FAULTS
#                          the menu (see soakmix.py) over both pools; the
#                          fault kinds and health go to FAULTS, the mount
#                          of an imgsvc backed by fakes3.py; SOAK_MENU=FILE
#   soak_batch FROM TO     requests FROM..TO-1 with curl --parallel
#                          (SOAK_PARALLEL clients), appended to $T/results
#   soak_check TOTAL MS    checks requests 0..TOTAL-1: the report (a line a
#                          kind) as TAP comments, the summary values
#                          (answered, missing, wrong, n5xx, POOL_requests,
#                          POOL_status) set in the shell
#   soak_count KIND        requests of KIND among the first SOAK_TOTAL

SOAK_PARALLEL=${SOAK_PARALLEL:-6}
SOAK_MIX=$TESTS_DIR/soakmix.py
soakmix() { "$PY" "$SOAK_MIX" "$@"; }

# The derivatives the hit kinds ask for, and what they must be.
SOAK_HIT_JPEG='/thumb.jpg?w=200'
SOAK_HIT_WEBP='/thumb.jpg?w=120&h=120&fit=cover&fm=webp'
SOAK_HIT_PNG='/dune.png?w=100&rotate=90'

soak_fixtures() {
	SOAK_FIX=$1
	mkdir -p "$SOAK_FIX"
	make_small_png
	cp "$T/small.png" "$SOAK_FIX/small.png"
	cp "$IMAGES/photo2mp.jpg" "$SOAK_FIX/photo2mp.jpg"
	gm convert "$IMAGES/photo2mp.jpg" -resize 480x300 -quality 85 "$SOAK_FIX/thumb.jpg" &&
		gm convert "$IMAGES/photo-dune.png" -resize 320x200 "$SOAK_FIX/dune.png" &&
		gm convert "$IMAGES/photo2mp.jpg" -crop 1920x120+0+540 -resize '2400x150!' \
			-quality 85 "$SOAK_FIX/wide.jpg" || bail_out "soak fixtures: gm convert failed"
}

soak_retried_keys() {
	local dir=$1 count=$2 i
	mkdir -p "$dir/rr"
	cp "$SOAK_FIX/thumb.jpg" "$dir/rr/thumb.jpg"
	for ((i = 0; i < count; i++)); do
		ln -sfn rr "$dir/r$i"
	done
}

# soak_until_hit URL: GET until X-Cache: hit (the cache write follows the
# miss's response).
soak_until_hit() {
	local i
	for i in $(seq 50); do
		http GET "$1" -H "X-API-Key: $KEY_WEB"
		[ "$HTTP_STATUS" = 200 ] && [ "$(hdr X-Cache)" = hit ] && return 0
		sleep 0.1
	done
	echo "$1: no cache hit after 50 requests (last: $HTTP_STATUS, X-Cache '$(hdr X-Cache)')"
	return 1
}

soak_warm() {
	local main=$1 faults=$2 v p
	for v in JPEG WEBP PNG; do
		p=SOAK_HIT_$v
		check "setup: ${!p} becomes a cache hit" soak_until_hit "$main${!p}"
		printf -v "SOAK_SIZE_$v" '%s' "$(wc -c <"$T/resp.body")"
	done
	SOAK_DERIVED_ETAG=$(hdr ETag) # of $SOAK_HIT_PNG
	# An original over max_width is served as its cached ?w=max_width.
	check "setup: wide.jpg (2400 px) becomes a cache hit" soak_until_hit "$main/wide.jpg"
	check "setup: wide.jpg is served at 2000 px" body_identifies_as "2000 125 JPEG"
	SOAK_SIZE_CLAMP=$(wc -c <"$T/resp.body")
	http GET "$main/thumb.jpg" -H "X-API-Key: $KEY_WEB"
	check "setup: thumb.jpg is served as it is" body_same_as "$SOAK_FIX/thumb.jpg"
	SOAK_ORIG_ETAG=$(hdr ETag)
	http GET "$faults/thumb.jpg" -H "X-API-Key: $KEY_WEB"
	check "setup: the faults pool serves thumb.jpg" body_same_as "$SOAK_FIX/thumb.jpg"
	[ -n "$SOAK_ORIG_ETAG" ] && [ -n "$SOAK_DERIVED_ETAG" ] ||
		bail_out "no ETag in the setup responses"
}

# The mix, per 1000 requests: 91% for the main pool (S3 that works), 9%
# for the faults pool (fakes3.py's prefixes, and health: FAULTS is always
# the mount itself, while MAIN may be a folder below it).
soak_menu() {
	local file=$1 main=$2 faults=$3
	local key="header = X-API-Key: $KEY_WEB" thumb
	thumb=$(wc -c <"$SOAK_FIX/thumb.jpg")
	SOAK_MENU=$file
	cat >"$file" <<EOF
[original-png]
weight = 60
status = 200
size = $(wc -c <"$SOAK_FIX/small.png")
url = $main/small.png
$key
[original-jpeg]
weight = 140
status = 200
size = $thumb
url = $main/thumb.jpg
$key
[original-1mb]
weight = 10
status = 200
size = $(wc -c <"$SOAK_FIX/photo2mp.jpg")
url = $main/photo2mp.jpg
$key
[head]
weight = 30
status = 200
size = 0
method = HEAD
url = $main/dune.png
$key
[clamp]
weight = 20
status = 200
size = $SOAK_SIZE_CLAMP
x-cache = hit
url = $main/wide.jpg
$key
[hit-jpeg]
weight = 90
status = 200
x-cache = hit
size = $SOAK_SIZE_JPEG
url = $main$SOAK_HIT_JPEG
$key
[hit-webp]
weight = 70
status = 200
x-cache = hit
size = $SOAK_SIZE_WEBP
url = $main$SOAK_HIT_WEBP
$key
[hit-png]
weight = 40
status = 200
x-cache = hit
size = $SOAK_SIZE_PNG
url = $main$SOAK_HIT_PNG
$key
[miss-jpeg]
weight = 90
status = 200
x-cache = miss
url = $main/thumb.jpg?w={w}&h={h}
$key
[miss-webp]
weight = 50
status = 200
x-cache = miss
url = $main/dune.png?w={w}&h={h}&fm=webp
$key
[304-original]
weight = 60
status = 304
size = 0
url = $main/thumb.jpg
$key
header = If-None-Match: $SOAK_ORIG_ETAG
[304-derived]
weight = 60
status = 304
size = 0
url = $main$SOAK_HIT_PNG
$key
header = If-None-Match: $SOAK_DERIVED_ETAG
[400-value]
weight = 30
status = 400
url = $main/thumb.jpg?w=0
$key
[400-unknown]
weight = 20
status = 400
url = $main/thumb.jpg?w=100&colour=red
$key
[403-wrong-key]
weight = 30
status = 403
url = $main/thumb.jpg
header = X-API-Key: wrong-key-{n}
[403-no-key]
weight = 20
status = 403
url = $main/thumb.jpg?w=100
[404-missing]
weight = 40
status = 404
url = $main/missing-{n}.jpg
$key
[404-derived]
weight = 20
status = 404
url = $main/missing-{n}.jpg?w=100
$key
[405]
weight = 20
status = 405
method = DELETE
url = $main/thumb.jpg
$key
[405-post]
weight = 10
status = 405
method = POST
data = x
url = $main/thumb.jpg
$key
[health]
weight = 10
server = faults
status = 200
url = $faults/_imgsvc/health
[fault-ok]
weight = 20
server = faults
status = 200
size = $thumb
url = $faults/thumb.jpg
$key
[fault-503]
weight = 20
server = faults
status = 502
url = $faults/always503/thumb.jpg
$key
[fault-denied]
weight = 20
server = faults
status = 404
url = $faults/denied/thumb.jpg
$key
[fault-hang]
weight = 5
server = faults
status = 504
url = $faults/hang/thumb.jpg
$key
[fault-retried]
weight = 15
server = faults
status = 200
size = $thumb
url = $faults/fail503x1/r{k}/thumb.jpg
$key
EOF
	soakmix counts "$file" 1000 >/dev/null || bail_out "soakmix.py: bad menu $file"
}

soak_count() {
	soakmix counts "$SOAK_MENU" "$SOAK_TOTAL" | awk -v k="$1" '$1 == k { print $2 }'
}

soak_batch() {
	soakmix config "$SOAK_MENU" "$1" "$2" >"$T/batch.cfg"
	curl --noproxy '*' --parallel --parallel-max "$SOAK_PARALLEL" -K "$T/batch.cfg" \
		>>"$T/results" 2>>"$T/curl.err"
}

soak_check() {
	local total=$1 ms=$2
	soakmix check "$SOAK_MENU" "$total" "$T/results" "$T/summary" >"$T/report"
	. "$T/summary"
	say "$total requests in $((ms / 1000)).$((ms % 1000 / 100)) s: $((total * 1000 / (ms + 1))) req/s"
	say "per kind (rate = count / whole run):"
	awk -v ms="$ms" 'NR == 1 { printf "%s %7s\n", $0, "req/s"; next }
		/^WRONG/ { print; next }
		{ printf "%s %7.1f\n", $0, $2 * 1000 / (ms + 1) }' "$T/report" | sed 's/^/#   /'
}
