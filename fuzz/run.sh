#!/bin/bash
# run.sh - runs one libFuzzer target on a copy of its corpus and judges it.
#
#   fuzz/run.sh TARGET SECONDS [extra libFuzzer arguments...]
#   e.g. fuzz/run.sh params 60
#        nice -n 10 fuzz/run.sh image 1800 -jobs=1
#
# TARGET is params, sigv4, config, s3resp, image or decide (binary fuzz/fuzz_TARGET,
# built by `make fuzz`; FUZZ_BUILDDIR names another directory holding it).
# The run works in FUZZ_WORKDIR (default: a new directory under $TMPDIR):
# corpus/ starts as a copy of fuzz/corpus/TARGET and grows there, never in
# the source tree; crash, leak, timeout and OOM inputs land in artifacts/;
# libFuzzer's output is fuzz.log (with -jobs, also fuzz-N.log).
#
# Limits: -max_total_time=SECONDS, -timeout=10 per input, -rss_limit_mb=2048,
# -malloc_limit_mb=2048, leak detection on; fuzz/TARGET.dict when present.
# Prints one summary line (runs, exec/s, cov, ft, libFuzzer's corpus as
# inputs/size, the files on disk) and exits 0 only
# when the run ended cleanly: non-zero on a crash, leak, timeout, OOM,
# broken invariant or sanitizer report, naming the artifacts directory.
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 2 ]; then
	echo "usage: $0 TARGET SECONDS [libFuzzer args...]" >&2
	exit 2
fi
target=$1 secs=$2
shift 2
bin=${FUZZ_BUILDDIR:-$here}/fuzz_$target
seeds=$here/corpus/$target
if [ ! -x "$bin" ]; then
	echo "run.sh: $bin is not built (make fuzz)" >&2
	exit 2
fi
if [ ! -d "$seeds" ]; then
	echo "run.sh: no corpus $seeds" >&2
	exit 2
fi
work=${FUZZ_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/imgsvc-fuzz-$target.XXXXXX")}
mkdir -p "$work/corpus" "$work/artifacts"
cp -pR "$seeds/." "$work/corpus/"
dict=()
[ -f "$here/$target.dict" ] && dict=("-dict=$here/$target.dict")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
start=$(date +%s)
(cd "$work" && exec "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
	"${dict[@]}" "$@" "$work/corpus") >"$work/fuzz.log" 2>&1
rc=$?
elapsed=$(($(date +%s) - start))

# With -jobs the work happens in children that log to fuzz-N.log.
logs=("$work/fuzz.log")
for l in "$work"/fuzz-[0-9]*.log; do
	[ -f "$l" ] && logs+=("$l")
done
stats=$(cat "${logs[@]}")
last=$(printf '%s\n' "$stats" | grep -a -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' | tail -n 1)
field() { printf '%s\n' "$last" | sed -n "s/.* $1: *\([^ ]*\).*/\1/p"; }
runs=$(printf '%s\n' "$stats" | sed -n 's/^stat::number_of_executed_units: *//p' | tail -n 1)
eps=$(printf '%s\n' "$stats" | sed -n 's/^stat::average_exec_per_sec: *//p' | tail -n 1)
[ -n "$runs" ] || runs=$(printf '%s\n' "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
[ -n "$eps" ] || eps=$(field exec/s)
corpus_n=$(find "$work/corpus" -type f | wc -l)
corpus_kb=$(du -sk "$work/corpus" | cut -f1)
echo "fuzz_$target: ${runs:-0} runs in ${elapsed} s, ${eps:-0} exec/s, cov: $(field cov)" \
	"ft: $(field ft), corp: $(field corp), $corpus_n files ($corpus_kb KiB) in $work/corpus"

artifacts=$(find "$work/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o \
	-name 'timeout-*' -o -name 'oom-*' -o -name 'mismatch-*' \) | sort)
problems=$(printf '%s\n' "$stats" | grep -a -E \
	'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:|invariant broken|ALARM: working on the last Unit' |
	sort -u | head -n 10)
if [ "$rc" != 0 ] || [ -n "$artifacts" ] || [ -n "$problems" ]; then
	echo "fuzz_$target: FAILED (exit status $rc)"
	[ -n "$problems" ] && printf '  %s\n' "$problems"
	[ -n "$artifacts" ] && printf '  artifact: %s\n' $artifacts
	echo "  artifacts kept in $work/artifacts; log: ${logs[*]}"
	echo "  reproduce: $bin ARTIFACT"
	echo "--- last lines of the log"
	for l in "${logs[@]}"; do tail -n 40 "$l"; done
	exit 1
fi
exit 0
