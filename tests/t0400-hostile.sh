#!/bin/bash
# t0400-hostile.sh - hostile requests through lighttpd and through Apache
# mod_fcgid (issue 6, part 4).
#
# Every case is one request written to the web server's socket as it is
# (tests/hostile.py: raw control bytes, NUL, bare CR or LF, invalid UTF-8,
# over-long lines), and says who must answer it and how:
#   imgsvc STATUS [MESSAGE]  imgsvc answers STATUS with its JSON body
#                            ({"message": MESSAGE} when given) and logs one
#                            request line with status=STATUS (and the
#                            message as detail);
#   server STATUS            the web server refuses it itself (its own HTML
#                            page, not JSON) and imgsvc never sees it: no
#                            request line is logged for it;
#   image FILE [W H FORMAT]  200 with FILE's bytes (or, with W H FORMAT, an
#                            image gm identifies so), logged as status=200.
# Where lighttpd and Apache differ, the case gives both (by_server). After
# every case a good request is served by the same worker process (same
# PID), so no hostile request kills or wedges it.
#
# The cases: encoded, double-encoded and overlong-UTF-8 traversal, %2f,
# backslashes and dot segments; paths and query strings just under and
# over imgsvc's limit (1024-byte object key) and over the web servers'
# own; NUL, CR, LF, DEL and other control bytes encoded and raw; invalid
# UTF-8 in path and query; CR/LF, '"', '\' and over-long values in
# X-API-Key, several X-API-Key headers (also spelled X_API_Key, which
# lighttpd hands over as HTTP_X_API_KEY too); CR/LF in parameters;
# thousands of parameters; duplicated parameters; a 64 KiB Accept; and a
# brute force of 1000 wrong keys. At the end of each server's run: no
# configured key, no presented wrong key and no S3 secret appears in
# imgsvc's log or in the web server's error log.
#
# moto checks signatures, except for the objects whose keys hold '%', '\'
# or '"', which moto 5.2.1 cannot verify (TESTING.md): those are served
# from a second moto without checking, by a second instance of each server
# ("literal" cases: the path reaches S3 exactly as the web server decoded
# it, never decoded again, never normalised).

. "$(dirname "$0")/lib.sh"

require_imgsvc
require_tools moto_server aws curl gm lighttpd apache2
[ -f /usr/lib/apache2/modules/mod_fcgid.so ] ||
	skip_all "mod_fcgid not installed (Debian package: libapache2-mod-fcgid)"

# --- fixtures ------------------------------------------------------------------

make_small_png
# One distinct image per literal key: a mix-up cannot go unnoticed.
gm convert -size 18x9 gradient:green-yellow "$T/pct.png"
gm convert -size 19x7 gradient:white-black "$T/bs.png"
gm convert -size 21x5 gradient:blue-red "$T/quote.png"
gm convert -size 22x6 gradient:yellow-blue "$T/pctu.png"

start_moto_nocheck
NOCHECK_SECRET=$S3_SECRET
upload "$T/small.png" "${PREFIX}small.png"
upload "$T/pct.png" "${PREFIX}x/%2e%2e/small.png"
upload "$T/bs.png" "${PREFIX}x\\..\\small.png"
upload "$T/quote.png" "${PREFIX}a\"b.png"
upload "$T/pctu.png" "${PREFIX}x/%u002e%u002e/small.png"
for s in lighttpd apache; do
	CFG_STATE_FILE=$T/state/literal-$s.state write_config "$T/literal-$s.ini"
done

