#!/bin/bash
# t0225-range.sh - Range requests through both shipped web server snippets
# (lighttpd, Apache mod_fcgid), against moto with signature checking on.
# imgsvc does not serve byte ranges (README "HTTP caching"): a Range header
# is ignored, as RFC 9110 allows, and the answer is the whole 200 with no
# Accept-Ranges. The snippets must keep it so: lighttpd once answered
# `Range: bytes=100-199` of an original with a 206 that promised 100 bytes
# and sent none.

. "$(dirname "$0")/lib.sh"

require_imgsvc
require_tools moto_server aws curl lighttpd apache2 gm
start_moto
upload_fixtures photo2mp.jpg photo12mp.jpg
write_config "$T/imgsvc.ini"
# Apache runs imgsvc as another user: a state file of its own.
mkdir -p "$T/state-apache" && chmod 777 "$T/state-apache"
CFG_STATE_FILE=$T/state-apache/imgsvc.state write_config "$T/apache.ini"

# whole_answer TITLE PATH RANGE [REFERENCE]: a GET with Range: RANGE is a
# 200 carrying the whole answer (byte-identical to REFERENCE when given),
# with a Content-Length to match, no Content-Range and no Accept-Ranges;
# curl read it all (exit 0).
whole_answer() {
	local title=$1 path=$2 range=$3 ref=${4:-}
	http GET "$BASE$path" -H "X-API-Key: $KEY_WEB" -H "Range: $range"
	local rc=$?
	check "$SERVER: $title: 200, not 206" status_is 200
	check "$SERVER:   curl read the whole body ($(wc -c <"$T/resp.body") bytes, $(cat "$T/curl.err"))" \
		sh -c "[ ! -s '$T/curl.err' ] && [ '$(hdr Content-Length)' = \$(wc -c <'$T/resp.body') ]"
	if [ -n "$ref" ]; then
		check "$SERVER:   byte-identical to the whole answer" cmp -s "$T/resp.body" "$ref"
	fi
	check "$SERVER:   no Content-Range, no Accept-Ranges" \
		sh -c "! grep -qiE '^(content-range|accept-ranges):' '$T/resp.head'"
	return $rc
}

range_cases() {
	# The whole answers, without Range.
	get /photo2mp.jpg
	cp "$T/resp.body" "$T/orig.whole"
	check "$SERVER: the original without Range is S3's object" body_same_as "$IMAGES/photo2mp.jpg"
	check "$SERVER:   and says no Accept-Ranges" \
		sh -c "! grep -qi '^accept-ranges:' '$T/resp.head'"
	get '/photo2mp.jpg?w=300'
	cp "$T/resp.body" "$T/deriv.whole"
	get /photo12mp.jpg
	cp "$T/resp.body" "$T/clamp.whole"

	whole_answer "original, bytes=100-199" /photo2mp.jpg bytes=100-199 "$T/orig.whole"
	whole_answer "original, bytes=0-" /photo2mp.jpg bytes=0- "$T/orig.whole"
	whole_answer "original, suffix bytes=-500" /photo2mp.jpg bytes=-500 "$T/orig.whole"
	whole_answer "original, beyond the end (not 416)" /photo2mp.jpg bytes=99999999-
	whole_answer "original, two ranges" /photo2mp.jpg bytes=0-9,20-29 "$T/orig.whole"
	whole_answer "derivative, bytes=100-199" '/photo2mp.jpg?w=300' bytes=100-199 "$T/deriv.whole"
	whole_answer "clamped original (over max_width), bytes=0-99" /photo12mp.jpg bytes=0-99 "$T/clamp.whole"
	http HEAD "$BASE/photo2mp.jpg" -H "X-API-Key: $KEY_WEB" -H "Range: bytes=0-9"
	check "$SERVER: HEAD with Range: 200, the whole length" \
		sh -c "[ '$HTTP_STATUS' = 200 ] && [ '$(hdr Content-Length)' = $(wc -c <"$IMAGES/photo2mp.jpg") ]"
	check "$SERVER: imgsvc logged each ranged GET as a 200 of the whole answer" \
		sh -c "[ \$(grep -c 'GET /photo2mp.jpg status=200 bytes=$(wc -c <"$IMAGES/photo2mp.jpg")' '$SERVER_LOG') -ge 6 ]"
}

SERVER=lighttpd
start_lighttpd "$T/imgsvc.ini" 1
range_cases
stop_bg "$LIGHTTPD_PID"

# The snippet's alternative block: imgsvc under spawn-fcgi on a socket.
SERVER=lighttpd+spawn-fcgi
start_spawn_fcgi "$T/imgsvc.ini"
LIGHTTPD_EXTERNAL=$FCGI_SOCKET start_lighttpd unused
range_cases
stop_bg "$LIGHTTPD_PID"
stop_bg "$SPAWN_PID"

SERVER=apache
start_apache "$T/apache.ini"
range_cases
stop_bg "$APACHE_PID"
