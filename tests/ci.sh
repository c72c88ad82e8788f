#!/bin/bash
# ci.sh - build imgsvc and run every test on a fresh Debian 12 machine.
#
#   bash tests/ci.sh               (--deps-only: step 1 alone)
#
# 1. installs the Debian packages the build and the tests need
#    (tests/install-deps.sh: apt-get, non-interactive, as root or through
#    sudo; skipped when all are installed already; services the packages
#    would start, e.g. apache2 and lighttpd on port 80, are kept from
#    starting),
# 2. autoreconf -fi, ./configure --enable-werror, make -j2,
# 3. make check (tests/run-all.sh: unit tests, then tests/tNNNN-*.sh),
# 4. the same again under AddressSanitizer, LeakSanitizer and
#    UndefinedBehaviorSanitizer: a copy of the tree (the in-tree configure
#    of step 2 blocks VPATH builds from it) built out of tree with
#    ../configure --enable-sanitizers in a temporary directory, and its
#    make check, where any sanitizer report fails the test that saw it;
#    then the tests where a worker's threads serve requests at once, built
#    with --enable-tsan (ThreadSanitizer). CI_SANITIZERS=no leaves both out.
# 5. tests/fresh-machine.sh, as root: the README's dependency step, the
#    build, the unit tests, imgsvc -t and a health request through
#    lighttpd and spawn-fcgi in a clean debootstrapped Debian 12 root
#    (the committed HEAD); one case. CI_FRESH=no leaves it out.
# The last line of output is "N passed, N failed, N skipped", the sum of
# both passes; the exit status is non-zero when anything failed or a build
# broke.
#
# moto_server (pip install 'moto[server]') is not a Debian package: the
# tests look for it on PATH, then in ~/.pyenv/shims.

cd "$(dirname "$0")/.." || exit 1

finish() { # finish SUMMARY-LINE STATUS: print the last line, exit
	echo "$1"
	exit "$2"
}

# --- 1. packages ------------------------------------------------------------------
bash tests/install-deps.sh || finish "0 passed, 1 failed, 0 skipped" 1

[ "${1:-}" = --deps-only ] && exit 0

# --- 2. build ---------------------------------------------------------------------
mkdir -p m4
log=$(mktemp "${TMPDIR:-/tmp}/imgsvc-ci.XXXXXX")
san=
trap 'rm -f "$log"; [ -n "$san" ] && rm -rf "$san"' EXIT
step() { # step NAME COMMAND...: run, show the output, stop on failure
	echo "ci: $*"
	"$@" || { echo "ci: '$*' failed"; finish "0 passed, 1 failed, 0 skipped" 1; }
}
step autoreconf -fi
step ./configure --enable-werror --with-redis
step make -j2

# --- 3. tests ---------------------------------------------------------------------
# run_check: make check here; the counts of its summary line in PASS, FAIL,
# SKIP (one failure when there is no summary or make failed without one).
run_check() {
	make -j2 check 2>&1 | tee "$log"
	count_summary "${PIPESTATUS[0]}"
}
# count_summary STATUS: the counts of the summary line in $log.
count_summary() {
	local rc=$1 summary
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -n 1)
	if [ -z "$summary" ]; then
		echo "ci: make check ended (status $rc) without a test summary"
		PASS=0 FAIL=1 SKIP=0
		return
	fi
	read -r PASS _ FAIL _ SKIP _ <<<"${summary//,/}"
	[ "$rc" != 0 ] && [ "$FAIL" = 0 ] && FAIL=1
	return 0
}
echo "ci: make check"
run_check
pass=$PASS fail=$FAIL skip=$SKIP