start_moto
# A path whose object key ({originals_prefix}path) is exactly 1024 bytes.
seg200=$(printf 'k%.0s' $(seq 200))
LONG_PATH=$seg200/$seg200/$seg200/$seg200/
LONG_PATH=$LONG_PATH$(printf 'k%.0s' $(seq $((1024 - ${#PREFIX} - ${#LONG_PATH} - 4)))).png
[ $((${#PREFIX} + ${#LONG_PATH})) = 1024 ] || bail_out "long key is not 1024 bytes"
mkdir -p "$T/fixtures/$PREFIX$(dirname "$LONG_PATH")"
cp "$T/small.png" "$T/fixtures/$PREFIX"
cp "$T/small.png" "$T/fixtures/$PREFIX$LONG_PATH"
upload_dir "$T/fixtures"
# Each server its own config (and state file: Apache's workers run as
# www-data, lighttpd's as root).
for s in lighttpd apache; do
	CFG_STATE_FILE=$T/state/$s.state write_config "$T/$s.ini"
done

# Every X-API-Key value presented by this test that is not a configured
# key; each holds a marker of its own (hk<n>z), which must never be logged.
PRESENTED=$T/presented.txt
: >"$PRESENTED"
marker_n=0
new_marker() {
	marker_n=$((marker_n + 1))
	MARKER=hk${marker_n}z$RANDOM
	echo "$MARKER" >>"$PRESENTED"
}

# --- helpers -------------------------------------------------------------------

# by_server LIGHTTPD-EXPECTATION APACHE-EXPECTATION
by_server() {
	if [ "$SERVER" = lighttpd ]; then echo "$1"; else echo "$2"; fi
}

# worker_pids: imgsvc processes started for the current server's config.
worker_pids() {
	local p
	for p in $(imgsvc_pids); do
		tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxF "IMGSVC_CONFIG=$CONF" &&
			echo "$p"
	done
}

# The request lines imgsvc logged since log_mark (Apache's error log also
# holds Apache's own lines).
new_request_lines() {
	tail -n +$((LOG_MARK + 1)) "$SERVER_LOG" 2>/dev/null | grep -E 'imgsvc\[[0-9]+\] key=[^ ]* '
}

# send TARGET [HEADER...]: one raw request; response in resp.head/resp.body.
send() {
	"$PY" "$TESTS_DIR/hostile.py" raw "$HTTP_PORT" "$1" "$T/resp.raw" "${@:2}" 2>"$T/curl.err"
	split_cgi_response
}

not_json() {
	header_matches Content-Type '^application/json' >/dev/null || return 0
	echo "the answer is imgsvc's JSON, expected the web server's own page"
	show_response
	return 1
}

# parse_expect EXPECTATION: into E_WHO, E_STATUS, E_MSG (imgsvc's
# message), E_FILE and E_IDENT (image: the bytes, or "W H FORMAT").
parse_expect() {
	local -
	set -f
	set -- $1
	E_WHO=$1 E_STATUS=200 E_MSG= E_FILE= E_IDENT=
	case $E_WHO in
	image)
		E_FILE=$2
		[ $# -ge 5 ] && E_IDENT="$3 $4 $5"
		;;
	*)
		E_STATUS=$2
		shift 2
		E_MSG="$*"
		;;
	esac
}

describe() {
	case $E_WHO in
	imgsvc) echo "$E_STATUS from imgsvc, JSON${E_MSG:+ '$E_MSG'}" ;;
	server) echo "$E_STATUS from $SERVER itself" ;;
	image) echo "200 with ${E_IDENT:-$(basename "$E_FILE")}" ;;
	esac
}

# expect_answer: the last response is as parse_expect said.
expect_answer() {
	case $E_WHO in
	imgsvc) json_error "$E_STATUS" "$E_MSG" ;;
	server) status_is "$E_STATUS" && not_json ;;
	image)
		status_is 200 || return 1
		if [ -n "$E_IDENT" ]; then
			body_identifies_as "$E_IDENT"
		else
			body_same_as "$E_FILE"
		fi
		;;
	esac
}

# probe_ok EXPECTED-LINES: a good request, served and logged by the worker
# of the start (scanning /proc for workers takes seconds on a busy
# machine; the log line names the process that served the request). Waits
# (up to 5 s: a line may be written just after the response) until imgsvc
# has logged EXPECTED-LINES lines since the mark, the probe's included,
# and leaves them in $T/lines.txt (check runs this in a subshell).
probe_ok() {
	local want=$1 i n last
	http GET "$BASE/small.png" -H "X-API-Key: $KEY_WEB"
	status_is 200 && body_same_as "$T/small.png" || return 1
	for i in $(seq 50); do
		new_request_lines >"$T/lines.txt"
		n=$(grep -c . "$T/lines.txt")
		[ "$n" -ge "$want" ] && break
		sleep 0.1
	done
	last=$(tail -n 1 "$T/lines.txt")
	case $last in *"imgsvc[$WORKER] key=web GET /small.png status=200 "*) ;; *)
		echo "the last line is not the probe's, served by worker $WORKER:"
		cut -c1-300 "$T/lines.txt"
		return 1
		;;
	esac
	kill -0 "$WORKER" 2>/dev/null && return 0
	echo "worker $WORKER is gone"
	return 1
}

