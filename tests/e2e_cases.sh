# e2e_cases.sh - the end-to-end cases every web-server test runs (sourced
# after lib.sh by t0100-lighttpd.sh, t0110-apache.sh, t0120-spawn-fcgi.sh).
#
#   e2e_setup            moto (signature checking on) with the fixtures
#                        uploaded by the AWS CLI, for $T/imgsvc.ini; a
#                        second moto (no checking) for $T/raw.ini
#                        (max_width = 0).
#   e2e_cases            every case against $BASE (the mount URL), with one
#                        imgsvc worker; after each error case a normal
#                        request must still be served by that same worker.
#   e2e_raw_cases        against a server started with raw.ini: originals
#                        come back byte-identical; /a%2541.png is a%41.png.
#
# What the web server does to a URL before imgsvc sees it differs
# (TESTING.md): set SERVER to lighttpd or apache before e2e_cases; the
# cases that depend on it say so in their title.

# The fixtures, besides the photos: small.png (the "still serving" probe),
# "with space.png", "nul" (what a NUL-truncated path would name), and a key
# of exactly 1024 bytes. moto 5.2.1 mis-verifies signatures of keys holding
# '%' (as it does for + = ; ( ) and non-ASCII), so a%41.png lives in a
# second moto without signature checking, behind the max_width = 0 config.
e2e_setup() {
	require_imgsvc
	require_tools moto_server aws curl gm
	make_small_png
	gm convert -size 20x10 gradient:green-yellow "$T/a41.png"
	gm convert -size 24x8 gradient:white-black "$T/space.png"
	local f dir

	# moto without checking: raw.ini (max_width = 0).
	start_moto_nocheck
	dir=$T/fixtures-raw
	mkdir -p "$dir/$PREFIX"
	cp "$T/a41.png" "$dir/${PREFIX}a%41.png"
	for f in photo12mp.jpg photo13mp-progressive.jpg; do
		cp "$IMAGES/$f" "$dir/$PREFIX$f"
	done
	upload_dir "$dir"
	CFG_MAX_WIDTH=0 write_config "$T/raw.ini"

	# moto with checking: imgsvc.ini.
	start_moto
	dir=$T/fixtures
	mkdir -p "$dir/$PREFIX"
	cp "$T/small.png" "$dir/$PREFIX"
	cp "$T/space.png" "$dir/${PREFIX}with space.png"
	cp "$T/small.png" "$dir/${PREFIX}nul"
	for f in photo2mp.jpg photo-dune.png photo12mp.jpg photo13mp-progressive.jpg; do
		cp "$IMAGES/$f" "$dir/$PREFIX$f"
	done
	# A path whose key ({originals_prefix}path) is exactly 1024 bytes, in
	# segments short enough to be file names.
	local seg200 seg
	seg200=$(printf 'k%.0s' $(seq 200))
	LONG_PATH=$seg200/$seg200/$seg200/$seg200/
	seg=$(printf 'k%.0s' $(seq $((1024 - ${#PREFIX} - ${#LONG_PATH} - 4))))
	LONG_PATH=$LONG_PATH$seg.png
	[ $((${#PREFIX} + ${#LONG_PATH})) = 1024 ] || bail_out "long key is not 1024 bytes"
	mkdir -p "$(dirname "$dir/$PREFIX$LONG_PATH")"
	cp "$T/small.png" "$dir/$PREFIX$LONG_PATH"
	upload_dir "$dir"
	# Objects a browser would run as a page if served with their stored
	# type: HTML stored as text/html under an image name, and an SVG.
	printf '<html><script>alert(1)</script></html>' >"$T/evil.html"
	printf '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>' >"$T/evil.svg"
	upload "$T/evil.html" "${PREFIX}evil.jpg" --content-type text/html
	upload "$T/evil.svg" "${PREFIX}evil.svg" --content-type image/svg+xml
	# What S3 says about two of them (Content-Type, Last-Modified).
	for f in photo2mp.jpg photo-dune.png; do
		aws_s3 s3api head-object --bucket "$BUCKET" --key "$PREFIX$f" \
			>"$T/head-$f.json" || bail_out "head-object $f failed"
	done
	write_config "$T/imgsvc.ini"
}

small_served() {
	status_is 200 && body_same_as "$T/small.png"
}

# The single worker serves small.png, and it is still $WORKER_PID.
same_worker_serves() {
	get /small.png
	small_served || return 1
	one_worker_is "$WORKER_PID"
}

after() {
	check "then a normal request is served by the same worker (after: $1)" same_worker_serves
}

# s3_field FILE FIELD: from a head-object JSON.
s3_field() {
	json_get "$T/head-$1.json" "d[\"$2\"]"
}

same_time() { # same_time HTTP-DATE OTHER-DATE
	local a b
	a=$(date -d "$1" +%s 2>/dev/null) && b=$(date -d "$2" +%s 2>/dev/null) &&
		[ "$a" = "$b" ] && return 0
	echo "'$1' is not the same time as '$2'"
	return 1
}

e2e_cases() {
	local f size etag

	http GET "$BASE/_imgsvc/health"
	check "health answers 200 without an API key" status_is 200

	# The first request fixes the worker every later case must reuse.
	get /small.png
	check "GET small.png: 200, byte-identical" small_served
	WORKER_PID=$(imgsvc_pids | head -n 1)
	check "exactly one imgsvc worker runs (pid ${WORKER_PID:-none})" \
		one_worker_is "$WORKER_PID"

	for f in photo2mp.jpg photo-dune.png; do
		size=$(wc -c <"$IMAGES/$f")
		etag=\"$(md5sum "$IMAGES/$f" | cut -d' ' -f1)\"
		get "/$f"
		check "GET $f: 200" status_is 200
		check "GET $f: body byte-identical to the original" body_same_as "$IMAGES/$f"
		check "GET $f: Content-Type as stored in S3" header_is Content-Type "$(s3_field "$f" ContentType)"
		check "GET $f: Content-Length $size" header_is Content-Length "$size"
		check "GET $f: ETag from S3 ($etag)" header_is ETag "$etag"
		check "GET $f: Last-Modified from S3" same_time "$(hdr Last-Modified)" "$(s3_field "$f" LastModified)"
		check "GET $f: Cache-Control from the config" header_is Cache-Control "public, max-age=60"
		check "GET $f: X-Content-Type-Options: nosniff" header_is X-Content-Type-Options nosniff
	done

	# Stored as HTML or SVG: served unchanged, but never with a type a
	# browser would run.
	get /evil.jpg
	check "GET evil.jpg (stored as text/html): 200, byte-identical" body_same_as "$T/evil.html"
	check "GET evil.jpg: Content-Type application/octet-stream, not text/html" \
		header_is Content-Type application/octet-stream
	check "GET evil.jpg: X-Content-Type-Options: nosniff" header_is X-Content-Type-Options nosniff
	get /evil.svg
	check "GET evil.svg (stored as image/svg+xml): byte-identical" body_same_as "$T/evil.svg"
	check "GET evil.svg: Content-Type application/octet-stream, not image/svg+xml" \
		header_is Content-Type application/octet-stream

	for f in photo12mp.jpg photo13mp-progressive.jpg; do
		get "/$f"
		check "GET $f (wider than max_width 2000): 200" status_is 200
		check "GET $f: downscaled to 2000 px wide, still JPEG" body_identifies_as "2000 1500 JPEG"
		check "GET $f: Content-Type image/jpeg" header_is Content-Type image/jpeg
		check "GET $f: Content-Length is the body's" header_is Content-Length "$(wc -c <"$T/resp.body")"
	done
	local clamped_len
	get /photo12mp.jpg
	clamped_len=$(wc -c <"$T/resp.body")
	http HEAD "$BASE/photo12mp.jpg" -H "X-API-Key: $KEY_WEB"
	check "HEAD photo12mp.jpg (downscaled): Content-Length as for GET" \
		header_is Content-Length "$clamped_len"

	f=photo2mp.jpg
	raw_http "HEAD $MOUNT/$f HTTP/1.0" "X-API-Key: $KEY_WEB"
	check "HEAD $f: no body (raw HTTP/1.0 exchange)" body_empty
	http HEAD "$BASE/$f" -H "X-API-Key: $KEY_WEB"
	check "HEAD $f: 200" status_is 200
	check "HEAD $f: Content-Length of the original" header_is Content-Length "$(wc -c <"$IMAGES/$f")"
	check "HEAD $f: the same ETag as GET" header_is ETag "\"$(md5sum "$IMAGES/$f" | cut -d' ' -f1)\""
	check "HEAD $f: Content-Type image/jpeg" header_is Content-Type image/jpeg

	get /no-such-image.jpg
	ok_json_error "GET a missing object: 404 with a JSON message" 404
	after "404"

	http GET "$BASE/small.png"
	ok_json_error "no X-API-Key: 403 {\"message\":\"Forbidden\"}" 403 Forbidden
	after "no key"
	get /small.png wrong-key-0123456789
	ok_json_error "unknown X-API-Key: 403 Forbidden" 403 Forbidden
	after "unknown key"
	get /small.png "$KEY_RETIRED"
	ok_json_error "disabled key: 403 Forbidden" 403 Forbidden
	after "disabled key"
	http GET "$BASE/small.png" -H "X-API-Key;"
	ok_json_error "empty X-API-Key: 403 Forbidden" 403 Forbidden
	get /small.png "${KEY_WEB}x"
	ok_json_error "the web key with one byte more: 403 Forbidden" 403 Forbidden
	get /small.png "${KEY_WEB%?}"
	ok_json_error "the web key with one byte less: 403 Forbidden" 403 Forbidden
	get /small.png "$KEY_SPACEY"
	check "key with spaces and non-ASCII: 200" small_served
	get /small.png "$KEY_HASHED"
	check "key configured by its SHA-256: 200" small_served

	local m
	for m in POST PUT DELETE; do
		http "$m" "$BASE/small.png" -H "X-API-Key: $KEY_WEB" --data-binary x
		check "$m: 405" status_is 405
		check "$m: Allow: GET, HEAD" header_is Allow "GET, HEAD"
		after "$m"
	done

	# Paths: what reaches imgsvc through the server.
	get /
	ok_json_error "GET $MOUNT/ (empty path): 400" 400
	after "empty path"
	get ""
	ok_json_error "GET $MOUNT (no path at all): 400" 400
	after "no path"
	get "/x/%2e%2e/small.png"
	check "GET /x/%2e%2e/small.png: the server resolves '..' first, small.png served" small_served
	get "/x/../small.png"
	check "GET /x/../small.png: the server resolves '..' first, small.png served" small_served
	get "//small.png"
	check "GET //small.png: the server merges '//' first, small.png served" small_served

	get "/a%01b.png"
	if [ "$SERVER" = lighttpd ]; then
		check "control character (%01): 400 (lighttpd refuses it itself)" status_is 400
	else
		ok_json_error "control character (%01): 400 from imgsvc" 400
	fi
	after "control character"
	get "/a%ffb.png"
	if [ "$SERVER" = lighttpd ]; then
		check "invalid UTF-8 (%ff): 400 (lighttpd refuses it itself)" status_is 400
	else
		ok_json_error "invalid UTF-8 (%ff): 400 from imgsvc" 400
	fi
	after "invalid UTF-8"
	get "/nul%00.png"
	if [ "$SERVER" = lighttpd ]; then
		check "NUL (%00): 400 (lighttpd refuses it itself)" status_is 400
	else
		check "NUL (%00): 404 (Apache refuses it itself)" status_is 404
	fi
	get "/$LONG_PATH"
	check "key of exactly 1024 bytes: 200" small_served
	get "/${LONG_PATH%.png}k.png"
	ok_json_error "key of 1025 bytes: 400" 400
	after "key over 1024 bytes"

	get "/with%20space.png"
	check "GET /with%20space.png serves 'with space.png'" body_same_as "$T/space.png"
	after "all path cases"

	# The per-request log line (stderr, kept by the server).
	check "log: a line with key name, method, path and status" \
		log_has "web.*GET.*/photo2mp.jpg.*200|200.*GET.*/photo2mp.jpg.*web"
	check "log: a 403 line for the disabled key names it" log_has "retired.*403|403.*retired"
	check "log: never the web API key" log_lacks "$KEY_WEB"
	check "log: never the disabled API key" log_lacks "$KEY_RETIRED"
	check "log: never the unknown API key" log_lacks wrong-key-0123456789
	check "log: never the S3 secret" log_lacks "$S3_SECRET"
	check "one worker served everything (pid $WORKER_PID)" one_worker_is "$WORKER_PID"
}

# Against a server running raw.ini (max_width = 0, moto without checking).
e2e_raw_cases() {
	local f
	for f in photo12mp.jpg photo13mp-progressive.jpg; do
		get "/$f"
		check "max_width = 0: GET $f byte-identical to the original" body_same_as "$IMAGES/$f"
	done
	# PATH_INFO is decoded once, by the server, never again by imgsvc.
	get "/a%2541.png"
	check "GET /a%2541.png serves the object 'a%41.png'" body_same_as "$T/a41.png"
	get "/aA.png"
	ok_json_error "GET /aA.png: 404 (no second decoding)" 404
}
