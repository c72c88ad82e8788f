#!/bin/bash
# t0220-conditional.sh - conditional requests (README "HTTP caching"): If-None-Match
# and If-Modified-Since answered 304 with the ETag and no body, for an
# original, a derivative computed now (miss) and one from the cache (hit);
# a non-matching validator gets the full 200. Through lighttpd against moto
# (signature checking on).

. "$(dirname "$0")/lib.sh"
require_imgsvc
require_tools moto_server aws curl gm lighttpd

make_fixtures
start_moto
dir=$T/fixtures
mkdir -p "$dir/$PREFIX"
cp "$IMAGES/photo2mp.jpg" "$GEN/quads.png" "$dir/$PREFIX"
upload_dir "$dir"
write_config "$T/imgsvc.ini"
start_lighttpd "$T/imgsvc.ini" 1
WORKER=$(imgsvc_pids | head -n 1)

# not_modified ETAG: 304, that ETag, no body (curl reads none after a 304;
# the raw exchange below checks the wire).
not_modified() {
	status_is 304 || return 1
	header_is ETag "$1" || return 1
	body_empty
}
# raw_not_modified PATH HEADER...: the same over a hand-written HTTP/1.0
# exchange, so a body sent after the 304's headers would be seen.
raw_not_modified() {
	local p=$1
	shift
	raw_http "GET $MOUNT$p HTTP/1.0" "X-API-Key: $KEY_WEB" "$@"
	status_is 304 || return 1
	body_empty
}
http_date() { # http_date EPOCH
	LC_ALL=C TZ=GMT date -d "@$1" '+%a, %d %b %Y %H:%M:%S GMT'
}

# --- an original ----------------------------------------------------------------------
get /photo2mp.jpg
check "original: 200" status_is 200
E=$(hdr ETag)
LM=$(hdr Last-Modified)
lm=$(date -d "$LM" +%s)
check "  has a strong ETag and a Last-Modified" test -n "$E" -a -n "$LM" -a "${E:0:1}" = '"'

tget /photo2mp.jpg -H "If-None-Match: $E"
check "original, If-None-Match = its ETag: 304 with the ETag, no body" not_modified "$E"
check "  raw HTTP/1.0: 304 and no body on the wire" raw_not_modified /photo2mp.jpg "If-None-Match: $E"
tget /photo2mp.jpg -H 'If-None-Match: *'
check "original, If-None-Match: *: 304" not_modified "$E"
tget /photo2mp.jpg -H "If-None-Match: \"0123456789abcdef0123456789abcdef\", $E"
check "original, If-None-Match listing it second: 304" not_modified "$E"
tget /photo2mp.jpg -H "If-None-Match: W/$E"
check "original, If-None-Match: W/ETag (weak comparison, RFC 9110): 304" not_modified "$E"
tget /photo2mp.jpg -H 'If-None-Match: "0123456789abcdef0123456789abcdef"'
check "original, another ETag: 200" status_is 200
check "  with the whole original" body_same_as "$IMAGES/photo2mp.jpg"
tget /photo2mp.jpg -H "If-Modified-Since: $LM"
check "original, If-Modified-Since = Last-Modified: 304" not_modified "$E"
tget /photo2mp.jpg -H "If-Modified-Since: $(http_date "$(date +%s)")"
check "original, If-Modified-Since now (after Last-Modified): 304" not_modified "$E"
# A date later than the server's clock says nothing of the client's copy:
# ignored (RFC 9110 13.1.3), so the whole original comes back.
tget /photo2mp.jpg -H "If-Modified-Since: $(http_date $(($(date +%s) + 86400)))"
check "original, If-Modified-Since a day in the future: 200" status_is 200
check "  with the whole original" body_same_as "$IMAGES/photo2mp.jpg"
tget /photo2mp.jpg -H "If-Modified-Since: $(http_date $((lm - 86400)))"
check "original, If-Modified-Since a day earlier: 200" status_is 200
check "  with the whole original" body_same_as "$IMAGES/photo2mp.jpg"
tget /photo2mp.jpg -H 'If-None-Match: "0123456789abcdef0123456789abcdef"' -H "If-Modified-Since: $LM"
check "original, a non-matching If-None-Match wins over a matching If-Modified-Since: 200" \
	status_is 200
http HEAD "$BASE/photo2mp.jpg" -H "X-API-Key: $KEY_WEB" -H "If-None-Match: $E"
check "original, HEAD with If-None-Match: 304" status_is 304