# expect_logged DETAIL: what imgsvc logged since the mark (lines.txt): the
# probe's line only (server), or the case's line with status=E_STATUS
# (and detail="DETAIL" when given) then the probe's.
expect_logged() {
	local detail=$1 n first
	n=$(grep -c . "$T/lines.txt")
	if [ "$E_WHO" = server ]; then
		[ "$n" = 1 ] && return 0
		echo "expected only the probe's line, imgsvc logged $n lines:"
		cut -c1-300 "$T/lines.txt"
		return 1
	fi
	if [ "$n" != 2 ]; then
		echo "expected the case's line and the probe's, imgsvc logged $n lines:"
		cut -c1-300 "$T/lines.txt"
		return 1
	fi
	first=$(head -n 1 "$T/lines.txt")
	case $first in *" status=$E_STATUS "*) ;; *)
		echo "logged: $first"
		echo "expected status=$E_STATUS"
		return 1
		;;
	esac
	[ -z "$detail" ] && return 0
	case $first in *" detail=\"$detail\""*) return 0 ;; esac
	echo "logged: $first"
	echo "expected detail=\"$detail\""
	return 1
}

# case_header NAME: a header of the case's answer (kept in case.head; the
# probe has its own).
case_header() {
	tr -d '\r' <"$T/case.head" | grep -i "^$1:" | tail -n 1 | sed 's/^[^:]*: *//'
}

case_lacks_header() {
	! grep -qi "^$1:" "$T/case.head" && return 0
	echo "the answer has a $1 header:"
	cat "$T/case.head"
	return 1
}

# hc TITLE EXPECTATION TARGET [HEADER...]: one case, three checks. Without
# an X-API-Key (or X_API_Key) header among HEADERs the web key is sent.
# The logged detail must be DETAIL when set, else imgsvc's message for a
# 400 (the two are the same there), else it is not checked.
hc() {
	local title=$1 target=$3 h key=1 detail=${DETAIL-}
	parse_expect "$2"
	shift 3
	for h in "$@"; do
		case $h in [Xx][-_][Aa][Pp][Ii][-_][Kk][Ee][Yy]:*) key=0 ;; esac
	done
	[ $key = 1 ] && set -- "$@" "X-API-Key: $KEY_WEB"
	[ -z "$detail" ] && [ "$E_STATUS" = 400 ] && detail=$E_MSG
	[ "$E_WHO" = imgsvc ] || detail=
	log_mark
	send "$target" "$@"
	check "$SERVER: $title: $(describe)" expect_answer
	save_response case
	local lines=2
	[ "$E_WHO" = server ] && lines=1
	: >"$T/lines.txt"
	check "$SERVER: $title: then the same worker serves" probe_ok $lines
	if [ "$E_WHO" = server ]; then
		check "$SERVER: $title: never reached imgsvc (nothing logged)" expect_logged ""
	else
		check "$SERVER: $title: logged by imgsvc${detail:+ ($detail)}" expect_logged "$detail"
	fi
}

