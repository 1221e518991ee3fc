#!/usr/bin/env bash
# Runs one fuzz target on its seed corpus.
#
#   fuzz/run.sh TARGET [SECONDS] [extra libFuzzer flags...]     # TARGET: safetensors npy csv idx checkpoint
#   FUZZ_RUNS=10000000 fuzz/run.sh csv 0                         # a fixed number of executions instead
#
# Reads the committed seeds in fuzz/corpus/TARGET/ (never modified) and keeps the inputs libFuzzer finds
# interesting in fuzz/.work/corpus/TARGET/ (reused by later runs). Crashing, leaking, slow (> 10 s) or
# memory-hungry inputs (any single allocation above 256 MB: the inputs are at most a few KB) are written to
# fuzz/crashes/TARGET-*. The last lines printed are a summary: executions, seconds, cov and ft. The exit status
# is libFuzzer's: 0 when nothing was found.
set -uo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGET="${1:?usage: fuzz/run.sh TARGET [SECONDS] [libFuzzer flags...]}"
SECONDS_LIMIT="${2:-60}"
shift $(( $# >= 2 ? 2 : 1 ))

BINARY="$FUZZ_DIR/.bin/$TARGET"
if [ ! -x "$BINARY" ]; then "$FUZZ_DIR/build.sh" "$TARGET" || exit 1; fi
[ -d "$FUZZ_DIR/corpus/$TARGET" ] || { echo "no seed corpus fuzz/corpus/$TARGET" >&2; exit 2; }

case "$TARGET" in
    csv) MAX_LEN=8192 ;;            # room for lines beyond the harness's maxLineBytes of 4096
    checkpoint) MAX_LEN=16384 ;;    # the seeds are up to ~6 KB
    *) MAX_LEN=8192 ;;
esac

WORK_CORPUS="$FUZZ_DIR/.work/corpus/$TARGET"
LOG_DIR="$FUZZ_DIR/.work/logs"
mkdir -p "$WORK_CORPUS" "$FUZZ_DIR/crashes" "$LOG_DIR"
LOG="$LOG_DIR/$TARGET-$(date +%Y%m%d-%H%M%S).log"

ARGS=(
    -max_len="$MAX_LEN" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256
    -dict="$FUZZ_DIR/dict/$TARGET.dict" -artifact_prefix="$FUZZ_DIR/crashes/$TARGET-"
    -print_final_stats=1 -reload=0
)
[ "$SECONDS_LIMIT" -gt 0 ] && ARGS+=(-max_total_time="$SECONDS_LIMIT")
[ -n "${FUZZ_RUNS:-}" ] && ARGS+=(-runs="$FUZZ_RUNS")

# Swift's runtime keeps metadata caches alive for the whole process: LeakSanitizer would report them.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:handle_abort=1}"
# Swift's own crash backtracer races with ASan's (it reads memory ASan poisons); libFuzzer prints the stack.
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"

echo "== fuzz $TARGET: ${SECONDS_LIMIT} s${FUZZ_RUNS:+, $FUZZ_RUNS runs}; log $LOG"
start=$(date +%s)
"$BINARY" "${ARGS[@]}" "$@" "$WORK_CORPUS" "$FUZZ_DIR/corpus/$TARGET" >"$LOG" 2>&1
status=$?
elapsed=$(( $(date +%s) - start ))

grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)" "$LOG" | tail -n 2
final=$(grep -E "^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED)" "$LOG" | tail -n 1)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG" | tail -n 1)
[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$final")
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$final")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$final")
corpus=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$final")
if [ $status -ne 0 ]; then
    echo "!! fuzz $TARGET FAILED (exit $status); the report:"
    grep -E -B2 -A24 "ERROR: |Fatal error|ALARM" "$LOG" | grep -v "^[[:space:]]*$" | head -n 60
    ls -1 "$FUZZ_DIR"/crashes/"$TARGET"-* 2>/dev/null | sed 's/^/   artifact: /'
fi
echo "fuzz $TARGET: executions=${execs:-?} seconds=$elapsed cov=${cov:-?} ft=${ft:-?} corpus=${corpus:-?} status=$status"
exit $status
