#!/usr/bin/env bash
# The short fuzzing pass CI runs: builds every harness, runs each for FUZZ_SECONDS (default 60) one after
# another, prints the execution counts, and exits non-zero when any build fails or any target finds a crash
# (the reproducer is in fuzz/crashes/; the report is printed).
#
#   fuzz/ci.sh                                   # all targets, 60 s each (~6 min with the build)
#   FUZZ_SECONDS=10 FUZZ_TARGETS="csv npy" fuzz/ci.sh
set -uo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
read -r -a TARGETS <<<"${FUZZ_TARGETS:-safetensors npy csv idx checkpoint}"

if ! "$FUZZ_DIR/build.sh" "${TARGETS[@]}"; then
    echo "fuzz/ci.sh: building the fuzz targets failed" >&2
    exit 1
fi

failed=()
summary=()
for target in "${TARGETS[@]}"; do
    output=$("$FUZZ_DIR/run.sh" "$target" "$SECONDS_PER_TARGET" 2>&1)
    status=$?
    echo "$output"
    summary+=("$(grep "^fuzz $target:" <<<"$output" | tail -n 1)")
    [ $status -eq 0 ] || failed+=("$target")
done

echo
echo "== fuzzing summary (${SECONDS_PER_TARGET} s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz/ci.sh: FAILED: ${failed[*]} (reproduce with fuzz/.bin/TARGET fuzz/crashes/FILE)" >&2
    exit 1
fi
echo "fuzz/ci.sh: no crashes"
