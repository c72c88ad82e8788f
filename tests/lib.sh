# lib.sh - sourced by every end-to-end test (tests/tNNNN-*.sh).
#
# The tests drive the real imgsvc binary behind a real web server (lighttpd,
# Apache + mod_fcgid, spawn-fcgi) against a real S3 server (moto_server,
# SigV4 checking on), all on 127.0.0.1 and free high ports, in cgit's
# manner: numbered shell scripts, one expectation per titled case, TAP on
# stdout, diagnostics on stderr.
#
# What lives here:
#   TAP          check / check_todo / ok / fail / skip / skip_all /
#                bail_out; the plan "1..N" is printed when the script exits.
#   processes    start_bg runs a command in its own process group; the exit
#                trap stops every group it started (TERM, then KILL), any
#                imgsvc left over from this test (found by this test's temp
#                directory in its command line or environment), and removes
#                the temp directory.
#   sanitizers   with a build configured --enable-sanitizers (`imgsvc -V`
#                says so; `sanitized` tests it) the exit trap lets every
#                process finish its leak check, then fails the script (one
#                "not ok") when any log of this test holds an ASan, LSan or
#                UBSan report; programs run directly write theirs to
#                $SAN_DIR (exported ASAN_OPTIONS log_path).
#   S3           start_moto (signature checking on, IAM user + key + policy
#                + bucket with the 4 free calls), start_moto_nocheck, aws_s3
#                (the AWS CLI signed with the created key), upload_fixtures;
#                start_fakes3 and fake_mark / fake_since / fake_saw (what
#                tests/fakes3.py was asked since a mark).
#   imgsvc       write_config (an INI for this test), the web-server
#                snippets rendered from lighttpd-conf/ and apache-conf/
#                (only their variable lines rewritten), start_lighttpd,
#                start_apache, start_spawn_fcgi; imgsvc_pids, one_worker_is,
#                rss_kb, log_has / log_lacks (the request log).
#   HTTP         http METHOD URL [curl args] and get PATH [KEY]: status in
#                $HTTP_STATUS, headers in $T/resp.head, body in
#                $T/resp.body; raw_http (hand-written HTTP/1.0), cgi_req
#                (cgi-fcgi) and fcgi_req (tests/fcgi-request.py, any byte)
#                fill the same; predicates status_is, header_is,
#                body_same_as, body_empty, json_error, body_identifies_as
#                (gm identify -format '%w %h %m').
#
# Nothing here ever contacts an address other than 127.0.0.1: proxies are
# unset, the EC2 metadata service is disabled for the AWS CLI and imgsvc.

TEST_NAME=$(basename "$0" .sh)
# Quiet "pipefail"-style surprises: tests check exit statuses explicitly.
set +e
set -u

: "${srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
srcdir=$(cd "$srcdir" && pwd)
: "${builddir:=$srcdir}"
builddir=$(cd "$builddir" && pwd)
IMGSVC=${IMGSVC:-$builddir/imgsvc}
TESTS_DIR=$srcdir/tests
IMAGES=$TESTS_DIR/data/images
BUCKET=imgsvc-test
PREFIX=original-images/
MOUNT=/dev

# --- environment hygiene: loopback only ------------------------------------
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy \
	ftp_proxy FTP_PROXY
export NO_PROXY='*' no_proxy='*'
export AWS_EC2_METADATA_DISABLED=true
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE \
	AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI \
	AWS_ENDPOINT_URL AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE IMGSVC_CONFIG
export LC_ALL=C.UTF-8

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

T=$(mktemp -d "${TMPDIR:-/tmp}/imgsvc-$TEST_NAME.XXXXXX") || exit 1
# Apache runs imgsvc as www-data: the directory must be readable by it.
chmod 755 "$T"
# Nothing exported may mention $T: cleanup finds this test's leftovers by it.
: >"$T/aws-config"

# --- sanitizers -----------------------------------------------------------------
# A build configured with --enable-sanitizers says so in `imgsvc -V`.
# Reports of imgsvc under a web server go to its stderr (the logs in $T);
# every sanitized program that inherits this environment (the check
# programs, imgsvc -t, imgsvc-usage, workers of lighttpd and spawn-fcgi)
# writes them to $SAN_DIR instead, whatever the test does with its stderr.
# The directory is outside $T, so the exported options do not mention $T.
SANITIZED=0
SAN_DIR=
SAN_REPORT='(Address|Leak|UndefinedBehavior|Thread)Sanitizer|runtime error:'
if "$IMGSVC" -V 2>/dev/null | grep -q sanitizers; then
	SANITIZED=1
	SAN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/imgsvc-san-$TEST_NAME.XXXXXX") || exit 1
	chmod 1777 "$SAN_DIR"
	export ASAN_OPTIONS="log_path=$SAN_DIR/report:log_exe_name=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
	export UBSAN_OPTIONS="log_path=$SAN_DIR/report:log_exe_name=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
	export TSAN_OPTIONS="log_path=$SAN_DIR/report:log_exe_name=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
fi
# sanitized: the binaries under test run under ASan and UBSan.
sanitized() { [ "$SANITIZED" = 1 ]; }
export AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=

# --- TAP ---------------------------------------------------------------------
test_count=0
test_failures=0
BG_PIDS=()

say() { printf '# %s\n' "$*"; }
# Diagnostics go to stderr (run-all.sh keeps them in tests/logs/).
diag() { printf '# %s\n' "$@" >&2; }

ok() {
	test_count=$((test_count + 1))
	printf 'ok %d - %s\n' "$test_count" "$1"
}