# --- a derivative: miss, then hit ---------------------------------------------------------
P="/quads.png?w=150&fm=jpeg"
KEY=resized/w-150_fm-jpeg/quads.png
tget "$P"
save_response d
check "derivative: 200, X-Cache: miss" header_is X-Cache miss
DE=$(hdr ETag)
check "  with a Last-Modified" test -n "$(hdr Last-Modified)"
DLM=$(hdr Last-Modified)
dlm=$(date -d "$DLM" +%s)
check "  cached in S3" wait_object "$KEY"

LOG_MARK=$(wc -l <"$SERVER_LOG")
tget "$P" -H "If-None-Match: $DE"
check "derivative (hit), If-None-Match = its ETag: 304, no body" not_modified "$DE"
wait_log_line 'status=304'
check "  settled by one conditional GET of the original: no cache read, no decode" \
	sh -c "printf '%s' \"\$1\" | grep -q 'cache=revalidated' && ! printf '%s' \"\$1\" | grep -q img_ms" _ "$LOG_LINE"
check "  raw HTTP/1.0: no body on the wire" raw_not_modified "$P" "If-None-Match: $DE"
tget "$P" -H 'If-None-Match: *'
check "derivative (hit), If-None-Match: *: 304" not_modified "$DE"
tget "$P" -H "If-Modified-Since: $DLM"
check "derivative (hit), If-Modified-Since = Last-Modified: 304" not_modified "$DE"
tget "$P" -H "If-Modified-Since: $(http_date $(($(date +%s) + 86400)))"
check "derivative (hit), If-Modified-Since a day in the future: 200" status_is 200
check "  the same bytes" body_same_as "$T/d.body"
tget "$P" -H "If-Modified-Since: $(http_date $((dlm - 86400)))"
check "derivative (hit), If-Modified-Since a day earlier: 200" status_is 200
check "  the same bytes" body_same_as "$T/d.body"
tget "$P" -H 'If-None-Match: "nope"'
check "derivative (hit), another ETag: 200" status_is 200
check "  X-Cache: hit" header_is X-Cache hit
check "  the same bytes" body_same_as "$T/d.body"
tget "/quads.png?fm=jpeg&w=150&q=82" -H "If-None-Match: $DE"
check "an equivalent request (other order, explicit default q): 304" not_modified "$DE"
tget "/quads.png?w=151&fm=jpeg" -H "If-None-Match: $DE"
check "another size with that ETag: 200" status_is 200
tget "/quads.png" -H "If-None-Match: $DE"
check "the original with the derivative's ETag: 200" status_is 200

# The derivative removed from the cache: the next request is a miss.
aws_s3 s3 rm --only-show-errors "s3://$BUCKET/$KEY"
tget "$P" -H "If-None-Match: $DE"
check "derivative not cached (miss), If-None-Match = its ETag: 304, no body" not_modified "$DE"
aws_s3 s3 rm --only-show-errors "s3://$BUCKET/$KEY" 2>/dev/null
tget "$P" -H "If-Modified-Since: $DLM"
check "derivative not cached (miss), If-Modified-Since = Last-Modified: 304" not_modified "$DE"
aws_s3 s3 rm --only-show-errors "s3://$BUCKET/$KEY" 2>/dev/null
tget "$P" -H 'If-None-Match: "nope"'
check "derivative not cached, another ETag: 200" status_is 200
check "  X-Cache: miss" header_is X-Cache miss
check "  the same bytes as before" body_same_as "$T/d.body"

# fm=auto: the ETag of the JPEG variant does not match the WebP one.
tget "/quads.png?w=150&fm=auto"
AE=$(hdr ETag)
check "fm=auto without WebP, a PNG without alpha: JPEG" header_is Content-Type image/jpeg
tget "/quads.png?w=150&fm=auto" -H "If-None-Match: $AE"
check "fm=auto, same Accept, If-None-Match = its ETag: 304" not_modified "$AE"
check "  with Vary: Accept on the 304" header_matches Vary '(^|, *)Accept(,|$)'
tget "/quads.png?w=150&fm=auto" -H "If-None-Match: $AE" -H 'Accept: image/webp'
check "fm=auto, that ETag but Accept: image/webp: 200 WebP, not 304" header_is Content-Type image/webp

# --- an overwritten original: the old ETag no longer matches ------------------------
upload "$GEN/thirds.png" "${PREFIX}quads.png"
tget "$P" -H "If-None-Match: $DE"
check "original overwritten: the old derivative ETag gets 200" status_is 200
check "  with the new image (right side blue)" body_colour_at 140 50 blue

check "one worker served everything (pid $WORKER)" one_worker_is "$WORKER"
