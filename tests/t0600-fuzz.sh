#!/usr/bin/env bash
# t0600-fuzz.sh - the libFuzzer targets: `make fuzz` builds them with clang,
# ASan and UBSan, and each runs for FUZZ_SECONDS (default 60) through
# fuzz/run.sh on a copy of its corpus. One case per target: a crash, leak,
# timeout, OOM or broken invariant fails it (the input is kept under
# tests/logs/fuzz-TARGET-artifacts/). A first case checks that run.sh does
# report a failing input. Without clang and libFuzzer the script is skipped,
# except under CI=true, where that is a failure.
. "$(dirname "$0")/lib.sh"

# The fuzzers are always built with ASan and UBSan by clang (fuzz/fuzz.mk),
# whatever configure said: once, in the normal build's pass, is enough.
sanitized && skip_all "a sanitized build: the fuzzers (always sanitized) run in the normal pass"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
TARGETS="params sigv4 config s3resp image decide strip"
FUZZ_DIR=$builddir/fuzz

fail_all() { # fail_all WHY: every case fails (or the script is skipped outside CI)
	if [ "${CI:-}" != true ]; then
		skip_all "$1"
	fi
	fail "run.sh reports a failing input" "$1"
	for t in $TARGETS; do
		fail "fuzz_$t runs ${FUZZ_SECONDS}s clean" "$1"
	done
	exit 1
}

# clang that can link libFuzzer and the sanitizers?
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\n%s\n' \
	'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return d && n > 1000000; }' \
	>"$T/probe.c"
command -v clang >/dev/null 2>&1 ||
	fail_all "clang not found (Debian packages clang, libclang-rt-14-dev)"
clang -fsanitize=fuzzer,address,undefined -o "$T/probe" "$T/probe.c" >"$T/probe.log" 2>&1 ||
	fail_all "clang cannot link -fsanitize=fuzzer (Debian package libclang-rt-14-dev): $(head -n 3 "$T/probe.log")"

if ! make -C "$builddir" fuzz >"$T/make-fuzz.log" 2>&1; then
	diag "make fuzz failed:" "$(tail -n 30 "$T/make-fuzz.log")"
	fail_all "make fuzz failed (see tests/logs/$TEST_NAME.log)"
fi

keep_artifacts() { # keep_artifacts TARGET: copy what the run found to tests/logs
	local dest=$builddir/tests/logs/fuzz-$1-artifacts
	rm -rf "$dest"
	mkdir -p "$dest"
	cp -p "$T/fuzz-$1/artifacts/"* "$dest/" 2>/dev/null
	cp -p "$T/fuzz-$1/"fuzz*.log "$dest/" 2>/dev/null
	diag "fuzz_$1: artifacts and logs kept in $dest"
}

# The judge itself: a 1 MB malloc limit makes the image target's first
# real decode an OOM, which run.sh must report and keep.
FUZZ_BUILDDIR=$FUZZ_DIR FUZZ_WORKDIR=$T/fuzz-selfcheck \
	bash "$srcdir/fuzz/run.sh" image 20 -malloc_limit_mb=1 >"$T/selfcheck.out" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q 'FAILED' "$T/selfcheck.out" &&
	ls "$T/fuzz-selfcheck/artifacts/"oom-* >/dev/null 2>&1; then
	ok "run.sh reports a failing input (exit 1, OOM input kept)"
else
	fail "run.sh reports a failing input (exit 1, OOM input kept)" "exit status $rc" \
		"$(head -n 5 "$T/selfcheck.out")"
fi

for t in $TARGETS; do
	FUZZ_BUILDDIR=$FUZZ_DIR FUZZ_WORKDIR=$T/fuzz-$t \
		bash "$srcdir/fuzz/run.sh" "$t" "$FUZZ_SECONDS" >"$T/run-$t.out" 2>&1
	rc=$?
	summary=$(head -n 1 "$T/run-$t.out")
	say "$summary"
	diag "$summary"
	runs=$(printf '%s\n' "$summary" | sed -n 's/^fuzz_[a-z0-9]*: \([0-9][0-9]*\) runs.*/\1/p')
	if [ "$rc" = 0 ] && [ "${runs:-0}" -gt 0 ]; then
		ok "fuzz_$t runs ${FUZZ_SECONDS}s clean ($runs inputs)"
	else
		fail "fuzz_$t runs ${FUZZ_SECONDS}s clean" "exit status $rc, ${runs:-no} runs" \
			"$(sed -n '2,12p' "$T/run-$t.out")"
		diag "$(cat "$T/run-$t.out")"
		keep_artifacts "$t"
	fi
done
