#!/bin/sh
# t0020-sigv4-botocore.sh - our SigV4 signer against botocore's S3SigV4Auth.
#
# For object keys full of characters that S3 signing gets wrong easily
# (space, + = ; ( ) % ~, UTF-8), virtual-hosted and path-style, with and
# without a session token, at a fixed time: botocore (tests/sigv4_ref.py)
# runs a real GetObject up to the point of sending, and tests/sigv4_cli
# signs the same request with our code. The encoded path, the x-amz-*
# headers and the Authorization header must be identical.

srcdir=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${builddir:-$srcdir}
cli=$builddir/tests/sigv4_cli
amz_date=20150830T123600Z
akid=AKIDEXAMPLE
secret=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
tab=$(printf '\t')

n=0
failed=0
check() { # check TITLE GOT WANT
	n=$((n + 1))
	if [ "$2" = "$3" ]; then
		echo "ok $n - $1"
	else
		failed=$((failed + 1))
		echo "not ok $n - $1"
		printf '#   got:  %s\n#   want: %s\n' "$2" "$3"
	fi
}

# Debian's python3 has no botocore; the pyenv one usually does.
python=
for p in "$PYTHON" "$HOME/.pyenv/shims/python3" python3 /usr/bin/python3; do
	[ -n "$p" ] || continue
	if "$p" -c 'import botocore' >/dev/null 2>&1; then
		python=$p
		break
	fi
done
if [ -z "$python" ]; then
	echo "ok 1 - sigv4 matches botocore # SKIP no python3 with botocore (\$PYTHON, ~/.pyenv/shims/python3, python3)"
	echo "1..1"
	exit 0
fi
if [ ! -x "$cli" ]; then
	echo "not ok 1 - $cli is built (make check builds it)"
	echo "1..1"
	exit 1
fi

get() { # get HEADER: its value in the CLI's output
	printf '%s\n' "$out" | sed -n "s/^$1: //p"
}

ref=$(mktemp) || exit 1
errs=$(mktemp) || exit 1
trap 'rm -f "$ref" "$errs"' EXIT
"$python" "$srcdir/tests/sigv4_ref.py" >"$ref" <<'KEYS'
photo with space.jpg
a+b.jpg
a=b.jpg
a;b.jpg
a(b.jpg
a)b.jpg
100%.jpg
%41%2F.jpg
~user/pic.jpg
dir/sub dir/x.jpg
фото/ünï cödé.jpg
all/ +=;()%~фото ünï.jpg
KEYS
rc=$?
check "botocore $("$python" -c 'import botocore; print(botocore.__version__)') produced reference signatures" \
	"$rc $(wc -l <"$ref" | tr -d ' ')" "0 48"

while IFS=$tab read -r style tok raw_path host url_path date sha token auth; do
	t="$style, $tok, '$raw_path'"
	[ "$token" = - ] && token=
	out=$("$cli" -r GET "$host" "$raw_path" "" us-east-1 "$akid" "$secret" "$token" "$amz_date" 2>>"$errs")
	check "$t: encoded path" "$(get path)" "$url_path"
	check "$t: x-amz-date, x-amz-content-sha256, x-amz-security-token" \
		"$(get X-Amz-Date) $(get X-Amz-Content-SHA256) $(get X-Amz-Security-Token)" \
		"$date $sha $token"
	check "$t: Authorization" "$(get Authorization)" "$auth"
done <"$ref"

# A build configured --enable-sanitizers: the CLI's stderr holds no report.
if "$builddir/imgsvc" -V 2>/dev/null | grep -q sanitizers; then
	report=$(grep -E -m 5 '(Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$errs")
	check "sigv4_cli: no sanitizer report" "$report" ""
fi

echo "1..$n"
[ "$failed" -eq 0 ]
