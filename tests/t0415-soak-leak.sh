#!/usr/bin/env bash
# t0415-soak-leak.sh - the soak's leak bound fails on a real leak. A copy of
# the tree is built with configure --enable-test-leak=256 (every request
# loses a 256-byte block) and t0410 runs against that imgsvc with
# SOAK_REQUESTS=4000: the live-heap case of every main worker that served
# enough requests to have two heap lines must fail, at least one must have
# run, and every case that is not about the heap must still pass (the leak
# breaks nothing else, so the failure is the bound's). Skipped on a
# sanitized build, where t0410 skips its heap cases.
. "$(dirname "$0")/lib.sh"
require_imgsvc
sanitized && skip_all "sanitized build: t0410's heap bound is skipped there"
command -v git >/dev/null 2>&1 || skip_all "git is needed to copy the tree"

# The tree as it is, tracked and new files alike, without build output (an
# in-tree configure blocks a VPATH build from $srcdir).
mkdir "$T/src"
(cd "$srcdir" && git ls-files -z -co --exclude-standard) >"$T/files"
(cd "$srcdir" && tar --null --ignore-failed-read -T "$T/files" -cf - 2>/dev/null) | tar -C "$T/src" -xf -
check "tree copied" test -f "$T/src/configure.ac"
(cd "$T/src" && mkdir -p m4 && autoreconf -fi && ./configure --enable-test-leak=256 &&
	make -j2 imgsvc imgsvc-usage) >"$T/build.log" 2>&1
check "imgsvc built with --enable-test-leak=256" test -x "$T/src/imgsvc"
check "  ... and says so in -V" sh -c "'$T/src/imgsvc' -V | grep -q 'leak of 256 bytes a request'"
[ -x "$T/src/imgsvc" ] || bail_out "the leaking build failed: $(tail -n 5 "$T/build.log")"

SOAK_REQUESTS=4000 IMGSVC=$T/src/imgsvc bash "$TESTS_DIR/t0410-soak-mixed.sh" \
	>"$T/soak.tap" 2>"$T/soak.log"
sed 's/^/# soak: /' "$T/soak.tap" >&2
heap_fail=$(grep -cE '^not ok [0-9]+ - main worker [0-9]+: live heap' "$T/soak.tap")
heap_pass=$(grep -E '^ok [0-9]+ - main worker [0-9]+: live heap' "$T/soak.tap" | grep -cv '# SKIP')
other_fail=$(grep -E '^not ok ' "$T/soak.tap" | grep -cv ': live heap')
check "t0410 ran to its plan" grep -qE '^1\.\.[1-9]' "$T/soak.tap"
check "a main worker's live-heap case fails on the leak ($heap_fail failed)" test "$heap_fail" -ge 1
check "no main worker's live-heap case passes on the leak ($heap_pass passed)" test "$heap_pass" = 0
check "every other case of the soak passes ($other_fail failed)" test "$other_fail" = 0
grep -E '^not ok ' "$T/soak.tap" | sed 's/^/# /'
