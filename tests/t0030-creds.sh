#!/bin/sh
# t0030-creds.sh - the S3 credential chain (README "S3 credentials"), through tests/credsprobe.
#
# Static sources are set up in the environment and in files under a temp
# dir; the container and IMDSv2 endpoints are tests/creds_stub.py on
# 127.0.0.1. Nothing here may reach a non-loopback address: probe() refuses
# to run a case that leaves IMDS enabled on its default 169.254.169.254, or
# points a container URI anywhere but the stub; cases with IMDS disabled
# still point its endpoint at a closed loopback port; and every case starts
# from an empty environment (env -i) with HOME in the temp dir.
#
# Environment: builddir (where tests/credsprobe is; default the source
# tree), srcdir (default this script's dir/..), PYTHON (default python3).

: "${srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${builddir:=$srcdir}"
: "${PYTHON:=python3}"
PROBE=$builddir/tests/credsprobe
STUB=$srcdir/tests/creds_stub.py

if ! command -v "$PYTHON" >/dev/null 2>&1; then
	echo "1..0 # SKIP $PYTHON not found (needed for tests/creds_stub.py)"
	exit 0
fi
if ! test -x "$PROBE"; then
	echo "Bail out! $PROBE not built (make check builds it)"
	exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/t0030.XXXXXX") || exit 1
STUB_PIDS=
cleanup() {
	for pid in $STUB_PIDS; do
		kill "$pid" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
mkdir "$TMP/home"

n=0
failed=0
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	sed 's/^/# /' "$TMP/out" 2>/dev/null
}
# check TITLE COMMAND...: one TAP line from the command's status.
check() {
	title=$1
	shift
	if "$@"; then ok "$title"; else not_ok "$title"; fi
}
has() { grep -q -- "$1" "$TMP/out"; }
hasnt() { ! grep -q -- "$1" "$TMP/out"; }
line() { sed -n "$1p" "$TMP/out"; }
sha16() { printf %s "$1" | sha256sum | cut -c1-16; }

# probe [VAR=VALUE...] [probe options]: runs credsprobe in an empty
# environment plus the given variables; output in $TMP/out, status in $rc.
probe() {
	safe=
	for a in "$@"; do
		case $a in
		AWS_EC2_METADATA_DISABLED=true | --no-imds | \
			AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:*)
			safe=1 ;;
		AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=*)
			echo "Bail out! a test would reach 169.254.170.2"
			exit 1 ;;
		AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:* | \
			AWS_CONTAINER_CREDENTIALS_FULL_URI=http://0.0.0.0:*)
			;;
		AWS_CONTAINER_CREDENTIALS_FULL_URI=* | AWS_EC2_METADATA_SERVICE_ENDPOINT=*)
			echo "Bail out! a test would leave loopback: $a"
			exit 1 ;;
		esac
	done
	if test -z "$safe"; then
		echo "Bail out! a test would leave IMDS on its default 169.254.169.254"
		exit 1
	fi
	# Belt and braces: should the code ignore the switches that disable
	# IMDS, it still only reaches a closed loopback port.
	case " $* " in
	*" AWS_EC2_METADATA_SERVICE_ENDPOINT="*) ;;
	*) set -- AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9 "$@" ;;
	esac
	n_env=0
	for a in "$@"; do
		case $a in
		*=*) n_env=$((n_env + 1)) ;;
		*) break ;;
		esac
	done
	# Move the assignments in front of the probe, for env(1).
	i=0
	for a in "$@"; do
		if test $i -eq "$n_env"; then set -- "$@" "$PROBE"; fi
		set -- "$@" "$a"
		i=$((i + 1))
	done
	if test $i -eq "$n_env"; then set -- "$@" "$PROBE"; fi
	shift $i
	env -i PATH="$PATH" HOME="$TMP/home" "$@" >"$TMP/out" 2>&1
	rc=$?
	cat "$TMP/out" >>"$TMP/all-output"
}

