#!/bin/bash
# t0210-derivative-cache.sh - the derivative cache in S3 (README "Derivative cache"),
# through lighttpd against moto (signature checking on): the object's
# canonical name and source-etag metadata, hits byte-identical to the miss
# and served without decoding, equivalent requests sharing one derivative,
# an overwritten or deleted original never served through its old
# derivative, HEAD of a hit, derivative_cache = no, a cache write the IAM
# policy denies, overlapping prefixes refused at start-up, and a changed
# default quality.
#
# The IAM user may do anything in S3 except s3:PutObject under denied/,
# the resized_prefix of the "denied" configuration.

. "$(dirname "$0")/lib.sh"
require_imgsvc
require_tools moto_server aws curl gm lighttpd

make_fixtures
start_moto 4 '{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"s3:*","Resource":"*"},
 {"Effect":"Deny","Action":"s3:PutObject","Resource":"arn:aws:s3:::imgsvc-test/denied/*"}]}'
dir=$T/fixtures
mkdir -p "$dir/$PREFIX/sub/dir"
cp "$IMAGES/photo2mp.jpg" "$dir/$PREFIX"
cp "$GEN/quads.png" "$dir/$PREFIX"
cp "$GEN/quads.png" "$dir/${PREFIX}changing.png"
cp "$GEN/quads.png" "$dir/${PREFIX}sub/dir/deep.png"
cp "$GEN/quads.png" "$dir/${PREFIX}with space.png"
upload_dir "$dir"
write_config "$T/imgsvc.ini"
start_lighttpd "$T/imgsvc.ini" 1

# s3_etag KEY: the S3 ETag of an object, without quotes.
s3_etag() {
	head_object "$1" && unquote "$(json_get "$T/obj.json" 'd["ETag"]')"
}
# source_etag_is KEY ETAG: the derivative's x-amz-meta-source-etag.
source_etag_is() {
	local v
	head_object "$1" || { echo "no object $1"; return 1; }
	v=$(json_get "$T/obj.json" 'd.get("Metadata", {}).get("source-etag", "(none)")')
	[ "$(unquote "$v")" = "$(unquote "$2")" ] && return 0
	echo "source-etag of $1: '$v', expected '$2'"
	return 1
}
# object_body_same_as KEY FILE
object_body_same_as() {
	aws_s3 s3 cp --only-show-errors "s3://$BUCKET/$1" "$T/object" || return 1
	cmp "$T/object" "$2" >/dev/null && return 0
	echo "s3://$BUCKET/$1 ($(wc -c <"$T/object") bytes) differs from $2 ($(wc -c <"$2") bytes)"
	return 1
}
line_lacks_img_ms() {
	case $LOG_LINE in *img_ms=*) echo "log line: $LOG_LINE" && return 1 ;; esac
	[ -n "$LOG_LINE" ] || { echo "no log line"; return 1; }
}
line_has_img_ms() {
	case $LOG_LINE in *img_ms=*) return 0 ;; esac
	echo "log line: '$LOG_LINE'"
	return 1
}

orig_etag=$(s3_etag "${PREFIX}photo2mp.jpg")
get /photo2mp.jpg
orig_lm=$(hdr Last-Modified)
WORKER=$(imgsvc_pids | head -n 1)

# --- miss, object, hit ------------------------------------------------------------
key=resized/w-400_fm-webp/photo2mp.jpg
log_mark
tget "/photo2mp.jpg?w=400&fm=webp"
save_response miss
check "first request: 200 WebP" body_identifies_as "400 250 WEBP"
check "  X-Cache: miss" header_is X-Cache miss
check "  Last-Modified: the original's" header_is Last-Modified "$orig_lm"
wait_log_line " /photo2mp.jpg "
check "  its log line has img_ms (it decoded)" line_has_img_ms
check "the derivative appears at $key" wait_object "$key"
check "  with metadata source-etag = the original's ETag" source_etag_is "$key" "$orig_etag"
check "  its bytes are the response's" object_body_same_as "$key" "$T/miss.body"

log_mark
tget "/photo2mp.jpg?w=400&fm=webp"
check "second request: X-Cache: hit" header_is X-Cache hit
check "  body identical to the miss" body_same_as "$T/miss.body"
check "  the same ETag as the miss" header_is ETag "$(tr -d '\r' <"$T/miss.head" | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')"
check "  Content-Type image/webp" header_is Content-Type image/webp
check "  Content-Length of the body" header_is Content-Length "$(wc -c <"$T/miss.body")"
check "  Cache-Control from the config" header_is Cache-Control "public, max-age=60"
check "  Last-Modified: the original's, as on the miss" header_is Last-Modified "$orig_lm"
wait_log_line " /photo2mp.jpg "
check "  served without decoding (no img_ms in its log line)" line_lacks_img_ms

