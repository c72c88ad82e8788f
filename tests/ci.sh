#!/bin/bash
# ci.sh - build imgsvc and run every test on a fresh Debian 12 machine.
#
#   bash tests/ci.sh               (tests/demo.sh uses --deps-only: step 1)
#
# 1. installs the Debian packages the build and the tests need (apt-get,
#    non-interactive; skipped when all are installed already; services the
#    packages would start, e.g. apache2 and lighttpd on port 80, are kept
#    from starting),
# 2. autoreconf -fi, ./configure --enable-werror, make -j2,
# 3. make check (tests/run-all.sh: unit tests, then tests/tNNNN-*.sh).
# The last line of output is "N passed, N failed, N skipped"; the exit
# status is non-zero when anything failed or the build broke.
#
# moto_server (pip install 'moto[server]') is not a Debian package: the
# tests look for it on PATH, then in ~/.pyenv/shims.

cd "$(dirname "$0")/.." || exit 1

PACKAGES="build-essential autoconf automake libtool pkg-config
libfcgi-dev libcurl4-openssl-dev libgraphicsmagick1-dev libiniparser-dev libssl-dev
spawn-fcgi lighttpd apache2 libapache2-mod-fcgid libfcgi-bin
graphicsmagick wrk awscli python3 curl valgrind
libhiredis-dev redis-server prometheus"

finish() { # finish SUMMARY-LINE STATUS: print the last line, exit
	echo "$1"
	exit "$2"
}

# --- 1. packages ------------------------------------------------------------------
missing=
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "ci: installing:$missing"
	SUDO=
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null 2>&1 || { echo "ci: need root (or sudo) to install:$missing"; finish "0 passed, 1 failed, 0 skipped" 1; }
		SUDO=sudo
	fi
	# Keep the packages' services (apache2, lighttpd on port 80) from
	# starting: the tests start their own servers on loopback.
	made_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null &&
			$SUDO chmod 755 /usr/sbin/policy-rc.d && made_policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	$SUDO apt-get update -q && $SUDO -E apt-get install -y -q --no-install-recommends $missing
	rc=$?
	[ -n "$made_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
	[ $rc = 0 ] || { echo "ci: apt-get failed"; finish "0 passed, 1 failed, 0 skipped" 1; }
else
	echo "ci: all Debian packages present"
fi

[ "${1:-}" = --deps-only ] && exit 0

# --- 2. build ---------------------------------------------------------------------
mkdir -p m4
log=$(mktemp "${TMPDIR:-/tmp}/imgsvc-ci.XXXXXX")
trap 'rm -f "$log"' EXIT
step() { # step NAME COMMAND...: run, show the output, stop on failure
	echo "ci: $*"
	"$@" || { echo "ci: '$*' failed"; finish "0 passed, 1 failed, 0 skipped" 1; }
}
step autoreconf -fi
step ./configure --enable-werror --with-redis
step make -j2

# --- 3. tests ---------------------------------------------------------------------
echo "ci: make check"
make -j2 check 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -n 1)
if [ -z "$summary" ]; then
	echo "ci: make check ended (status $rc) without a test summary"
	finish "0 passed, 1 failed, 0 skipped" 1
fi
# make's own trailing lines came after run-all's summary: say it again, last.
failed=$(echo "$summary" | sed 's/.* \([0-9]*\) failed.*/\1/')
[ "$rc" = 0 ] && [ "$failed" = 0 ] && finish "$summary" 0
finish "$summary" 1