# --- 4. the same under ASan + UBSan, and the concurrent tests under TSan -----------
# sanitized_pass LABEL CONFIGURE-FLAG [TEST...]: a copy of the tree built out
# of tree with CONFIGURE-FLAG in a temporary directory, then its make check
# (the TESTs alone when given); the counts added to pass, fail, skip. A
# failed pass keeps its logs in tests/logs-LABEL/.
sanitized_pass() {
	local label=$1 flag=$2 t0 top=$PWD
	shift 2
	t0=$(date +%s)
	echo "ci: tests again, built with $flag${*:+: $*}"
	san=$(mktemp -d "${TMPDIR:-/tmp}/imgsvc-ci-$label.XXXXXX") || {
		echo "ci: cannot make a temporary directory for the $label pass"
		PASS=0 FAIL=1 SKIP=0
		pass=$((pass + PASS)) fail=$((fail + FAIL)) skip=$((skip + SKIP))
		return
	}
	# Apache runs imgsvc as www-data: it must reach the binary.
	chmod 755 "$san"
	mkdir "$san/src" "$san/build"
	# The tree as it is, tracked and new files alike, without build output.
	if git ls-files -z -co --exclude-standard >"$san/files" &&
		tar --null --ignore-failed-read -T "$san/files" -cf - 2>/dev/null | tar -C "$san/src" -xf - &&
		cd "$san/src" && mkdir -p m4 && autoreconf -fi &&
		cd "$san/build" && ../src/configure --enable-werror "$flag" --with-redis &&
		make -j2; then
		if [ $# = 0 ]; then
			run_check
		else
			if make -j2 tests/unit tests/sigv4_cli tests/credsprobe tests/stateprobe tests/keytiming; then
				TESTS="$*" run_check_tests
			else
				PASS=0 FAIL=1 SKIP=0
			fi
		fi
	else
		echo "ci: the $label build failed (it needs git, and gcc's libasan8, libubsan1, libtsan2)"
		PASS=0 FAIL=1 SKIP=0
	fi
	cd "$top" || exit 1
	echo "ci: $label pass: $PASS passed, $FAIL failed, $SKIP skipped in $(($(date +%s) - t0)) s"
	if [ "$FAIL" != 0 ] && [ -d "$san/build/tests/logs" ]; then
		rm -rf "tests/logs-$label"
		cp -pr "$san/build/tests/logs" "tests/logs-$label" && echo "ci: its logs: tests/logs-$label/"
	fi
	rm -rf "$san"
	san=
	pass=$((pass + PASS)) fail=$((fail + FAIL)) skip=$((skip + SKIP))
}
# run_check_tests: tests/run-all.sh of the tests in $TESTS, counted like run_check.
run_check_tests() {
	# shellcheck disable=SC2086 # TESTS is a list of names
	(srcdir=../src builddir=$PWD bash ../src/tests/run-all.sh $TESTS) 2>&1 | tee "$log"
	count_summary "${PIPESTATUS[0]}"
}
if [ "${CI_SANITIZERS:-yes}" != no ]; then
	# The soak's RSS bound means nothing under ASan; its statuses,
	# PIDs and descriptors do, over fewer requests.
	SOAK_REQUESTS=${CI_SANITIZED_SOAK_REQUESTS:-3000} sanitized_pass sanitized --enable-sanitizers
	# The tests where a worker's threads serve requests at once.
	SOAK_REQUESTS=${CI_SANITIZED_SOAK_REQUESTS:-3000} sanitized_pass tsan --enable-tsan \
		unit t0100-lighttpd t0120-spawn-fcgi t0125-threads t0210-derivative-cache t0410-soak-mixed
fi

# --- 5. the README's steps on a fresh Debian 12 root -----------------------------------
# tests/fresh-machine.sh (debootstrap, chroot; about 1.5 to 3 minutes, most
# of it downloading): one case. It needs root; CI_FRESH=no leaves it out.
if [ "${CI_FRESH:-yes}" != no ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "ci: fresh-machine check skipped: it needs root (debootstrap, chroot)"
		skip=$((skip + 1))
	elif bash tests/fresh-machine.sh; then
		pass=$((pass + 1))
	else
		echo "ci: tests/fresh-machine.sh failed"
		fail=$((fail + 1))
	fi
fi

# make's own trailing lines came after run-all's summary: say it again, last.
finish "$pass passed, $fail failed, $skip skipped" "$([ "$fail" = 0 ] && echo 0 || echo 1)"