http HEAD "$BASE/photo2mp.jpg?w=400&fm=webp" -H "X-API-Key: $KEY_WEB"
check "HEAD of the cached derivative: 200, X-Cache: hit" header_is X-Cache hit
check "  Content-Length of the GET's body" header_is Content-Length "$(wc -c <"$T/miss.body")"

tget "/photo2mp.jpg?q=82&fm=webp&rotate=0&w=400"
check "an equivalent request (order, explicit defaults): hit" header_is X-Cache hit
check "  body identical" body_same_as "$T/miss.body"
tget "/photo2mp.jpg?w=400&fm=auto" -H 'Accept: image/webp,*/*'
check "fm=auto choosing WebP shares the fm=webp derivative: hit" header_is X-Cache hit
check "  body identical" body_same_as "$T/miss.body"
check "  Vary: Accept" header_matches Vary '(^|, *)Accept(,|$)'

# --- canonical names --------------------------------------------------------------------
name_case() { # name_case PATH QUERY KEY
	tget "$1?$2"
	check "$1?$2: 200" status_is 200
	check "  stored as $3" wait_object "$3"
}
name_case /quads.png "h=100&fit=cover" resized/h-100/quads.png
name_case /quads.png "fm=jpeg&q=50&rotate=90&fit=cover&h=100&w=200" \
	resized/w-200_h-100_fit-cover_rotate-90_q-50_fm-jpeg/quads.png
name_case /quads.png "w=100&q=50&fm=png" resized/w-100_fm-png/quads.png
name_case /quads.png "rotate=90" resized/rotate-90/quads.png
name_case /quads.png "w=150&h=150&fit=fill&q=82" resized/w-150_h-150_fit-fill/quads.png
name_case /quads.png "w=050" resized/w-50/quads.png
name_case /photo2mp.jpg "w=50&fm=auto" resized/w-50_fm-auto/photo2mp.jpg
name_case /sub/dir/deep.png "w=10" resized/w-10/sub/dir/deep.png
name_case /with%20space.png "w=10" "resized/w-10/with space.png"

# --- an overwritten original ------------------------------------------------------------
key=resized/w-150/changing.png
tget "/changing.png?w=150"
check "changing.png (quads) ?w=150: miss" header_is X-Cache miss
e1=$(hdr ETag)
wait_object "$key" >/dev/null
tget "/changing.png?w=150"
check "  then a hit" header_is X-Cache hit
upload "$GEN/thirds.png" "${PREFIX}changing.png"
new_etag=$(s3_etag "${PREFIX}changing.png")
log_mark
tget "/changing.png?w=150"
save_response changed
check "original overwritten (thirds.png): the next request is a miss" header_is X-Cache miss
check "  with a new ETag" test "$(hdr ETag)" != "$e1"
check "  and the new image (bottom-right blue, not the old yellow)" body_colour_at 140 75 blue
wait_log_line " /changing.png "
check "  decoded afresh (img_ms in its log line)" line_has_img_ms
poll_source_etag() {
	local i
	for _ in $(seq 15); do
		source_etag_is "$key" "$new_etag" >/dev/null && return 0
		sleep 0.2
	done
	source_etag_is "$key" "$new_etag"
}
check "  the derivative is rewritten with the new source-etag" poll_source_etag
check "  and the new bytes" object_body_same_as "$key" "$T/changed.body"
tget "/changing.png?w=150"
check "  the request after: a hit" header_is X-Cache hit
check "  identical to the new miss" body_same_as "$T/changed.body"
# Back to the first image (its old ETag again): the derivative made from
# thirds.png is now the stale one.
upload "$GEN/quads.png" "${PREFIX}changing.png"
tget "/changing.png?w=150"
check "original changed back to quads.png: miss, the quads image again" body_quads_are "red green blue yellow"
check "  X-Cache: miss" header_is X-Cache miss

# A deleted original: its derivative must not outlive it.
tget "/sub/dir/deep.png?w=10"
check "deep.png?w=10 again: a hit" header_is X-Cache hit
aws_s3 s3 rm --only-show-errors "s3://$BUCKET/${PREFIX}sub/dir/deep.png"
tget "/sub/dir/deep.png?w=10"
ok_json_error "original deleted, its derivative still in S3: 404" 404