# start_stub [stub options]: sets PORT and STUB_LOG; stop_stub ends it.
start_stub() {
	rm -f "$TMP/port" "$TMP/stub.log"
	: >"$TMP/stub.log"
	"$PYTHON" "$STUB" --port-file "$TMP/port" --log "$TMP/stub.log" "$@" &
	stub_pid=$!
	STUB_PIDS="$STUB_PIDS $stub_pid"
	tries=0
	while ! test -s "$TMP/port"; do
		tries=$((tries + 1))
		if test $tries -gt 100 || ! kill -0 "$stub_pid" 2>/dev/null; then
			echo "Bail out! creds_stub.py did not start"
			exit 1
		fi
		sleep 0.1
	done
	PORT=$(cat "$TMP/port")
	STUB_LOG=$TMP/stub.log
}
stop_stub() {
	kill "$stub_pid" 2>/dev/null
	wait "$stub_pid" 2>/dev/null
}
requests() { grep -c -- "$1" "$STUB_LOG"; }

NO_IMDS=AWS_EC2_METADATA_DISABLED=true

# ---- static sources ----

cat >"$TMP/credentials" <<'EOF'
# shared credentials for the tests
; both comment styles

[default]
aws_access_key_id = FILEDEFAULTKEY
aws_secret_access_key = file-default-secret

  [ imgsvc ]
	aws_access_key_id=FILEPROFILEKEY   # trailing comment
AWS_Secret_Access_Key   =   file/profile+secret==
aws_session_token = file-profile-token ; another comment

[partial]
aws_access_key_id = PARTIALKEY
EOF
printf '[default]\r\naws_access_key_id = HOMEKEY\r\naws_secret_access_key = home-secret\r\n' \
	>"$TMP/home-credentials"

probe $NO_IMDS AWS_ACCESS_KEY_ID=ENVKEY AWS_SECRET_ACCESS_KEY=env-secret \
	AWS_SHARED_CREDENTIALS_FILE="$TMP/credentials" --key CFGKEY --secret cfg-secret
check "config wins over environment and shared file" \
	has "^call 1: source=config key=CFGKEY token=no expires=never secret-sha256=$(sha16 cfg-secret)$"

probe $NO_IMDS AWS_ACCESS_KEY_ID=ENVKEY AWS_SECRET_ACCESS_KEY=env-secret \
	AWS_SESSION_TOKEN=env-token AWS_SHARED_CREDENTIALS_FILE="$TMP/credentials"
check "environment wins over shared file, session token kept" \
	has "^call 1: source=environment key=ENVKEY token=yes expires=never secret-sha256=$(sha16 env-secret)$"

probe $NO_IMDS AWS_ACCESS_KEY_ID=ENVKEY
check "environment with key id but no secret: error, chain stops" \
	eval 'test $rc = 1 && has "AWS_ACCESS_KEY_ID set without AWS_SECRET_ACCESS_KEY" && has "no later source"'

probe $NO_IMDS AWS_SHARED_CREDENTIALS_FILE="$TMP/credentials" AWS_PROFILE=imgsvc
check "shared file, AWS_PROFILE, comments and whitespace" \
	has "^call 1: source=shared-file key=FILEPROFILEKEY token=yes expires=never secret-sha256=$(sha16 'file/profile+secret==')$"

probe $NO_IMDS AWS_SHARED_CREDENTIALS_FILE="$TMP/credentials"
check "shared file, default profile" \
	has "^call 1: source=shared-file key=FILEDEFAULTKEY token=no .*secret-sha256=$(sha16 file-default-secret)$"

mkdir -p "$TMP/home/.aws"
cp "$TMP/home-credentials" "$TMP/home/.aws/credentials"
probe $NO_IMDS
check "shared file at \$HOME/.aws/credentials, CRLF lines" \
	has "^call 1: source=shared-file key=HOMEKEY token=no .*secret-sha256=$(sha16 home-secret)$"
rm -r "$TMP/home/.aws"

probe $NO_IMDS AWS_SHARED_CREDENTIALS_FILE="$TMP/credentials" AWS_PROFILE=partial
check "shared file profile without a secret: error naming what lacks" \
	eval 'test $rc = 1 && has "profile \[partial\] lacks aws_secret_access_key"'

probe $NO_IMDS AWS_SHARED_CREDENTIALS_FILE="$TMP/credentials" AWS_PROFILE=nosuch
check "shared file without the profile: not found, said so" \
	eval 'test $rc = 1 && has "no profile \[nosuch\]" && has "imds: disabled"'

probe $NO_IMDS
check "nothing found: error lists every source tried" \
	eval 'test $rc = 1 && has "^call 1: error: no S3 credentials: config: not set; environment: AWS_ACCESS_KEY_ID not set; shared-file: $TMP/home/.aws/credentials: No such file or directory; container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI not set; imds: disabled by AWS_EC2_METADATA_DISABLED$"'

