#!/usr/bin/env bash
# Line coverage of the FlowCore sources reached by a target's corpus (the committed seeds plus what earlier
# runs kept in fuzz/.work/corpus/TARGET), using a coverage build of the harness:
#
#   fuzz/coverage.sh csv            # builds fuzz/.bin/csv-coverage when missing, prints llvm-cov's report
#   fuzz/coverage.sh csv --show     # also prints the annotated sources (uncovered lines marked 0)
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGET="${1:?usage: fuzz/coverage.sh TARGET [--show]}"
BINARY="$FUZZ_DIR/.bin/$TARGET-coverage"
TOOLS="$(dirname "$(command -v swiftc)")"
[ -x "$BINARY" ] || FUZZ_COVERAGE=1 "$FUZZ_DIR/build.sh" "$TARGET"

OUT="$FUZZ_DIR/.work/coverage/$TARGET"
rm -rf "$OUT" && mkdir -p "$OUT" "$FUZZ_DIR/.work/corpus/$TARGET"
export ASAN_OPTIONS="detect_leaks=0" SWIFT_BACKTRACE="enable=no"
LLVM_PROFILE_FILE="$OUT/%p.profraw" "$BINARY" -runs=0 -rss_limit_mb=2048 -malloc_limit_mb=256 \
    "$FUZZ_DIR/.work/corpus/$TARGET" "$FUZZ_DIR/corpus/$TARGET" >"$OUT/run.log" 2>&1
"$TOOLS/llvm-profdata" merge -sparse "$OUT"/*.profraw -o "$OUT/merged.profdata"
ROOT="$(cd "$FUZZ_DIR/.." && pwd)"
"$TOOLS/llvm-cov" report "$BINARY" -instr-profile="$OUT/merged.profdata" "$ROOT/Sources/FlowCore" | sed "s|$ROOT/||"
if [ "${2:-}" = "--show" ]; then
    "$TOOLS/llvm-cov" show "$BINARY" -instr-profile="$OUT/merged.profdata" "$ROOT/Sources/FlowCore" | sed "s|$ROOT/||"
fi