fail() {
	test_count=$((test_count + 1))
	test_failures=$((test_failures + 1))
	printf 'not ok %d - %s\n' "$test_count" "$1"
	shift
	[ $# -gt 0 ] && printf '#   %s\n' "$@"
	printf '# FAILED %d - %s\n' "$test_count" "$*" >&2
	return 0
}

skip() {
	test_count=$((test_count + 1))
	printf 'ok %d - %s # SKIP %s\n' "$test_count" "$1" "$2"
}

# check TITLE COMMAND...: one case; passes when COMMAND exits 0. What the
# command prints is shown (as TAP comments) only when it fails.
check() {
	local title=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$title"
	else
		fail "$title"
		[ -n "$out" ] && printf '%s\n' "$out" | head -n 20 | sed 's/^/#   /'
		printf '%s\n' "$out" | head -n 40 | sed 's/^/#   /' >&2
	fi
}

# check_todo REASON TITLE COMMAND...: a known gap. TAP "# TODO": a failure
# is reported but not counted as one (run-all.sh counts it as skipped).
check_todo() {
	local why=$1 title=$2 out
	shift 2
	test_count=$((test_count + 1))
	if out=$("$@" 2>&1); then
		printf 'ok %d - %s # TODO %s\n' "$test_count" "$title" "$why"
	else
		printf 'not ok %d - %s # TODO %s\n' "$test_count" "$title" "$why"
		[ -n "$out" ] && printf '%s\n' "$out" | head -n 20 | sed 's/^/#   /'
	fi
}

# The whole script is skipped (prerequisite missing).
skip_all() {
	printf '1..0 # SKIP %s\n' "$1"
	test_count=-1
	exit 0
}

bail_out() {
	printf 'Bail out! %s\n' "$*"
	diag "bail out: $*"
	exit 1
}

# --- processes -----------------------------------------------------------------

# start_bg NAME COMMAND...: run in the background in a process group of its
# own, stdout/stderr in $T/NAME.log; sets BG_PID.
start_bg() {
	local name=$1
	shift
	setsid "$@" >>"$T/$name.log" 2>&1 </dev/null &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

# stop_bg PID: TERM its process group, wait up to 5 s, then KILL. A
# sanitized build: up to 30 s, for the whole group (the workers' leak check).
stop_bg() {
	local pid=$1 i
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
	for i in $(seq "$(sanitized && echo 300 || echo 50)"); do
		kill -0 "$pid" 2>/dev/null && { sleep 0.1; continue; }
		sanitized && kill -0 -- "-$pid" 2>/dev/null && { sleep 0.1; continue; }
		break
	done
	kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	local new=() p
	for p in "${BG_PIDS[@]}"; do [ "$p" = "$pid" ] || new+=("$p"); done
	BG_PIDS=("${new[@]+"${new[@]}"}")
	return 0
}

# PIDs of processes started for this test that mention its temp dir (e.g.
# imgsvc spawned by a web server with a config file in $T).
own_pids() {
	local d p
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[ "$p" = "$$" ] && continue
		{ tr '\0' '\n' <"$d/cmdline" | grep -qF "$T" ||
			tr '\0' '\n' <"$d/environ" | grep -qF "$T"; } 2>/dev/null &&
			echo "$p"
	done
}

# PIDs of running imgsvc processes of this test.
imgsvc_pids() {
	local p exe
	for p in $(own_pids); do
		exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
		case $exe in */imgsvc | */lt-imgsvc) echo "$p" ;; esac
	done
}

cleanup() {
	local rc=$? i p
	for ((i = ${#BG_PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM -- "-${BG_PIDS[i]}" 2>/dev/null
	done
	# A sanitized imgsvc checks for leaks as it exits, which takes a
	# moment on a loaded machine: wait for the workers as well (also
	# those outside the groups, e.g. Apache's), and longer.
	local workers
	workers=$(sanitized && imgsvc_pids)
	for p in $workers; do kill -TERM "$p" 2>/dev/null; done
	for i in $(seq "$(sanitized && echo 300 || echo 50)"); do
		local alive=0
		for p in "${BG_PIDS[@]+"${BG_PIDS[@]}"}"; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		for p in $workers; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for p in "${BG_PIDS[@]+"${BG_PIDS[@]}"}"; do
		kill -KILL -- "-$p" 2>/dev/null
	done
	for p in $(own_pids); do
		# Only our children: never this shell's ancestors.
		kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	if [ "$test_count" -ge 0 ] && sanitized; then
		sanitizer_check
	fi
	if [ "$test_count" -ge 0 ]; then
		printf '1..%d\n' "$test_count"
	fi
	if [ "$test_failures" -gt 0 ] || [ "${IMGSVC_TEST_KEEP:-}" = 1 ]; then
		# Keep the logs of a failed script next to run-all's log.
		for p in "$T"/*.log "$T"/*/*.log; do
			[ -f "$p" ] || continue
			printf '\n# ---- %s (last 60 lines)\n' "${p#$T/}" >&2
			tail -n 60 "$p" >&2
		done
	fi
	if [ "${IMGSVC_TEST_KEEP:-}" = 1 ]; then
		diag "kept $T"
		[ -n "$SAN_DIR" ] && diag "kept $SAN_DIR"
	else
		rm -rf "$T"
		[ -n "$SAN_DIR" ] && rm -rf "$SAN_DIR"
	fi
	[ "$test_failures" -gt 0 ] && rc=1
	exit $rc
}
# sanitizer_check: one case, failed when a file of this test (its temp
# directory, $SAN_DIR) holds a sanitizer report; the reports go to stderr.
sanitizer_check() {
	local files f
	files=$(grep -rlIE "$SAN_REPORT" "$T" "$SAN_DIR" 2>/dev/null)
	if [ -z "$files" ]; then
		ok "no sanitizer report in the logs of $TEST_NAME"
		return 0
	fi
	fail "no sanitizer report in the logs of $TEST_NAME" $files
	for f in $files; do
		printf '\n# ---- sanitizer report in %s\n' "$f" >&2
		grep -E -A 60 "$SAN_REPORT" "$f" | head -n 120 >&2
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
	"$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS]: a plain TCP connect, no HTTP request (moto counts
# every request against its free ones).
wait_port() {
	local port=$1 limit=${2:-20} i
	for i in $(seq $((limit * 10))); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

wait_socket() {
	local path=$1 i
	for i in $(seq 100); do
		[ -S "$path" ] && return 0
		sleep 0.1
	done
	return 1
}

# --- S3 (moto) -------------------------------------------------------------------

find_moto() {
	MOTO_SERVER=$(command -v moto_server 2>/dev/null)
	[ -n "$MOTO_SERVER" ] || MOTO_SERVER=$HOME/.pyenv/shims/moto_server
	[ -x "$MOTO_SERVER" ] || return 1
}

find_aws() {
	if [ -x /usr/bin/aws ]; then
		AWS=/usr/bin/aws
	else
		AWS=$(command -v aws 2>/dev/null)
		[ -n "$AWS" ] || AWS=$HOME/.pyenv/shims/aws
	fi
	[ -x "$AWS" ] || return 1
}

require_tools() {
	local t
	for t in "$@"; do
		case $t in
		moto_server) find_moto || skip_all "moto_server not found (pip install 'moto[server]')" ;;
		aws) find_aws || skip_all "aws CLI not found (Debian package: awscli)" ;;
		*) command -v "$t" >/dev/null 2>&1 || skip_all "$t not found" ;;
		esac
	done
}

require_imgsvc() {
	[ -x "$IMGSVC" ] || bail_out "no imgsvc binary at $IMGSVC (run make first)"
}

# aws_raw ARGS...: the AWS CLI against moto with whatever credentials the
# environment holds.
aws_raw() {
	AWS_CONFIG_FILE=$T/aws-config AWS_SHARED_CREDENTIALS_FILE=$T/aws-credentials \
		"$AWS" --endpoint-url "$MOTO_URL" --no-cli-pager "$@"
}

# aws_s3 ARGS...: the AWS CLI signed with the IAM user's key.
aws_s3() {
	AWS_ACCESS_KEY_ID=$S3_KEY_ID AWS_SECRET_ACCESS_KEY=$S3_SECRET \
		AWS_SESSION_TOKEN=${S3_TOKEN:-} aws_raw "$@"
}

json_get() { # json_get FILE python-expression-on-d
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2"
}

# start_moto [FREE_CALLS [POLICY_JSON]]: moto with SigV4 checking on. The
# free calls create the IAM user, its access key, its inline policy and the
# bucket (TESTING.md); a caller asking for more free calls makes the extra
# ones itself right after (e.g. IAM roles for STS). Exports S3_KEY_ID and
# S3_SECRET, sets MOTO_PORT, MOTO_URL.
start_moto() {
	local free=${1:-4}
	local policy=${2:-'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'}
	find_moto || bail_out "moto_server not found"
	find_aws || bail_out "aws CLI not found"
	MOTO_PORT=$(free_port)
	MOTO_URL=http://127.0.0.1:$MOTO_PORT
	start_bg moto env INITIAL_NO_AUTH_ACTION_COUNT="$free" \
		"$MOTO_SERVER" -H 127.0.0.1 -p "$MOTO_PORT"
	MOTO_PID=$BG_PID
	wait_port "$MOTO_PORT" 30 || bail_out "moto_server did not listen on $MOTO_PORT"
	# Any credentials do for the free calls; they must not be looked up.
	export AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap
	aws_raw iam create-user --user-name imgsvc >"$T/iam-user.json" ||
		bail_out "iam create-user failed"
	aws_raw iam create-access-key --user-name imgsvc >"$T/iam-key.json" ||
		bail_out "iam create-access-key failed"
	aws_raw iam put-user-policy --user-name imgsvc --policy-name s3 \
		--policy-document "$policy" || bail_out "iam put-user-policy failed"
	S3_KEY_ID=$(json_get "$T/iam-key.json" 'd["AccessKey"]["AccessKeyId"]')
	S3_SECRET=$(json_get "$T/iam-key.json" 'd["AccessKey"]["SecretAccessKey"]')
	S3_TOKEN=
	export S3_KEY_ID S3_SECRET
	if [ "$free" -le 4 ]; then
		moto_create_bucket
	fi
}

moto_create_bucket() {
	aws_raw s3api create-bucket --bucket "$BUCKET" >/dev/null ||
		bail_out "s3api create-bucket failed"
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
}

# start_moto_nocheck: moto accepting any signature (for object keys moto
# 5.2.1 verifies wrongly: + = ; ( ) and non-ASCII).
start_moto_nocheck() {
	find_moto || bail_out "moto_server not found"
	find_aws || bail_out "aws CLI not found"
	MOTO_PORT=$(free_port)
	MOTO_URL=http://127.0.0.1:$MOTO_PORT
	start_bg moto env -u INITIAL_NO_AUTH_ACTION_COUNT \
		"$MOTO_SERVER" -H 127.0.0.1 -p "$MOTO_PORT"
	MOTO_PID=$BG_PID
	wait_port "$MOTO_PORT" 30 || bail_out "moto_server did not listen on $MOTO_PORT"
	S3_KEY_ID=AKIDNOCHECK0000000000 S3_SECRET=nocheck-secret S3_TOKEN=
	export S3_KEY_ID S3_SECRET
	aws_s3 s3api create-bucket --bucket "$BUCKET" >/dev/null ||
		bail_out "s3api create-bucket failed"
}

# A small PNG made once per test: the "does the worker still serve" probe.
make_small_png() {
	[ -f "$T/small.png" ] || gm convert -size 16x12 gradient:red-blue "$T/small.png"
}

# upload_fixtures [NAME...]: photos from tests/data/images (default: all)
# plus small.png, under $PREFIX, in one signed AWS CLI call.
upload_fixtures() {
	local f dir=$T/fixtures
	mkdir -p "$dir/$PREFIX"
	make_small_png
	cp "$T/small.png" "$dir/$PREFIX"
	if [ $# -eq 0 ]; then
		set -- photo2mp.jpg photo-dune.png photo12mp.jpg photo13mp-progressive.jpg
	fi
	for f in "$@"; do
		cp "$IMAGES/$f" "$dir/$PREFIX$f"
	done
	upload_dir "$dir"
}

# upload_dir DIR: every file below DIR, keyed by its path relative to DIR.
upload_dir() {
	aws_s3 s3 cp --recursive --only-show-errors "$1" "s3://$BUCKET/" ||
		bail_out "upload of fixtures failed"
}

# upload FILE KEY [extra s3 cp args]
upload() {
	aws_s3 s3 cp --only-show-errors "$1" "s3://$BUCKET/$2" "${@:3}" ||
		bail_out "upload of $2 failed"
}

# --- imgsvc configuration --------------------------------------------------------

# API keys the configs define. The "spacey" one holds spaces and non-ASCII.
KEY_WEB=test-key-web-0123456789abcdef
KEY_SPACEY='key with spaces ünïcødé ключ'
KEY_RETIRED=test-key-retired-0123456789
KEY_HASHED=test-key-hashed-0123456789

# write_config FILE: an imgsvc.ini for this test. Settings come from
# variables (defaults in brackets): CFG_MAX_WIDTH [2000], CFG_ENDPOINT
# [$MOTO_URL], CFG_KEY_ID/CFG_SECRET/CFG_TOKEN [the IAM user's key; set
# CFG_KEY_ID=- to leave credentials to the environment], CFG_TIMEOUT_MS
# [10000], CFG_CONNECT_TIMEOUT_MS [2000], CFG_RETRIES [2], CFG_IMDS [no:
# never ask a metadata endpoint unless a test points one at loopback]. These are
# written only when the variable is set (even to ""), else the key is left
# out and imgsvc's default applies: CFG_MAX_OUTPUT_DIMENSION, CFG_QUALITY,
# CFG_FORMATS, CFG_DERIVATIVE_CACHE, CFG_MAX_SOURCE_BYTES,
# CFG_MAX_SOURCE_PIXELS ([server]), CFG_RESIZED_PREFIX ([s3]), CFG_BACKEND,
# CFG_REDIS_HOST, CFG_REDIS_PORT, CFG_REDIS_PASSWORD, CFG_REDIS_TIMEOUT_MS,
# CFG_REDIS_FAILURE ([limits]). CFG_STATE_FILE (default $T/state/...) names
# the state file; CFG_EXTRA is appended as it is ([plan ...], [metrics],
# more keys).
write_config() {
	local file=$1 hashed
	local key_id=${CFG_KEY_ID:-$S3_KEY_ID} secret=${CFG_SECRET:-$S3_SECRET}
	local token=${CFG_TOKEN:-${S3_TOKEN:-}}
	if [ "$key_id" = - ]; then key_id='' secret='' token=''; fi
	hashed=$(printf '%s' "$KEY_HASHED" | sha256sum | cut -d' ' -f1)
	# The shared state file: workers under Apache run as www-data.
	mkdir -p "$T/state"
	chmod 777 "$T/state"
	cat >"$file" <<EOF
; imgsvc configuration written by tests/lib.sh for $TEST_NAME
[server]
max_width = ${CFG_MAX_WIDTH:-2000}
cache_control = "public, max-age=60"
$(cfg_line max_output_dimension CFG_MAX_OUTPUT_DIMENSION)
$(cfg_line quality CFG_QUALITY)
$(cfg_line formats CFG_FORMATS)
$(cfg_line derivative_cache CFG_DERIVATIVE_CACHE)
$(cfg_line max_source_bytes CFG_MAX_SOURCE_BYTES)
$(cfg_line max_source_pixels CFG_MAX_SOURCE_PIXELS)
$(cfg_line heap_log_every CFG_HEAP_LOG_EVERY)
$(cfg_line threads CFG_THREADS)
$(cfg_line image_workers CFG_IMAGE_WORKERS)

[s3]
bucket = $BUCKET
region = us-east-1
endpoint = ${CFG_ENDPOINT:-$MOTO_URL}
addressing = path
originals_prefix = $PREFIX
$(cfg_line resized_prefix CFG_RESIZED_PREFIX)
access_key_id = $key_id
secret_access_key = $secret
session_token = $token
imds = ${CFG_IMDS:-no}
connect_timeout_ms = ${CFG_CONNECT_TIMEOUT_MS:-2000}
timeout_ms = ${CFG_TIMEOUT_MS:-10000}
retries = ${CFG_RETRIES:-2}
verify_tls = yes

[limits]
state_file = ${CFG_STATE_FILE:-$T/state/imgsvc.state}
$(cfg_line backend CFG_BACKEND)
$(cfg_line redis_host CFG_REDIS_HOST)
$(cfg_line redis_port CFG_REDIS_PORT)
$(cfg_line redis_password CFG_REDIS_PASSWORD)
$(cfg_line redis_timeout_ms CFG_REDIS_TIMEOUT_MS)
$(cfg_line redis_failure CFG_REDIS_FAILURE)

[key web]
key = "$KEY_WEB"
enabled = yes

[key spacey]
key = "$KEY_SPACEY"

[key retired]
key = "$KEY_RETIRED"
enabled = no

[key hashed]
sha256 = $hashed

${CFG_EXTRA:-; CFG_EXTRA: none}
EOF
	chmod 644 "$file"
}

# cfg_line KEY VARIABLE: "KEY = value" when VARIABLE is set (quoted when
# it holds a space), else a comment line saying the default applies.
cfg_line() {
	if [ -n "${!2+set}" ]; then
		case ${!2} in
		*' '*) printf '%s = "%s"' "$1" "${!2}" ;;
		*) printf '%s = %s' "$1" "${!2}" ;;
		esac
	else
		printf '; %s: default' "$1"
	fi
}

# --- web servers -------------------------------------------------------------------

# render_lighttpd_snippet OUT CONF SOCKET MAX_PROCS: the shipped snippet with
# its four variables set for this test.
render_lighttpd_snippet() {
	local out=$1 conf=$2 socket=$3 procs=$4
	sed -e "s|^var.imgsvc_binary = .*|var.imgsvc_binary = \"$IMGSVC\"|" \
		-e "s|^var.imgsvc_config = .*|var.imgsvc_config = \"$conf\"|" \
		-e "s|^var.imgsvc_mount = .*|var.imgsvc_mount = \"$MOUNT\"|" \
		-e "s|^var.imgsvc_socket = .*|var.imgsvc_socket = \"$socket\"|" \
		-e "s|^var.imgsvc_max_procs = .*|var.imgsvc_max_procs = $procs|" \
		"$srcdir/lighttpd-conf/imgsvc.conf" >"$out"
	local n
	n=$(grep -cE "^var.imgsvc_(binary|config|mount|socket|max_procs) = " "$out")
	[ "$n" = 5 ] || bail_out "lighttpd-conf/imgsvc.conf: expected 5 var.imgsvc_* lines, found $n"
}

# The snippet's commented spawn-fcgi alternative, made live: the bin-path
# block is dropped and the "#fastcgi.server" block uncommented, pointing at
# ADDRESS (a socket path).
render_lighttpd_snippet_external() {
	local out=$1 socket=$2
	render_lighttpd_snippet "$out.tmp" /unused "$socket" 1
	awk -v sock="$socket" '
		/^\$HTTP\["url"\]/ { drop = 1 }
		drop { if ($0 ~ /^}/) drop = 0; next }
		/^#\$HTTP\["url"\]/ { live = 1 }
		live { sub(/^#/, ""); gsub(/\/run\/imgsvc\/imgsvc\.socket/, sock); print; if ($0 ~ /^}/) live = 0; next }
		{ print }
	' "$out.tmp" >"$out"
	rm -f "$out.tmp"
	grep -q "\"socket\" *=> *\"$socket\"" "$out" ||
		bail_out "lighttpd-conf/imgsvc.conf: no spawn-fcgi alternative block found"
}

# start_lighttpd CONF [MAX_PROCS]: lighttpd on a free port (LIGHTTPD_PORT
# when set) running imgsvc
# through the shipped snippet (bin-path). With LIGHTTPD_EXTERNAL=SOCKET it
# talks to an imgsvc started elsewhere instead. Sets HTTP_PORT, BASE (URL of
# the mount), LIGHTTPD_PID, SERVER_LOG (where imgsvc's stderr lands).
lighttpd_n=0
start_lighttpd() {
	local conf=$1 procs=${2:-1}
	lighttpd_n=$((lighttpd_n + 1))
	local dir=$T/lighttpd$lighttpd_n
	mkdir -p "$dir/www"
	HTTP_PORT=${LIGHTTPD_PORT:-$(free_port)}
	if [ -n "${LIGHTTPD_EXTERNAL:-}" ]; then
		render_lighttpd_snippet_external "$dir/imgsvc.conf" "$LIGHTTPD_EXTERNAL"
	else
		render_lighttpd_snippet "$dir/imgsvc.conf" "$conf" "$dir/imgsvc.socket" "$procs"
	fi
	cat >"$dir/lighttpd.conf" <<EOF
server.document-root = "$dir/www"
server.bind = "127.0.0.1"
server.port = $HTTP_PORT
server.errorlog = "$dir/error.log"
server.upload-dirs = ( "$dir" )
server.max-request-size = 1024
# The FastCGI backends' stderr (imgsvc's request log) goes here.
server.breakagelog = "$dir/imgsvc.log"
include "$dir/imgsvc.conf"
EOF
	# imgsvc's stderr: here, unless it runs outside lighttpd.
	[ -n "${LIGHTTPD_EXTERNAL:-}" ] || SERVER_LOG=$dir/imgsvc.log
	start_bg "lighttpd$lighttpd_n" lighttpd -D -f "$dir/lighttpd.conf"
	LIGHTTPD_PID=$BG_PID
	wait_port "$HTTP_PORT" 20 || bail_out "lighttpd did not start (see $dir)"
	BASE=http://127.0.0.1:$HTTP_PORT$MOUNT
}

# render_apache_snippet OUT CONF
render_apache_snippet() {
	local out=$1 conf=$2
	sed -e "s|^Define IMGSVC_BINARY .*|Define IMGSVC_BINARY $IMGSVC|" \
		-e "s|^Define IMGSVC_CONFIG .*|Define IMGSVC_CONFIG $conf|" \
		-e "s|^Define IMGSVC_MOUNT .*|Define IMGSVC_MOUNT $MOUNT|" \
		"$srcdir/apache-conf/imgsvc.conf" >"$out"
	local n
	n=$(grep -cE "^Define IMGSVC_(BINARY|CONFIG|MOUNT) " "$out")
	[ "$n" = 3 ] || bail_out "apache-conf/imgsvc.conf: expected 3 Define IMGSVC_* lines, found $n"
}

# start_apache CONF: Apache (prefork, one process: -X) with mod_fcgid, at
# most one imgsvc process, the shipped snippet included. Sets HTTP_PORT,
# BASE, APACHE_PID, SERVER_LOG.
apache_n=0
start_apache() {
	local conf=$1 mods=/usr/lib/apache2/modules m
	apache_n=$((apache_n + 1))
	local dir=$T/apache$apache_n
	mkdir -p "$dir/htdocs" "$dir/run" "$dir/fcgid"
	HTTP_PORT=$(free_port)
	render_apache_snippet "$dir/imgsvc.conf" "$conf"
	{
		echo "ServerRoot \"$dir\""
		echo "ServerName 127.0.0.1"
		echo "Listen 127.0.0.1:$HTTP_PORT"
		echo "PidFile \"$dir/run/httpd.pid\""
		echo "DefaultRuntimeDir \"$dir/run\""
		echo "Mutex file:$dir/run default"
		echo "ErrorLog \"$dir/error.log\""
		echo "LogLevel warn"
		echo "LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b\" common"
		echo "CustomLog \"$dir/access.log\" common"
		for m in mpm_prefork authz_core alias mime env fcgid; do
			echo "LoadModule ${m}_module $mods/mod_$m.so"
		done
		if [ "$(id -u)" = 0 ]; then
			# Apache will not run children as root: imgsvc runs as
			# www-data, which must reach the binary and the config.
			echo "User www-data"
			echo "Group www-data"
			chown www-data:www-data "$dir/fcgid"
		fi
		echo "DocumentRoot \"$dir/htdocs\""
		echo "TypesConfig /dev/null"
		echo "FcgidIPCDir \"$dir/fcgid\""
		echo "FcgidProcessTableFile \"$dir/run/fcgid_shm\""
		echo "FcgidMaxProcesses 1"
		echo "Include \"$dir/imgsvc.conf\""
	} >"$dir/httpd.conf"
	SERVER_LOG=$dir/error.log
	apache2 -t -f "$dir/httpd.conf" >"$dir/configtest.log" 2>&1 ||
		bail_out "apache2 -t failed: $(cat "$dir/configtest.log")"
	start_bg "apache$apache_n" apache2 -X -f "$dir/httpd.conf"
	APACHE_PID=$BG_PID
	wait_port "$HTTP_PORT" 20 || bail_out "apache2 did not start (see $dir)"
	BASE=http://127.0.0.1:$HTTP_PORT$MOUNT
}

# start_spawn_fcgi CONF: imgsvc started by spawn-fcgi on a Unix socket (no
# web server). Sets FCGI_SOCKET, SPAWN_PID, SERVER_LOG.
spawn_n=0
start_spawn_fcgi() {
	local conf=$1
	spawn_n=$((spawn_n + 1))
	FCGI_SOCKET=$T/spawn$spawn_n.socket
	SERVER_LOG=$T/spawn$spawn_n.log
	start_bg "spawn$spawn_n" spawn-fcgi -n -s "$FCGI_SOCKET" -M 0600 -- \
		"$IMGSVC" -c "$conf"
	SPAWN_PID=$BG_PID
	wait_socket "$FCGI_SOCKET" || bail_out "spawn-fcgi did not create $FCGI_SOCKET"
}

# --- HTTP --------------------------------------------------------------------------

# http METHOD URL [curl args...]: one request; sets HTTP_STATUS, writes
# $T/resp.head and $T/resp.body. The URL is sent as given (--path-as-is).
http() {
	local method=$1 url=$2
	shift 2
	local m=(-X "$method")
	[ "$method" = HEAD ] && m=(--head)
	: >"$T/resp.head"
	: >"$T/resp.body"
	HTTP_STATUS=$(curl -sS --noproxy '*' --path-as-is --max-time 60 "${m[@]}" \
		-D "$T/resp.head" -o "$T/resp.body" -w '%{http_code}' "$@" "$url" \
		2>"$T/curl.err")
	[ -n "$HTTP_STATUS" ] || HTTP_STATUS=000
}

# raw_http REQUEST-LINE [HEADER...]: one HTTP/1.0 request written by hand to
# 127.0.0.1:$HTTP_PORT, everything the server sends kept (curl would not
# read a body after a HEAD response). Response parsed as for http.
raw_http() {
	local line=$1 h req
	shift
	req="$line\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
	for h in "$@"; do req="$req$h\r\n"; done
	(
		exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT" || exit 1
		printf "$req\r\n" >&3
		timeout 30 cat <&3
	) >"$T/resp.raw" 2>"$T/curl.err"
	split_cgi_response
}

# get PATH [KEY]: GET $BASE/PATH with an API key (default: the web key).
get() {
	http GET "$BASE$1" -H "X-API-Key: ${2-$KEY_WEB}"
}

# hdr NAME: a header of the last response (last occurrence, CR stripped).
hdr() {
	tr -d '\r' <"$T/resp.head" | grep -i "^$1:" | tail -n 1 | sed 's/^[^:]*: *//'
}

status_is() {
	[ "$HTTP_STATUS" = "$1" ] && return 0
	echo "status $HTTP_STATUS, expected $1"
	show_response
	return 1
}

show_response() {
	echo "--- headers:"
	tr -d '\r' <"$T/resp.head" | head -n 15
	echo "--- body (first 300 bytes):"
	head -c 300 "$T/resp.body" | cat -v
	echo
}

header_is() {
	local v
	v=$(hdr "$1")
	[ "$v" = "$2" ] && return 0
	echo "header $1: '$v', expected '$2'"
	return 1
}

header_matches() {
	local v
	v=$(hdr "$1")
	printf '%s' "$v" | grep -qE "$2" && return 0
	echo "header $1: '$v', expected to match /$2/"
	return 1
}

body_same_as() {
	cmp "$T/resp.body" "$1" >/dev/null 2>&1 && return 0
	echo "body ($(wc -c <"$T/resp.body") bytes) differs from $1 ($(wc -c <"$1") bytes)"
	return 1
}

body_empty() {
	[ ! -s "$T/resp.body" ] && return 0
	echo "body has $(wc -c <"$T/resp.body") bytes, expected none"
	return 1
}

# json_error STATUS [MESSAGE]: status, application/json, body
# {"message": "..."} (exactly MESSAGE when given).
json_error() {
	status_is "$1" || return 1
	header_matches Content-Type '^application/json' || return 1
	"$PY" - "$T/resp.body" "${2-}" <<'EOF' || { show_response; return 1; }
import json, sys
try:
    d = json.load(open(sys.argv[1], "rb"))
except Exception as e:
    sys.exit("body is not JSON: %s" % e)
if not isinstance(d, dict) or not isinstance(d.get("message"), str):
    sys.exit("body has no string 'message': %r" % d)
if sys.argv[2] and d != {"message": sys.argv[2]}:
    sys.exit("body %r, expected {'message': %r}" % (d, sys.argv[2]))
EOF
}

# ok_json_error TITLE STATUS [MESSAGE]: the case for the last response.
ok_json_error() {
	check "$1" json_error "$2" "${3-}"
}

# gm_identify FILE: "WIDTH HEIGHT FORMAT" of an image.
gm_identify() {
	gm identify -format '%w %h %m' "$1" 2>&1 | head -n 1
}

body_identifies_as() {
	local v
	v=$(gm_identify "$T/resp.body")
	[ "$v" = "$1" ] && return 0
	echo "gm identify: '$v', expected '$1'"
	return 1
}

# --- FastCGI without a web server ------------------------------------------------

# cgi_req PATH_INFO [METHOD [NAME=VALUE...]]: one request with cgi-fcgi to
# $FCGI_SOCKET, parameters from the environment (so PATH_INFO may hold any
# byte but NUL). Response parsed as for http (HTTP_STATUS, resp.head/body).
cgi_req() {
	local path=$1 method=${2:-GET}
	shift 2 2>/dev/null || shift $#
	env -i PATH="$PATH" GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1 \
		SERVER_NAME=127.0.0.1 SERVER_PORT=80 REMOTE_ADDR=127.0.0.1 \
		SERVER_SOFTWARE=cgi-fcgi SCRIPT_NAME="$MOUNT" QUERY_STRING= \
		REQUEST_METHOD="$method" PATH_INFO="$path" REQUEST_URI="$MOUNT$path" \
		HTTP_X_API_KEY="$KEY_WEB" "$@" \
		cgi-fcgi -bind -connect "$FCGI_SOCKET" </dev/null >"$T/resp.raw" 2>"$T/cgi.err"
	split_cgi_response
}

# fcgi_req NAME=VALUE...: the same with tests/fcgi-request.py, whose values
# take backslash escapes (\x00 for NUL). Give all the parameters.
fcgi_req() {
	"$PY" "$TESTS_DIR/fcgi-request.py" "$FCGI_SOCKET" GATEWAY_INTERFACE=CGI/1.1 \
		SERVER_PROTOCOL=HTTP/1.1 SERVER_NAME=127.0.0.1 SERVER_PORT=80 \
		REMOTE_ADDR=127.0.0.1 SCRIPT_NAME="$MOUNT" QUERY_STRING= "$@" \
		>"$T/resp.raw" 2>"$T/cgi.err"
	split_cgi_response
}

# CGI response (headers, blank line, body) -> resp.head, resp.body, status.
split_cgi_response() {
	"$PY" - "$T/resp.raw" "$T/resp.head" "$T/resp.body" <<'EOF'
import re, sys
raw = open(sys.argv[1], "rb").read()
m = re.search(rb"\r?\n\r?\n", raw)
head, body = (raw[:m.start()], raw[m.end():]) if m else (raw, b"")
open(sys.argv[2], "wb").write(head + b"\n")
open(sys.argv[3], "wb").write(body)
EOF
	HTTP_STATUS=$(tr -d '\r' <"$T/resp.head" |
		sed -n -e 's/^[Ss]tatus: *\([0-9]*\).*/\1/p' -e '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' |
		head -n 1)
	if [ -z "$HTTP_STATUS" ]; then
		if [ -s "$T/resp.raw" ]; then HTTP_STATUS=200; else HTTP_STATUS=000; fi
	fi
}

# --- imgsvc process checks ----------------------------------------------------------

# one_worker_is PID: exactly one imgsvc process of this test runs, and it is
# PID (it neither died nor was replaced).
one_worker_is() {
	local pids
	pids=$(imgsvc_pids | tr '\n' ' ')
	[ "$pids" = "$1 " ] && return 0
	echo "imgsvc processes: '${pids% }', expected exactly '$1'"
	return 1
}

# rss_kb PID: resident set size in kB.
rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

log_has() {
	grep -qE "$1" "$SERVER_LOG" 2>/dev/null && return 0
	echo "no line matching /$1/ in $SERVER_LOG; last lines:"
	tail -n 5 "$SERVER_LOG" 2>/dev/null
	return 1
}

log_lacks() {
	grep -qF "$1" "$SERVER_LOG" 2>/dev/null || return 0
	echo "'$1' found in $SERVER_LOG"
	return 1
}

# start_fakes3: tests/fakes3.py (fault-injecting S3 stand-in) serving the
# files in $T/objects; sets FAKE_URL, and FAKE_REQUESTS (one line a request).
start_fakes3() {
	local i
	mkdir -p "$T/objects"
	FAKE_REQUESTS=$T/fakes3.requests
	: >>"$FAKE_REQUESTS" # fake_mark before the first request
	start_bg fakes3 "$PY" "$TESTS_DIR/fakes3.py" "$T/fakes3.port" "$T/objects" "$FAKE_REQUESTS"
	for i in $(seq 100); do [ -s "$T/fakes3.port" ] && break; sleep 0.1; done
	[ -s "$T/fakes3.port" ] || bail_out "fakes3.py did not start"
	FAKE_URL=http://127.0.0.1:$(cat "$T/fakes3.port")
}

# fake_mark, then fake_since: the lines fakes3.py logged since the mark.
fake_mark() { FAKE_MARK=$(wc -l <"$FAKE_REQUESTS"); }
fake_since() { tail -n +$((FAKE_MARK + 1)) "$FAKE_REQUESTS"; }

# fake_saw METHOD KEY N [STATUS]: fakes3.py saw N requests METHOD KEY (the
# full key; answered STATUS) since the mark.
fake_saw() {
	local n
	n=$(fake_since | grep -c " $1 /$BUCKET/$2 ${4:-}")
	[ "$n" = "$3" ] && return 0
	echo "S3 saw $n $1 of $2${4:+ answered $4}, expected $3; since the mark:"
	fake_since
	return 1
}

# --- transformations and the derivative cache (t02xx) -------------------------

# imgtool ARGS...: tests/imgtool.py (builders and checks of images).
imgtool() {
	"$PY" "$TESTS_DIR/imgtool.py" "$@"
}

# make_fixtures: the generated images of tests/make-fixtures.sh in $GEN.
make_fixtures() {
	GEN=$T/gen
	[ -f "$GEN/quads.png" ] && return 0
	bash "$TESTS_DIR/make-fixtures.sh" "$GEN" >"$T/make-fixtures.log" 2>&1 ||
		bail_out "make-fixtures.sh failed: $(tail -n 3 "$T/make-fixtures.log")"
}

# body_quads_are "TL TR BL BR": the colours at the centres of the last
# response's four quadrants (see imgtool.py quads).
body_quads_are() {
	local v
	v=$(imgtool quads "$T/resp.body" 2>&1)
	[ "$v" = "$1" ] && return 0
	echo "quadrant colours: '$v', expected '$1'"
	return 1
}

# body_colour_at X Y NAME
body_colour_at() {
	local v
	v=$(imgtool colour "$T/resp.body" "$1" "$2" 2>&1)
	[ "$v" = "$3" ] && return 0
	echo "pixel $1,$2: '$v', expected '$3'"
	return 1
}

# body_size_near W H FORMAT: gm identify of the body is W x H (each +-1)
# and FORMAT.
body_size_near() {
	local v w h m
	v=$(gm_identify "$T/resp.body")
	read -r w h m <<<"$v"
	if [ "$m" = "$3" ] && [ -n "$w" ] && [ -n "$h" ] &&
		[ "${w//[0-9]/}" = "" ] && [ "${h//[0-9]/}" = "" ] &&
		[ $((w - $1)) -ge -1 ] && [ $((w - $1)) -le 1 ] &&
		[ $((h - $2)) -ge -1 ] && [ $((h - $2)) -le 1 ]; then
		return 0
	fi
	echo "gm identify: '$v', expected '$1 $2 $3' (+-1 px)"
	return 1
}

# save_response NAME: keep the last response as $T/NAME.head, $T/NAME.body.
save_response() {
	cp "$T/resp.head" "$T/$1.head"
	cp "$T/resp.body" "$T/$1.body"
}

# head_object KEY: S3's head-object of KEY into $T/obj.json (status 0 when
# it exists).
head_object() {
	aws_s3 s3api head-object --bucket "$BUCKET" --key "$1" >"$T/obj.json" 2>"$T/obj.err"
}

# wait_object KEY [SECONDS]: poll head-object until KEY exists (the
# derivative is written after the response has gone out).
wait_object() {
	local key=$1 limit=${2:-3} start
	start=$(date +%s%N)
	while :; do
		head_object "$key" && return 0
		[ $((($(date +%s%N) - start) / 1000000)) -ge $((limit * 1000)) ] && break
		sleep 0.2
	done
	echo "s3://$BUCKET/$key did not appear within $limit s; derivatives:"
	list_keys | grep -v "^$PREFIX" | head -n 20
	return 1
}

# list_keys: every key in the bucket, one a line (fails if listing fails).
# No --prefix: moto 5.2.1 mis-verifies the signature of "prefix=a/".
list_keys() {
	aws_s3 s3api list-objects-v2 --bucket "$BUCKET" --query 'Contents[].Key' \
		--output text >"$T/keys.txt" || return 1
	tr '\t' '\n' <"$T/keys.txt" | grep -v '^None$'
	return 0
}

# object_lacks KEY: no object KEY in the bucket.
object_lacks() {
	head_object "$1" || return 0
	echo "s3://$BUCKET/$1 exists"
	return 1
}

# unquote '"abc"' -> abc
unquote() {
	local v=${1#W/}
	v=${v#\"}
	printf '%s' "${v%\"}"
}

# log_mark: remember where the request log ends; wait_log_line [REGEX] then
# waits (up to 3 s: the line may be written after the response) for the
# first request line after the mark (that also matches REGEX, e.g. the
# path: ' /a.png '), into LOG_LINE.
log_mark() {
	LOG_MARK=$(wc -l <"$SERVER_LOG" 2>/dev/null || echo 0)
}

wait_log_line() {
	local i
	LOG_LINE=
	for i in $(seq 30); do
		LOG_LINE=$(tail -n +$((LOG_MARK + 1)) "$SERVER_LOG" 2>/dev/null |
			grep -E ' status=[0-9]+' | grep -E -- "${1:-.}" | head -n 1)
		[ -n "$LOG_LINE" ] && return 0
		sleep 0.1
	done
	return 1
}

# log_since_mark_has REGEX: a line after the mark matches (waits up to 3 s).
log_since_mark_has() {
	local i
	for i in $(seq 30); do
		tail -n +$((LOG_MARK + 1)) "$SERVER_LOG" 2>/dev/null | grep -qE "$1" && return 0
		sleep 0.1
	done
	echo "no line matching /$1/ since the mark; new lines:"
	tail -n +$((LOG_MARK + 1)) "$SERVER_LOG" 2>/dev/null | head -n 10
	return 1
}

# timed_get PATH: get, with the time it took in ELAPSED_MS.
timed_get() {
	local start
	start=$(date +%s%N)
	get "$@"
	ELAPSED_MS=$((($(date +%s%N) - start) / 1000000))
}

# tget PATH [curl args...]: GET $BASE/PATH with the web key and more curl
# arguments (e.g. -H 'Accept: image/webp').
tget() {
	local p=$1
	shift
	http GET "$BASE$p" -H "X-API-Key: $KEY_WEB" "$@"
}

# json_error_names STATUS PARAM: a JSON error whose message names the
# parameter in single quotes ('w').
json_error_names() {
	json_error "$1" || return 1
	local m
	m=$(json_get "$T/resp.body" 'd["message"]')
	case $m in *"'$2'"*) return 0 ;; esac
	echo "message '$m' does not name '$2'"
	return 1
}
