#!/bin/bash
# t0120-spawn-fcgi.sh - imgsvc started by spawn-fcgi on a Unix socket.
#
# First with lighttpd in front (the shipped snippet's commented spawn-fcgi
# alternative, made live): the shared cases of e2e_cases.sh. Then straight
# to the socket with cgi-fcgi (and tests/fcgi-request.py for a NUL), for
# the inputs web servers refuse or rewrite before imgsvc sees them: '.'
# and '..' segments, '//', control characters, invalid UTF-8, over-long
# keys, other methods. After each error the same worker must still serve.

. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/e2e_cases.sh"

require_tools spawn-fcgi cgi-fcgi lighttpd

SERVER=lighttpd
e2e_setup
start_spawn_fcgi "$T/imgsvc.ini"
LIGHTTPD_EXTERNAL=$FCGI_SOCKET start_lighttpd -
e2e_cases

# --- straight to the socket -------------------------------------------------------

served() { # served NAME: small.png, 200, from $WORKER_PID
	cgi_req /small.png GET
	small_served || return 1
	one_worker_is "$WORKER_PID"
}
after_cgi() {
	check "then small.png is served by the same worker (after: $1)" served
}

cgi_req /small.png GET
check "cgi-fcgi: GET /small.png 200, byte-identical" small_served

cgi_req /small.png HEAD
check "cgi-fcgi: HEAD /small.png 200" status_is 200
check "cgi-fcgi: HEAD sends no body at all" body_empty
check "cgi-fcgi: HEAD Content-Length of the original" header_is Content-Length "$(wc -c <"$T/small.png")"

for m in POST PUT DELETE PATCH OPTIONS; do
	cgi_req /small.png "$m"
	check "cgi-fcgi: $m 405" status_is 405
	check "cgi-fcgi: $m Allow: GET, HEAD" header_is Allow "GET, HEAD"
done
after_cgi "405s"

# bad_path TITLE PATH_INFO: 400 with a JSON message, then the worker serves.
bad_path() {
	cgi_req "$2" GET
	ok_json_error "cgi-fcgi: $1: 400" 400
}

bad_path "empty PATH_INFO" ""
bad_path "PATH_INFO '/'" /
bad_path "'..' segment" /a/../small.png
bad_path "leading '..' segment" /../small.png
bad_path "trailing '..' segment" /a/..
bad_path "'.' segment" /a/./small.png
bad_path "leading '.' segment" /./small.png
bad_path "empty segment '//'" /a//small.png
bad_path "leading '//'" //small.png
after_cgi "segment rules"
bad_path "control character 0x01" $'/a\x01b.png'
bad_path "control character TAB" $'/a\tb.png'
bad_path "control character LF" $'/a\nb.png'
bad_path "control character 0x1f" $'/a\x1fb.png'
bad_path "control character DEL (0x7f)" $'/a\x7fb.png'
after_cgi "control characters"
bad_path "invalid UTF-8: lone 0xff" $'/a\xffb.png'
bad_path "invalid UTF-8: lone continuation byte 0x80" $'/a\x80b.png'
bad_path "invalid UTF-8: overlong '/' (0xc0 0xaf)" $'/a\xc0\xafb.png'
bad_path "invalid UTF-8: truncated sequence (0xe2 0x82)" $'/a\xe2\x82'
bad_path "invalid UTF-8: UTF-16 surrogate (0xed 0xa0 0x80)" $'/a\xed\xa0\x80b.png'
after_cgi "invalid UTF-8"

cgi_req "/$LONG_PATH" GET
check "cgi-fcgi: key of exactly 1024 bytes: 200" small_served
bad_path "key of 1025 bytes" "/${LONG_PATH%.png}k.png"
bad_path "key of 4096 bytes" "/$(printf 'x%.0s' $(seq 4095))"
after_cgi "long keys"

# An environment variable cannot hold a NUL; a FastCGI parameter can. But
# libfcgi hands parameters over as C strings, cut at the first NUL, with no
# length: imgsvc sees "/nul" and cannot tell. No web server passes a NUL
# (lighttpd answers 400, Apache 404: see e2e_cases.sh), so this stays a
# known gap, reported as TODO.
fcgi_req REQUEST_METHOD=GET 'PATH_INFO=/nul\x00.png' "HTTP_X_API_KEY=$KEY_WEB"
check_todo "libfcgi cuts parameters at NUL" \
	"FastCGI PATH_INFO '/nul<NUL>.png' is not served as the object 'nul'" \
	test "$HTTP_STATUS" != 200
fcgi_req REQUEST_METHOD=GET 'PATH_INFO=/small.png' "HTTP_X_API_KEY=$KEY_WEB"
check "tests/fcgi-request.py: GET /small.png 200" small_served
after_cgi "NUL"

cgi_req /small.png GET HTTP_X_API_KEY=
ok_json_error "cgi-fcgi: empty HTTP_X_API_KEY: 403" 403 Forbidden
cgi_req /_imgsvc/health GET HTTP_X_API_KEY=
check "cgi-fcgi: health without a key: 200" status_is 200

check "log lines carry the worker's pid" log_has "imgsvc\\[$WORKER_PID\\]|pid[= ]$WORKER_PID"
check "log: never the web API key" log_lacks "$KEY_WEB"

# --- max_width = 0 ----------------------------------------------------------------
start_spawn_fcgi "$T/raw.ini"
LIGHTTPD_EXTERNAL=$FCGI_SOCKET start_lighttpd -
e2e_raw_cases
# (moto 5.2.1 mis-verifies signatures of non-ASCII keys: this instance's
# moto does not check them.)
cgi_req $'/\xd1\x84\xd0\xbe\xd1\x82\xd0\xbe.png' GET
ok_json_error "cgi-fcgi: valid UTF-8 path of a missing object: 404, not 400" 404
