#!/bin/bash
# run-all.sh - runs every imgsvc test and sums up.
#
# First the C unit tests of the pure cores ($builddir/tests/unit DATADIR),
# then every tests/tNNNN-*.sh in order. Each prints TAP on stdout; its
# stdout is kept in $builddir/tests/logs/NAME.tap and its stderr in
# $builddir/tests/logs/NAME.log. Counting:
#   "ok ..."                  passed ("ok ... # SKIP why": skipped)
#   "not ok ..."              failed ("not ok ... # TODO why": skipped)
#   "1..0 # SKIP why"         the whole script skipped (counts as 1)
#   exit status != 0, "Bail out!", no plan, or fewer/more results than
#   the plan                  one more failure for that script
# Prints one summary line per script, and as the very last line:
#   N passed, N failed, N skipped
# Exit status 1 when anything failed.
#
# Usage: srcdir=DIR builddir=DIR tests/run-all.sh [NAME-PATTERN...]
#   e.g. tests/run-all.sh t0100 t0120     (default: everything)
# TEST_TIMEOUT (seconds, default 900) bounds each script.

: "${srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
srcdir=$(cd "$srcdir" && pwd)
: "${builddir:=$srcdir}"
builddir=$(cd "$builddir" && pwd)
export srcdir builddir
logdir=$builddir/tests/logs
mkdir -p "$logdir"
timeout_s=${TEST_TIMEOUT:-900}

total_pass=0
total_fail=0
total_skip=0

# tally NAME TAPFILE STATUS SECONDS: counts one script's results.
tally() {
	local name=$1 tap=$2 rc=$3 secs=$4
	local pass fail skip plan count extra=""
	pass=$(grep -a -cE '^ok( |$)' "$tap" | head -n 1)
	skip=$(grep -a -E '^ok( |$)' "$tap" | grep -a -ciE '#[[:space:]]*skip' | head -n 1)
	fail=$(grep -a -cE '^not ok( |$)' "$tap" | head -n 1)
	local todo
	todo=$(grep -a -E '^not ok( |$)' "$tap" | grep -a -ciE '#[[:space:]]*todo' | head -n 1)
	pass=$((pass - skip))
	fail=$((fail - todo))
	skip=$((skip + todo))
	count=$((pass + fail + skip))
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$tap" | tail -n 1)
	if [ "$plan" = 0 ] && [ "$count" = 0 ]; then
		if [ "$rc" = 0 ]; then
			skip=1
			extra=" (skipped: $(sed -n 's/^1\.\.0 *# *[Ss][Kk][Ii][Pp] *//p' "$tap" | head -n 1))"
		else
			fail=1
			extra=" (exit status $rc)"
		fi
	else
		if grep -a -q '^Bail out!' "$tap"; then
			:	# counted below
		elif [ -z "$plan" ]; then
			fail=$((fail + 1))
			extra="$extra (no plan)"
		elif [ "$plan" != "$count" ]; then
			fail=$((fail + 1))
			extra="$extra (planned $plan, ran $count)"
		fi
		if grep -a -q '^Bail out!' "$tap"; then
			fail=$((fail + 1))
			extra="$extra ($(grep -a -m 1 '^Bail out!' "$tap"))"
		elif [ "$rc" != 0 ] && [ "$fail" = 0 ]; then
			fail=1
			extra="$extra (exit status $rc)"
		fi
	fi
	[ "$rc" = 124 ] && extra="$extra (timed out after ${timeout_s}s)"
	printf '%-28s %4d passed, %d failed, %d skipped, %ds%s\n' \
		"$name:" "$pass" "$fail" "$skip" "$secs" "$extra"
	grep -a -E '^not ok( |$)' "$tap" | grep -a -viE '#[[:space:]]*todo' | sed 's/^/    /'
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
}

wanted() {
	local p
	[ $# -le 1 ] && return 0
	for p in "${@:2}"; do
		case $1 in *"$p"*) return 0 ;; esac
	done
	return 1
}

# --- unit tests ------------------------------------------------------------------
if wanted unit "$@"; then
	t0=$(date +%s)
	if [ -x "$builddir/tests/unit" ]; then
		timeout "$timeout_s" "$builddir/tests/unit" "$srcdir/tests/data" \
			>"$logdir/unit.tap" 2>"$logdir/unit.log" </dev/null
		rc=$?
		# A sanitized build (--enable-sanitizers) reports on stderr: any
		# report is a failure, even one that left the exit status at 0.
		san=$(grep -cE '(Address|Leak|UndefinedBehavior|Thread)Sanitizer|runtime error:' "$logdir/unit.log")
	else
		echo "Bail out! $builddir/tests/unit is not built (make check builds it)" >"$logdir/unit.tap"
		rc=1 san=0
	fi
	tally unit "$logdir/unit.tap" "$rc" $(($(date +%s) - t0))
	if [ "$san" != 0 ]; then
		# Counted apart: a report is a failure even when the exit status
		# and every case say otherwise.
		echo "    sanitizer report in $logdir/unit.log"
		total_fail=$((total_fail + 1))
	fi
fi

# --- shell tests -----------------------------------------------------------------
for script in "$srcdir"/tests/t[0-9][0-9][0-9][0-9]-*.sh; do
	[ -f "$script" ] || continue
	name=$(basename "$script" .sh)
	wanted "$name" "$@" || continue
	# Run with the interpreter its #! line names (bash when none).
	interp=$(sed -n '1s/^#![[:space:]]*//p' "$script")
	[ -n "$interp" ] || interp=bash
	t0=$(date +%s)
	# shellcheck disable=SC2086 # the #! line may be "/usr/bin/env bash"
	timeout "$timeout_s" $interp "$script" >"$logdir/$name.tap" 2>"$logdir/$name.log" </dev/null
	rc=$?
	tally "$name" "$logdir/$name.tap" "$rc" $(($(date +%s) - t0))
done

echo "logs: $logdir"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" = 0 ]