probe --no-imds
check "IMDS turned off by the config" \
	eval 'test $rc = 1 && has "imds: disabled in the configuration"'

probe $NO_IMDS --key CFGKEY
check "config with a key id but no secret: refused" \
	eval 'test $rc = 1 && has "^error: config sets only one of access_key_id and secret_access_key$"'

# ---- container credentials ----

start_stub --auth "Bearer sekret-auth" --container-path /v2/creds
URI=http://127.0.0.1:$PORT/v2/creds
probe $NO_IMDS AWS_CONTAINER_CREDENTIALS_FULL_URI="$URI" \
	AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer sekret-auth"
check "container: FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN" \
	has "^call 1: source=container key=ASIASTUB0001 token=yes expires=20[0-9-]*T[0-9:]*Z secret-sha256=$(sha16 stub/secret+0001)$"

printf 'Bearer sekret-auth\n' >"$TMP/token-file"
probe $NO_IMDS AWS_CONTAINER_CREDENTIALS_FULL_URI="$URI" \
	AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong \
	AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$TMP/token-file"
check "container: _TOKEN_FILE (wins over _TOKEN, newline trimmed)" \
	has "^call 1: source=container key=ASIASTUB0002 token=yes"

probe $NO_IMDS AWS_CONTAINER_CREDENTIALS_FULL_URI="$URI" AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong
check "container: wrong token gives HTTP 401, chain stops, token not shown" \
	eval 'test $rc = 1 && has "container: GET $URI: HTTP 401 (so no later source was tried)" && hasnt wrong'

probe $NO_IMDS AWS_CONTAINER_CREDENTIALS_FULL_URI="$URI" \
	AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$TMP/no-such-file"
check "container: missing token file is an error" \
	eval 'test $rc = 1 && has "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE $TMP/no-such-file: No such file"'

printf 'Bearer sekret-auth\r\nX-Injected: 1\n' >"$TMP/bad-token-file"
probe $NO_IMDS AWS_CONTAINER_CREDENTIALS_FULL_URI="$URI" \
	AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$TMP/bad-token-file"
check "container: token with CR/LF refused (no header injection)" \
	eval 'test $rc = 1 && has "authorization token holds a control character"'

before=$(requests GET)
probe $NO_IMDS AWS_CONTAINER_CREDENTIALS_FULL_URI="http://0.0.0.0:$PORT/v2/creds" \
	AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer sekret-auth"
check "container: http FULL_URI to a non-loopback host refused, not contacted" \
	eval 'test $rc = 1 && has "only https, or http to a loopback" && test "$(requests GET)" = "$before"'

probe $NO_IMDS AWS_CONTAINER_CREDENTIALS_FULL_URI="$URI" \
	AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer sekret-auth" --call 0 --invalidate --call 0
check "container: creds_invalidate fetches again" \
	eval 'test "$(line 1 | cut -d" " -f4)" != "$(line 2 | cut -d" " -f4)" && test "$(grep -c source=container "$TMP/out")" = 2'
stop_stub

start_stub --container-path /creds
URI=http://127.0.0.1:$PORT/creds
probe $NO_IMDS AWS_CONTAINER_CREDENTIALS_FULL_URI="$URI" --call 0 --call 100 --call 3400
check "container: refresh only once inside the margin (new key at +3400s of 3600s)" \
	eval 'line 1 | grep -q "key=ASIASTUB0001 " && line 2 | grep -q "key=ASIASTUB0001 " && line 3 | grep -q "key=ASIASTUB0002 " && test "$(requests "GET /creds 200")" = 2'
stop_stub

start_stub --container-path /creds --expires=-60,3600
URI=http://127.0.0.1:$PORT/creds
probe $NO_IMDS AWS_CONTAINER_CREDENTIALS_FULL_URI="$URI" --call 0 --call 1
check "container: already expired credentials refused, next call fetches again" \
	eval 'line 1 | grep -q "^call 1: error: .*credentials for ASIASTUB0001 had already expired" && line 2 | grep -q "^call 2: source=container key=ASIASTUB0002 " && test $rc = 1'
stop_stub