# absent NEEDLE-FILE LOG...: no needle (one a line), raw or as imgsvc's log
# escapes it (\xNN), occurs in any LOG.
absent() {
	"$PY" - "$@" <<'EOF'
import sys
needles = [l for l in open(sys.argv[1], "rb").read().split(b"\n") if l]
def escaped(n):
    return b"".join(b"\\x%02X" % c if c < 0x21 or c > 0x7e or c in b'"\\' else bytes([c]) for c in n)
bad = 0
for log in sys.argv[2:]:
    try:
        text = open(log, "rb").read()
    except FileNotFoundError:
        continue
    for n in needles:
        for form in {n, escaped(n)}:
            if form in text:
                print("%s holds %r" % (log, form[:60]))
                bad = 1
sys.exit(bad)
EOF
}

# start SERVER CONF: the server, and its one worker started by a request.
start() {
	SERVER=$1 CONF=$2
	if [ "$SERVER" = lighttpd ]; then
		start_lighttpd "$CONF" 1
		SERVER_PID=$LIGHTTPD_PID
		ERROR_LOG=$(dirname "$SERVER_LOG")/error.log
	else
		start_apache "$CONF"
		SERVER_PID=$APACHE_PID
		ERROR_LOG=$SERVER_LOG
	fi
	http GET "$BASE/small.png" -H "X-API-Key: $KEY_WEB"
	WORKER=$(worker_pids)
	check "$SERVER: a first request is served by one worker (pid ${WORKER:-none})" \
		eval '[ -n "$WORKER" ] && [ "$(echo "$WORKER" | wc -l)" = 1 ] && status_is 200'
}

# --- the cases -----------------------------------------------------------------

traversal_cases() {
	hc "'..' resolved by the server inside the mount" "image $T/small.png" '/dev/x/../small.png'
	hc "'%2e%2e' resolved by the server inside the mount" "image $T/small.png" '/dev/x/%2e%2e/small.png'
	hc "'%2E%2E' (upper case)" "image $T/small.png" '/dev/x/%2E%2E/small.png'
	hc "'.%2e' (half encoded)" "image $T/small.png" '/dev/x/.%2e/small.png'
	hc "'/./' resolved by the server" "image $T/small.png" '/dev/./small.png'
	DETAIL="S3 404 NoSuchKey after 1 attempt(s)" \
		hc "'/%2e/' resolved to x/small.png, no such object" "imgsvc 404 Not found" \
		'/dev/x/%2e/small.png'
	hc "'%2e%2e' out of the mount" "server 404" '/dev/%2e%2e/small.png'
	hc "'../../etc/passwd' above the root" "$(by_server 'server 404' 'server 400')" \
		'/dev/../../etc/passwd'
	hc "'%2e%2e/%2e%2e/etc/passwd' above the root" "$(by_server 'server 404' 'server 400')" \
		'/dev/%2e%2e/%2e%2e/etc/passwd'
	# lighttpd decodes %2F into '/' and then resolves the dot segments;
	# Apache refuses %2F (AllowEncodedSlashes Off).
	hc "'x%2f..%2fsmall.png'" "$(by_server "image $T/small.png" 'server 404')" \
		'/dev/x%2f..%2fsmall.png'
	hc "'..%2f..%2fetc%2fpasswd'" "server 404" '/dev/..%2f..%2fetc%2fpasswd'
	hc "overlong UTF-8 dots '%c0%ae%c0%ae'" \
		"$(by_server 'server 400' 'imgsvc 400 Path is not valid UTF-8')" \
		'/dev/x/%c0%ae%c0%ae/small.png'
	hc "3-byte overlong dots '%e0%80%ae'" \
		"$(by_server 'server 404' 'imgsvc 400 Path is not valid UTF-8')" \
		'/dev/x/%e0%80%ae%e0%80%ae/small.png'
}

# Against the literal instance (moto without signature checking).
literal_cases() {
	hc "'%252e%252e' is the object 'x/%2e%2e/small.png', decoded once only" \
		"image $T/pct.png" '/dev/x/%252e%252e/small.png'
	hc "'%5c' backslashes are the object 'x\\..\\small.png'" \
		"image $T/bs.png" '/dev/x%5c..%5csmall.png'
	hc "raw backslashes are the object 'x\\..\\small.png'" \
		"image $T/bs.png" '/dev/x\\..\\small.png'
	hc "'%u002e' is no escape (lighttpd passes it on as it is)" \
		"$(by_server "image $T/pctu.png" 'server 400')" '/dev/x/%u002e%u002e/small.png'
	hc "'\"' in a path (logged escaped)" "image $T/quote.png" '/dev/a%22b.png'
	check "$SERVER: the '\"' is logged as \\x22" log_has ' GET /a\\x22b\.png status=200 '
}