# --- a changed default quality ----------------------------------------------------------
tget "/photo2mp.jpg?w=800"
save_response q82
wait_object resized/w-800/photo2mp.jpg >/dev/null
CFG_QUALITY=30 write_config "$T/q30.ini"
start_lighttpd "$T/q30.ini" 1
tget "/photo2mp.jpg?w=800"
check "quality = 30 server, ?w=800 cached at quality 82: not served from that (miss)" \
	header_is X-Cache miss
check "  smaller than the quality-82 one ($(wc -c <"$T/resp.body") < $(wc -c <"$T/q82.body") bytes)" \
	test "$(wc -c <"$T/resp.body")" -lt "$(wc -c <"$T/q82.body")"

# --- derivative_cache = no --------------------------------------------------------------
CFG_DERIVATIVE_CACHE=no write_config "$T/nocache.ini"
start_lighttpd "$T/nocache.ini" 1
tget "/quads.png?w=77"
check "derivative_cache = no: 200" body_identifies_as "77 51 PNG"
check "  X-Cache: miss" header_is X-Cache miss
sleep 1.5
tget "/quads.png?w=77"
check "  again: X-Cache: miss" header_is X-Cache miss
sleep 1.5
check "  nothing written at resized/w-77/quads.png" object_lacks resized/w-77/quads.png
no_key_matches() {
	list_keys >"$T/all-keys" || return 1
	! grep "$1" "$T/all-keys"
}
check "  nothing written anywhere for w-77" no_key_matches w-77

# --- a cache write the IAM policy denies -----------------------------------------------
CFG_RESIZED_PREFIX=denied/ write_config "$T/denied.ini"
start_lighttpd "$T/denied.ini" 1
log_mark
tget "/quads.png?w=66"
check "PutObject denied on denied/*: the request still succeeds (200)" status_is 200
check "  with the image" body_identifies_as "66 44 PNG"
check "  the failed write is logged as a warning" log_since_mark_has '[Ww]arn.*(denied/|AccessDenied|PutObject)|(denied/|AccessDenied|PutObject).*[Ww]arn'
check "  and nothing was stored" object_lacks denied/w-66/quads.png
tget "/quads.png?w=66"
check "  the next request: 200 again" body_identifies_as "66 44 PNG"
check "  X-Cache: miss" header_is X-Cache miss

# --- overlapping prefixes refused at start-up -------------------------------------------
refused() { # refused CONFIG: imgsvc -t fails naming [s3] resized_prefix
	local rc
	"$IMGSVC" -t -c "$1" >"$T/t.out" 2>&1
	rc=$?
	[ "$rc" != 0 ] || { echo "imgsvc -t exited 0"; cat "$T/t.out"; return 1; }
	grep -qF '[s3] resized_prefix' "$T/t.out" && return 0
	echo "exit $rc, but the message does not name [s3] resized_prefix:"
	cat "$T/t.out"
	return 1
}
check "imgsvc -t accepts the test config (resized/ beside original-images/)" \
	"$IMGSVC" -t -c "$T/imgsvc.ini"
CFG_RESIZED_PREFIX=original-images/ write_config "$T/o1.ini"
check "resized_prefix = originals_prefix: refused" refused "$T/o1.ini"
CFG_RESIZED_PREFIX=original-images/resized/ write_config "$T/o2.ini"
check "resized_prefix inside originals_prefix: refused" refused "$T/o2.ini"
PREFIX=img/ CFG_RESIZED_PREFIX=im write_config "$T/o3.ini"
check "originals_prefix (img/) inside resized_prefix (im): refused" refused "$T/o3.ini"
PREFIX='' write_config "$T/o4.ini"
check "empty originals_prefix: refused" refused "$T/o4.ini"
CFG_RESIZED_PREFIX='' write_config "$T/o5.ini"
check "empty resized_prefix: refused" refused "$T/o5.ini"
PREFIX=img/ CFG_RESIZED_PREFIX=img-resized/ write_config "$T/o6.ini"
check "img/ and img-resized/ do not overlap: accepted" "$IMGSVC" -t -c "$T/o6.ini"

only_originals() { # the originals untouched: the same 4 keys (deep.png deleted by the test), photo2mp's ETag
	list_keys >"$T/all-keys" || return 1
	grep "^$PREFIX" "$T/all-keys" | sort >"$T/keys"
	printf '%s\n' "${PREFIX}changing.png" "${PREFIX}photo2mp.jpg" \
		"${PREFIX}quads.png" "${PREFIX}with space.png" |
		sort | diff - "$T/keys" || return 1
	test "$(s3_etag "${PREFIX}photo2mp.jpg")" = "$orig_etag"
}
check "nothing was written under $PREFIX" only_originals
check "the first server's worker is still the same process (pid $WORKER)" kill -0 "$WORKER"
