#!/bin/bash
# install-deps.sh - install the Debian packages imgsvc's build, demo and
# tests need; step 1 of tests/ci.sh and tests/demo.sh.
#
#   bash tests/install-deps.sh          install what is missing
#   bash tests/install-deps.sh --list   print the package list and stop
#
# Asks dpkg-query which packages are installed and, when any is missing,
# runs apt-get update and apt-get install -y --no-install-recommends of the
# missing ones with DEBIAN_FRONTEND=noninteractive: directly as root,
# through "sudo env DEBIAN_FRONTEND=noninteractive apt-get ..." otherwise
# (sudo resets the environment; env carries the variable across it).
#
# While apt-get runs, a policy-rc.d that answers 101 ("action forbidden")
# keeps the packages' services from starting (apache2 and lighttpd would
# take port 80; the tests start their own servers on loopback ports). It is
# made only when none exists, and removed again however apt-get ends.
# POLICY_RC_D names the file (default /usr/sbin/policy-rc.d); the test of
# this script points it into a temporary directory.
#
# Exit status 0 when everything is installed; otherwise non-zero with a
# line saying which step failed.

PACKAGES="build-essential autoconf automake libtool pkg-config
libfcgi-dev libcurl4-openssl-dev libgraphicsmagick1-dev libiniparser-dev libssl-dev
spawn-fcgi lighttpd apache2 libapache2-mod-fcgid libfcgi-bin
graphicsmagick wrk awscli python3 curl valgrind git
libhiredis-dev redis-server prometheus
libasan8 libubsan1 libtsan2 clang libclang-rt-14-dev
debootstrap"
POLICY_RC_D=${POLICY_RC_D:-/usr/sbin/policy-rc.d}

say() { echo "install-deps: $*"; }

if [ "${1:-}" = --list ]; then
	echo $PACKAGES
	exit 0
fi

missing=
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing="$missing $p"
done
if [ -z "$missing" ]; then
	say "all Debian packages present"
	exit 0
fi
say "installing:$missing"

# as_root COMMAND...: run COMMAND as root, through sudo when not root.
if [ "$(id -u)" = 0 ]; then
	as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1; then
	as_root() { sudo "$@"; }
else
	say "not root and no sudo: run as root, or install:$missing"
	exit 1
fi

made_policy=
remove_policy() {
	[ -n "$made_policy" ] && as_root rm -f "$POLICY_RC_D"
	made_policy=
}
trap remove_policy EXIT
trap 'exit 130' INT TERM
if [ ! -e "$POLICY_RC_D" ]; then
	# shellcheck disable=SC2016 # $1 is expanded by the inner shell
	as_root sh -c 'printf "#!/bin/sh\nexit 101\n" >"$1" && chmod 755 "$1"' sh "$POLICY_RC_D" &&
		made_policy=1 || say "warning: could not write $POLICY_RC_D; services may start"
fi

if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q; then
	say "apt-get update failed (see above): check the network and /etc/apt/sources.list"
	exit 1
fi
# shellcheck disable=SC2086 # one word a package
if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing; then
	say "apt-get install failed (see above); missing:$missing"
	exit 1
fi
say "installed:$missing"