control_cases() {
	hc "NUL (%00) in the path" "$(by_server 'server 400' 'server 404')" '/dev/small.png%00.png'
	hc "LF (%0a) in the path" "$(by_server 'server 400' 'imgsvc 400 Path contains a control character')" \
		'/dev/a%0ab.png'
	hc "CR (%0d) in the path" "$(by_server 'server 400' 'imgsvc 400 Path contains a control character')" \
		'/dev/a%0db.png'
	hc "DEL (%7f) in the path" "$(by_server 'server 400' 'imgsvc 400 Path contains a control character')" \
		'/dev/a%7fb.png'
	hc "TAB (%09) in the path" "$(by_server 'server 400' 'imgsvc 400 Path contains a control character')" \
		'/dev/a%09b.png'
	hc "C1 control NEL (%c2%85) in the path" "imgsvc 400 Path contains a control character" \
		'/dev/a%c2%85b.png'
	hc "a fake log line (%0aFAKE status=200) in the path" \
		"$(by_server 'server 400' 'imgsvc 400 Path contains a control character')" \
		'/dev/a%0aFAKE%20status=200%20.png'
	check "$SERVER: no log line starts with the injected text" \
		eval '! grep -q "^FAKE" "$SERVER_LOG"'
	hc "raw NUL in the request line" "server 400" '/dev/a\x00b.png'
	hc "raw SOH (0x01) in the request line" "server 400" '/dev/a\x01b.png'
	hc "raw DEL in the request line" "server 400" '/dev/a\x7fb.png'
	hc "raw TAB in the request line" "server 400" '/dev/a\tb.png'
	hc "raw ESC in the request line" "server 400" '/dev/a\x1bb.png'
	hc "raw CR in the request line" "server 400" '/dev/a\rb.png'
	hc "raw SOH in the query" "server 400" '/dev/small.png?w=\x01'
	hc "NUL (%00) in a parameter value" \
		"$(by_server 'server 400' "imgsvc 400 Parameter 'w' must be a whole number from 1 to 4000")" \
		'/dev/small.png?w=8%00'
	hc "NUL (%00) as a parameter name" \
		"$(by_server 'server 400' "imgsvc 400 Unknown parameter '?'")" '/dev/small.png?%00=1'
}

utf8_cases() {
	hc "invalid UTF-8 (%ff) in the path" "$(by_server 'server 400' 'imgsvc 400 Path is not valid UTF-8')" \
		'/dev/a%ffb.png'
	hc "truncated UTF-8 (%c3 then ASCII) in the path" \
		"$(by_server 'server 404' 'imgsvc 400 Path is not valid UTF-8')" '/dev/a%c3b.png'
	hc "UTF-16 surrogate (%ed%a0%80) in the path" \
		"$(by_server 'server 404' 'imgsvc 400 Path is not valid UTF-8')" '/dev/a%ed%a0%80b.png'
	hc "code point past U+10FFFF in the path" \
		"$(by_server 'server 404' 'imgsvc 400 Path is not valid UTF-8')" '/dev/%f4%90%80%80.png'
	hc "raw 0xff in the path" "$(by_server 'server 400' 'imgsvc 400 Path is not valid UTF-8')" \
		'/dev/a\xffb.png'
	hc "invalid UTF-8 (%ff) in a parameter value" \
		"$(by_server 'server 400' "imgsvc 400 Parameter 'w' must be a whole number from 1 to 4000")" \
		'/dev/small.png?w=%ff'
	hc "raw 0xff in a parameter value" \
		"$(by_server 'server 400' "imgsvc 400 Parameter 'w' must be a whole number from 1 to 4000")" \
		'/dev/small.png?w=\xff'
	hc "invalid UTF-8 in a parameter name (echoed as '?')" \
		"$(by_server 'server 400' "imgsvc 400 Unknown parameter 'w?'")" '/dev/small.png?w%ff=1'
	hc "lone %e9 in a parameter value" \
		"imgsvc 400 Parameter 'fm' must be one of jpeg, png, webp, auto" '/dev/small.png?fm=%e9'
}

