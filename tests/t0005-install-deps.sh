#!/usr/bin/env bash
# t0005-install-deps.sh - the package step (tests/install-deps.sh) as a
# fresh machine runs it, whatever this machine has installed: stub
# dpkg-query (every package missing), apt-get, sudo and id first on PATH,
# each recording its arguments and environment. Checks the exact commands
# as root and as a user with sudo (DEBIAN_FRONTEND=noninteractive reaching
# apt-get across sudo), the policy-rc.d guard present while apt-get runs
# and gone afterwards (and an existing one left alone), and a clear message
# with a non-zero exit when apt-get fails or there is no way to root.
. "$(dirname "$0")/lib.sh"

script=$TESTS_DIR/install-deps.sh
stubs=$T/stubs
mkdir -p "$stubs"
rec=$T/calls
policy=$T/policy-rc.d

# Every stub appends one line to $rec: its name, then each argument in
# brackets. apt-get adds what it sees: DEBIAN_FRONTEND, whether the policy
# file exists and what it answers. STUB_APT_FAIL=update|install makes that
# apt-get call fail; STUB_UID is what `id -u` prints.
cat >"$stubs/record" <<'EOF'
#!/bin/bash
name=$1
shift
line=$name
for a in "$@"; do line="$line [$a]"; done
echo "$line" >>"$STUB_REC"
EOF
cat >"$stubs/dpkg-query" <<'EOF'
#!/bin/bash
"$(dirname "$0")/record" dpkg-query "$@"
echo "dpkg-query: no packages found matching ${!#}" >&2
exit 1
EOF
cat >"$stubs/apt-get" <<'EOF'
#!/bin/bash
"$(dirname "$0")/record" apt-get "$@"
pol=absent
[ -x "$POLICY_RC_D" ] && { "$POLICY_RC_D" apache2 start; pol="answers $?"; }
echo "apt-get-env DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-unset} policy-rc.d=$pol" >>"$STUB_REC"
[ "${STUB_APT_FAIL:-}" = "$1" ] && { echo "E: stub apt-get $1 failed" >&2; exit 100; }
exit 0
EOF
# sudo as it behaves by default (env_reset): the command runs without the
# caller's DEBIAN_FRONTEND.
cat >"$stubs/sudo" <<'EOF'
#!/bin/bash
"$(dirname "$0")/record" sudo "$@"
exec env -u DEBIAN_FRONTEND "$@"
EOF
cat >"$stubs/id" <<'EOF'
#!/bin/bash
[ "$1" = -u ] && { echo "${STUB_UID:-0}"; exit 0; }
exec /usr/bin/id "$@"
EOF
chmod 755 "$stubs"/*

# run_path PATH UID [VAR=VALUE...]: the script with PATH and no
# DEBIAN_FRONTEND of the caller's; output in $T/out, status in $rc, calls
# in $rec. run_deps UID [VAR=VALUE...]: the same with the stubs first on
# this PATH and no policy-rc.d beforehand.
run_path() {
	local path=$1 uid=$2
	shift 2
	: >"$rec"
	env -u DEBIAN_FRONTEND PATH="$path" STUB_REC="$rec" STUB_UID="$uid" \
		POLICY_RC_D="$policy" "$@" /bin/bash "$script" >"$T/out" 2>&1
	rc=$?
}
run_deps() {
	rm -f "$policy"
	run_path "$stubs:$PATH" "$@"
}
# calls NAME: the recorded calls of NAME (dpkg-query's one a package left out).
calls() { grep -v '^dpkg-query ' "$rec"; }
# same FILE TEXT: FILE holds exactly TEXT (a diff when not).
same() { diff -u <(printf '%s\n' "$2") "$1"; }

pkgs=$(bash "$script" --list)
check "--list names the packages" test -n "$pkgs"
brackets=
for p in $pkgs; do brackets="$brackets [$p]"; done

# --- root --------------------------------------------------------------------
run_deps 0
check "as root: exit 0" test "$rc" = 0
check "as root: dpkg-query asked about every package" \
	test "$(grep -c '^dpkg-query ' "$rec")" = "$(echo $pkgs | wc -w)"
calls >"$T/root"
check "as root: apt-get update, then install of every missing package, no sudo" same "$T/root" \
"apt-get [update] [-q]
apt-get-env DEBIAN_FRONTEND=noninteractive policy-rc.d=answers 101
apt-get [install] [-y] [-q] [--no-install-recommends]$brackets
apt-get-env DEBIAN_FRONTEND=noninteractive policy-rc.d=answers 101"
check "as root: the message lists what it installs" grep -q "^install-deps: installing: build-essential autoconf" "$T/out"
check "as root: policy-rc.d removed afterwards" test ! -e "$policy"

# --- a user with sudo --------------------------------------------------------
run_deps 1000
check "as a user: exit 0" test "$rc" = 0
calls >"$T/user"
check "as a user: every root command through sudo, DEBIAN_FRONTEND carried by env" same "$T/user" \
"sudo [sh] [-c] [printf \"#!/bin/sh\\nexit 101\\n\" >\"\$1\" && chmod 755 \"\$1\"] [sh] [$policy]
sudo [env] [DEBIAN_FRONTEND=noninteractive] [apt-get] [update] [-q]
apt-get [update] [-q]
apt-get-env DEBIAN_FRONTEND=noninteractive policy-rc.d=answers 101
sudo [env] [DEBIAN_FRONTEND=noninteractive] [apt-get] [install] [-y] [-q] [--no-install-recommends]$brackets
apt-get [install] [-y] [-q] [--no-install-recommends]$brackets
apt-get-env DEBIAN_FRONTEND=noninteractive policy-rc.d=answers 101
sudo [rm] [-f] [$policy]"
check "as a user: policy-rc.d removed afterwards" test ! -e "$policy"

# --- a user without sudo -----------------------------------------------------
# A PATH of the stubs but sudo and only the tools the script needs before
# it looks for sudo: whether or not this machine has sudo, none is found.
mkdir -p "$T/nosudo"
for f in record dpkg-query apt-get id; do ln -s "$stubs/$f" "$T/nosudo/$f"; done
for f in grep dirname; do ln -s "$(command -v $f)" "$T/nosudo/$f"; done
run_path "$T/nosudo" 1000
check "as a user without sudo: refuses, naming the packages" \
	sh -c "[ $rc != 0 ] && grep -q 'not root and no sudo: run as root, or install: build-essential' '$T/out'"
check "  ... and runs no apt-get" sh -c "! grep -q '^apt-get' '$rec'"

# --- apt-get fails -----------------------------------------------------------
for step in update install; do
	for uid in 0 1000; do
		run_deps "$uid" STUB_APT_FAIL=$step
		check "apt-get $step fails (uid $uid): non-zero exit" test "$rc" != 0
		check "  ... a message naming the step" grep -q "^install-deps: apt-get $step failed" "$T/out"
		check "  ... policy-rc.d removed" test ! -e "$policy"
	done
done
run_deps 0 STUB_APT_FAIL=update
check "apt-get update fails: no install tried" sh -c "! grep -q '^apt-get \[install\]' '$rec'"

# --- an existing policy-rc.d is the machine's: kept ---------------------------
printf '#!/bin/sh\nexit 101\n# the machine'"'"'s own\n' >"$policy"
chmod 755 "$policy"
run_path "$stubs:$PATH" 0
check "an existing policy-rc.d: exit 0" test "$rc" = 0
check "  ... left as it was" grep -q "the machine's own" "$policy"

# --- nothing missing ---------------------------------------------------------
# (the link to the stub replaced, not written through)
rm -f "$T/nosudo/dpkg-query" "$policy"
cat >"$T/nosudo/dpkg-query" <<'EOF'
#!/bin/bash
echo 'install ok installed'
EOF
chmod 755 "$T/nosudo/dpkg-query"
run_path "$T/nosudo" 1000
check "everything installed: exit 0 without apt-get or sudo" \
	sh -c "[ $rc = 0 ] && [ ! -s '$rec' ] && grep -q 'all Debian packages present' '$T/out'"
