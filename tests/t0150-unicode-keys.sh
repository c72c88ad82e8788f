#!/bin/bash
# t0150-unicode-keys.sh - object keys with spaces, + = ; ( ) ~ % and
# non-ASCII, served byte-identically through lighttpd.
#
# moto 5.2.1 computes the expected signature wrongly for such keys (the AWS
# CLI is refused too), so this moto runs without signature checking; the
# signer itself is checked against botocore for the same keys in
# t0020-sigv4-botocore.sh. The URL is sent percent-encoded (every byte but
# unreserved ones and '/'), and for the ASCII ones also as typed.

. "$(dirname "$0")/lib.sh"

require_imgsvc
require_tools moto_server aws curl gm lighttpd

keys=(
	"with space.png"
	"plus+sign.png"
	"equals=sign.png"
	"semi;colon.png"
	"(parens).png"
	"tilde~name.png"
	"per%cent.png"
	"per%2Fcent.png"
	"all a+b=c;d(e)~f%g.png"
	"фото/ünï cödé.png"
	"日本語/写真.png"
	"emoji-😀.png"
	"quote'and!star*.png"
)

start_moto_nocheck
dir=$T/fixtures
i=0
for k in "${keys[@]}"; do
	i=$((i + 1))
	mkdir -p "$(dirname "$dir/$PREFIX$k")"
	# A different image for every key: a mix-up cannot go unnoticed.
	gm convert -size "$((10 + i))x$((5 + i))" gradient:red-blue "$dir/$PREFIX$k" ||
		bail_out "gm convert failed"
done
upload_dir "$dir"
write_config "$T/imgsvc.ini"
start_lighttpd "$T/imgsvc.ini"

encode() {
	"$PY" -c 'import sys, urllib.parse
print(urllib.parse.quote(sys.argv[1].encode("utf-8", "surrogateescape"), safe="/"))' "$1"
}

for k in "${keys[@]}"; do
	url=$(encode "$k")
	get "/$url"
	check "GET /$url is '$k', byte-identical" body_same_as "$dir/$PREFIX$k"
done

# Typed as they are: lighttpd leaves + = ; ( ) ~ ' ! * alone.
for k in "plus+sign.png" "equals=sign.png" "semi;colon.png" "(parens).png" \
	"tilde~name.png" "all a+b=c;d(e)~f%25g.png" "quote'and!star*.png"; do
	get "/${k// /%20}"
	want=${k//%25/%}
	check "GET /${k// /%20} (not encoded) is '$want'" body_same_as "$dir/$PREFIX$want"
done

get "/plus%20sign.png"
ok_json_error "'+' is not a space: GET /plus%20sign.png is 404" 404
get "/per%2541.png"
ok_json_error "GET /per%2541.png is 404 (the object is 'per%cent.png')" 404
get "/$(encode "фото/uni code.png")"
ok_json_error "a missing non-ASCII key: 404 (not 400)" 404