length_cases() {
	local p4000 p6000 i q7000 q9000 many
	hc "object key of exactly 1024 bytes" "image $T/small.png" "/dev/$LONG_PATH"
	hc "object key of 1025 bytes" "imgsvc 400 Path too long" "/dev/${LONG_PATH%.png}k.png"
	p4000=/dev p6000=/dev
	# 15 segments: 3015 bytes, under PATH_MAX together with Apache's
	# document root wherever the test directory is (a longer path plus a
	# deep build directory crosses it, and Apache answers 404 itself).
	for i in $(seq 15); do p4000=$p4000/$seg200; done
	for i in $(seq 30); do p6000=$p6000/$seg200; done
	hc "path of 3015 bytes" "imgsvc 400 Path too long" "$p4000"
	# Apache maps the URL onto the file system first: past PATH_MAX it
	# answers 403 itself (ENAMETOOLONG).
	hc "path of 6030 bytes" "$(by_server 'imgsvc 400 Path too long' 'server 403')" "$p6000"
	hc "path of 70000 bytes" "$(by_server 'server 431' 'server 414')" \
		"/dev/$(printf 'a%.0s' $(seq 70000))"
	q7000=$(printf '1%.0s' $(seq 7000))
	hc "query of 7000 bytes" "imgsvc 400 Parameter 'w' must be a whole number from 1 to 4000" \
		"/dev/small.png?w=$q7000"
	q9000=$(printf '1%.0s' $(seq 9000))
	hc "query of 9000 bytes" "$(by_server 'server 431' 'server 414')" "/dev/small.png?w=$q9000"
	many=$(printf 'a=1&%.0s' $(seq 1500))
	hc "1500 unknown parameters" "imgsvc 400 Unknown parameter 'a'" "/dev/small.png?${many%&}"
	many=$(printf '&a=1%.0s' $(seq 5000))
	hc "5000 '&a=1' parameters (20000 bytes)" "$(by_server 'server 431' 'server 414')" \
		"/dev/small.png?w=8$many"
	many=$(printf 'w=8&%.0s' $(seq 1500))
	hc "'w=8' 1500 times" "imgsvc 400 Parameter 'w' given more than once" "/dev/small.png?${many%&}"
	hc "a parameter given twice, apart" "imgsvc 400 Parameter 'w' given more than once" \
		'/dev/small.png?w=8&h=8&w=9'
	hc "a parameter in another case" "imgsvc 400 Unknown parameter 'W'" '/dev/small.png?w=8&W=8'
	hc "an empty parameter between two" "imgsvc 400 Empty parameter" '/dev/small.png?w=8&&h=8'
	hc "'&' encoded inside a value" "imgsvc 400 Parameter 'w' must be a whole number from 1 to 4000" \
		'/dev/small.png?w=8%26h%3D8'
	local accept
	accept="Accept: text/html;q=0.9,$(printf 'x/y%.0s;q=0.1,' $(seq 700))image/webp"
	hc "Accept of $((${#accept} - 8)) bytes lets WebP through" "image - 8 6 WEBP" \
		'/dev/small.png?w=8&fm=auto' "$accept"
	check "$SERVER: ... with Vary: Accept" eval '[ "$(case_header Vary)" = Accept ]'
	accept="Accept: $(printf 'a%.0s' $(seq 65536))"
	hc "Accept of 64 KiB" "$(by_server 'server 431' 'server 400')" '/dev/small.png' "$accept"
}