start_stub --container-path /creds --expires=400,-60
URI=http://127.0.0.1:$PORT/creds
probe $NO_IMDS AWS_CONTAINER_CREDENTIALS_FULL_URI="$URI" --margin 300 --call 0 --call 200 --call 210
check "container: refresh answering expired credentials keeps the valid old ones, retries later" \
	eval 'test $rc = 0 && test "$(grep -c "key=ASIASTUB0001 " "$TMP/out")" = 3 && test "$(requests "GET /creds 200")" = 2'
stop_stub

start_stub --container-path /creds --fail-after 1
URI=http://127.0.0.1:$PORT/creds
probe $NO_IMDS AWS_CONTAINER_CREDENTIALS_FULL_URI="$URI" --call 0 --call 3400 --call 4000
check "container: failed refresh keeps old credentials until they expire, then errs" \
	eval 'line 1 | grep -q "key=ASIASTUB0001 " && line 2 | grep -q "key=ASIASTUB0001 " && line 3 | grep -q "^call 3: error: refreshing S3 credentials from container failed: GET $URI: HTTP 500$"'
stop_stub

# ---- EC2 instance metadata, IMDSv2 ----

start_stub
EP=AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$PORT
probe "$EP"
check "IMDSv2 via AWS_EC2_METADATA_SERVICE_ENDPOINT" \
	has "^call 1: source=imds key=ASIASTUB0001 token=yes expires=20[0-9-]*T[0-9:]*Z secret-sha256=$(sha16 stub/secret+0001)$"
check "IMDSv2: session token fetched first, then role, then credentials" \
	eval 'test "$(cut -d" " -f1-3 "$STUB_LOG" | tr "\n" "|")" = "PUT /latest/api/token 200|GET /latest/meta-data/iam/security-credentials/ 200|GET /latest/meta-data/iam/security-credentials/imgsvc-test-role 200|"'

probe "$EP/" --call 0 --call 3400
check "IMDSv2: refresh near expiry gives a new key (endpoint with trailing slash)" \
	eval 'line 1 | grep -q "key=ASIASTUB0002 " && line 2 | grep -q "key=ASIASTUB0003 "'

: >"$STUB_LOG"
probe AWS_EC2_METADATA_DISABLED=true "$EP"
check "IMDS disabled by AWS_EC2_METADATA_DISABLED=true: not contacted" \
	eval 'test $rc = 1 && has "imds: disabled by AWS_EC2_METADATA_DISABLED" && ! test -s "$STUB_LOG"'

probe AWS_EC2_METADATA_DISABLED=TRUE "$EP"
check "AWS_EC2_METADATA_DISABLED is case-insensitive" \
	eval 'test $rc = 1 && ! test -s "$STUB_LOG"'

probe "$EP" AWS_ACCESS_KEY_ID=ENVKEY AWS_SECRET_ACCESS_KEY=env-secret
check "IMDS not asked when an earlier source answers" \
	eval 'has "source=environment" && ! test -s "$STUB_LOG"'
stop_stub

start_stub --deny-token
probe AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$PORT"
check "IMDSv2 token refused: error, no IMDSv1 fallback" \
	eval 'test $rc = 1 && has "IMDSv2 session token refused" && test "$(requests GET)" = 0'
stop_stub

# A stub that requires the token: a request without one would be a 401 in the log.
start_stub
probe AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$PORT" --call 0 --invalidate --call 0
check "IMDSv2: every metadata request carried the session token" \
	eval 'test $rc = 0 && test "$(requests " 401")" = 0 && test "$(requests PUT)" = 2'
stop_stub

# ---- secrets ----

check "no secret or authorization token ever printed" \
	eval 'test -s "$TMP/all-output" && ! grep -E "secret\\+|cfg-secret|env-secret|file-default-secret|profile\\+secret|home-secret|sekret-auth|stub-session-token|file-profile-token|env-token" "$TMP/all-output" >"$TMP/out"'

# A build configured --enable-sanitizers: no report in any probe's output
# (env -i leaves the probe the options compiled in: reports on stderr).
if "$builddir/imgsvc" -V 2>/dev/null | grep -q sanitizers; then
	check "credsprobe: no sanitizer report" \
		eval '! grep -E "(Address|Leak|UndefinedBehavior)Sanitizer|runtime error:" "$TMP/all-output" >"$TMP/out"'
fi

echo "1..$n"
test $failed -eq 0