key_cases() {
	local DETAIL="unknown API key"
	new_marker
	hc "bare CR inside X-API-Key" "server 400" '/dev/small.png' "X-API-Key: $MARKER\\rX"
	new_marker
	hc "bare LF inside X-API-Key (a second header smuggled)" "server 400" '/dev/small.png' \
		"X-API-Key: $MARKER\\nX-Injected: 1"
	new_marker
	hc "X-API-Key folded over two lines (obs-fold)" "imgsvc 403 Forbidden" '/dev/small.png' \
		"X-API-Key: $MARKER\\r\\n $KEY_WEB"
	new_marker
	hc "X-API-Key holding '\"' and '\\'" "imgsvc 403 Forbidden" '/dev/small.png' \
		"X-API-Key: $MARKER\"q\\\\b"
	new_marker
	hc "X-API-Key holding SOH (0x01)" "server 400" '/dev/small.png' "X-API-Key: $MARKER\\x01"
	new_marker
	hc "X-API-Key holding DEL" "server 400" '/dev/small.png' "X-API-Key: $MARKER\\x7f"
	new_marker
	hc "X-API-Key holding NUL" "server 400" '/dev/small.png' "X-API-Key: $MARKER\\x00x"
	new_marker
	hc "X-API-Key of invalid UTF-8" "imgsvc 403 Forbidden" '/dev/small.png' \
		"X-API-Key: $MARKER\\xff\\xfe"
	new_marker
	hc "X-API-Key of 7900 bytes" "imgsvc 403 Forbidden" '/dev/small.png' \
		"X-API-Key: $MARKER$(printf 'k%.0s' $(seq 7900))"
	new_marker
	hc "X-API-Key of 9000 bytes" "$(by_server 'server 431' 'server 400')" '/dev/small.png' \
		"X-API-Key: $MARKER$(printf 'k%.0s' $(seq 9000))"
	new_marker
	hc "X-API-Key of 64 KiB" "$(by_server 'server 431' 'server 400')" '/dev/small.png' \
		"X-API-Key: $MARKER$(printf 'k%.0s' $(seq 65536))"
	# Several X-API-Key headers: the servers join them ("a, b"), which is
	# no key; never one of them picked.
	hc "the web key sent twice" "imgsvc 403 Forbidden" '/dev/small.png' \
		"X-API-Key: $KEY_WEB" "X-API-Key: $KEY_WEB"
	new_marker
	hc "a wrong key, then the web key" "imgsvc 403 Forbidden" '/dev/small.png' \
		"X-API-Key: $MARKER" "X-API-Key: $KEY_WEB"
	new_marker
	hc "the web key, then a wrong key" "imgsvc 403 Forbidden" '/dev/small.png' \
		"X-API-Key: $KEY_WEB" "X-API-Key: $MARKER"
	# X_API_Key: lighttpd hands it over as HTTP_X_API_KEY, as CGI does for
	# X-API-Key; Apache drops header names with '_'. Sent beside X-API-Key,
	# lighttpd passes HTTP_X_API_KEY twice: imgsvc refuses both.
	DETAIL="no API key" hc "X_API_Key (underscores) alone" \
		"$(by_server "image $T/small.png" 'imgsvc 403 Forbidden')" \
		'/dev/small.png' "X_API_Key: $KEY_WEB"
	DETAIL=$(by_server "more than one X-API-Key header" "unknown API key")
	new_marker
	hc "X_API_Key with the web key, then X-API-Key with a wrong one" "imgsvc 403 Forbidden" \
		'/dev/small.png' "X_API_Key: $KEY_WEB" "X-API-Key: $MARKER"
	new_marker
	hc "X-API-Key with a wrong key, then X_API_Key with the web key" "imgsvc 403 Forbidden" \
		'/dev/small.png' "X-API-Key: $MARKER" "X_API_Key: $KEY_WEB"
	DETAIL=
	# Header injection through parameters: nothing of the query reaches a
	# response header, and the message echoes no control byte.
	hc "CR LF Set-Cookie in a parameter value" \
		"$(by_server 'server 400' "imgsvc 400 Parameter 'w' must be a whole number from 1 to 4000")" \
		'/dev/small.png?w=1%0d%0aSet-Cookie:%20x=1'
	check "$SERVER: ... no Set-Cookie header in the answer" case_lacks_header Set-Cookie
	hc "CR LF X-Injected as a parameter name" \
		"$(by_server 'server 400' "imgsvc 400 Unknown parameter '??X-Injected:1'")" \
		'/dev/small.png?%0d%0aX-Injected:1=1'
	check "$SERVER: ... no X-Injected header in the answer" case_lacks_header X-Injected
	hc "'\"' and '\\' as a parameter name (echoed as '?')" "imgsvc 400 Unknown parameter '??'" \
		'/dev/small.png?%22%5c=1'
}

# 1000 wrong keys in a row over kept-alive connections: every one 403,
# each logged as an unknown key, the worker unchanged.
brute_force() {
	local n=1000 i logged_before logged_after
	: >"$T/bf-keys.txt"
	for i in $(seq $n); do
		case $((i % 4)) in
		0) echo "bf${i}z-$RANDOM$RANDOM" ;;
		1) echo "${KEY_WEB%?????}bf${i}z" ;;            # shares all but 5+ chars
		2) echo "bf${i}z${KEY_WEB:$((${#i} + 3))}" ;;   # differs at the start only
		3) echo "${KEY_WEB:0:14}bf${i}z$RANDOM" ;;      # shares half
		esac
	done >"$T/bf-keys.txt"
	sed -n 's/.*\(bf[0-9]*z\).*/\1/p' "$T/bf-keys.txt" >>"$PRESENTED"
	cat "$T/bf-keys.txt" >>"$PRESENTED"
	logged_before=$(grep -c 'status=403 .*detail="unknown API key"' "$SERVER_LOG")
	"$PY" "$TESTS_DIR/hostile.py" keys "$HTTP_PORT" "$MOUNT/small.png" "$T/bf-keys.txt" \
		>"$T/bf-result.txt" 2>"$T/bf.err"
	check "$SERVER: brute force: $n wrong keys, $n answers" \
		eval '[ "$(wc -l <"$T/bf-result.txt")" = '$n' ] || { cat "$T/bf.err"; false; }'
	check "$SERVER: brute force: every one 403" \
		eval '[ "$(cut -d" " -f1 "$T/bf-result.txt" | sort -u)" = 403 ]'
	logged_after=$(grep -c 'status=403 .*detail="unknown API key"' "$SERVER_LOG")
	check "$SERVER: brute force: each logged as an unknown key" \
		eval '[ $((logged_after - logged_before)) = '$n' ] || { echo "$((logged_after - logged_before)) logged"; false; }'
	log_mark
	check "$SERVER: brute force: then the same worker serves" probe_ok 1
	say "$SERVER: brute force: median $(cut -d' ' -f2 "$T/bf-result.txt" | sort -n |
		sed -n "$((n / 2))p" | awk '{printf "%.2f", $1 / 1e6}') ms a refusal"
}

# Nothing secret in imgsvc's log or the web server's error log.
nothing_leaked() {
	{
		echo "$KEY_WEB"
		echo "$KEY_SPACEY"
		echo "$KEY_RETIRED"
		echo "$KEY_HASHED"
		echo "$S3_SECRET"
		echo "$NOCHECK_SECRET"
		cat "$PRESENTED"
	} >"$T/needles.txt"
	check "$SERVER: no configured key, presented key or S3 secret in imgsvc's log or $SERVER's error log" \
		absent "$T/needles.txt" "$SERVER_LOG" "$ERROR_LOG"
	check "$SERVER: needles are found where they are (the check can fail)" \
		eval '! absent "$T/needles.txt" "$T/needles.txt" >/dev/null'
}

for server in lighttpd apache; do
	start "$server" "$T/$server.ini"
	traversal_cases
	control_cases
	utf8_cases
	length_cases
	key_cases
	brute_force
	check "$SERVER: one worker served everything (pid $WORKER)" \
		eval '[ "$(worker_pids)" = "$WORKER" ]'
	nothing_leaked
	stop_bg "$SERVER_PID"

	start "$server" "$T/literal-$server.ini"
	literal_cases
	nothing_leaked
	stop_bg "$SERVER_PID"
done
