#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine (system packages) and runs every test: unit, golden-value,
# gradient, tool, bad-input, fault and MPI integration tests (swift test); then the sanitizer passes
# (ThreadSanitizer on the data-parallel tests, AddressSanitizer on the core tests) and a short fuzzing run
# of every libFuzzer target (FLOW_FUZZ_SECONDS each, default 60).
#
#   scripts/test.sh                     # everything: 11 min on an idle 2-core machine from a clean clone (CI),
#                                       # 54 min measured beside a CPU hog and two other builds (see README)
#   FLOW_TEST_QUICK=1 scripts/test.sh   # the build and swift test only: 16 min of those 54 (build 9, tests 8)
#
# Every part runs even when an earlier one failed; the summary at the end names each part with its result
# and time, and the exit status is non-zero when any part failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
# Tests and CI keep the machine's OpenBLAS settings as they are (older OpenBLAS builds misbehave on some CPUs).

names=() results=()
# part NAME COMMAND...: runs one part, records its result and time.
part() {
    local name="$1"; shift
    local start=$SECONDS
    echo "== $name"
    "$@"
    local status=$?
    names+=("$name")
    if [ $status -eq 0 ]; then
        results+=("passed in $((SECONDS - start)) s")
    else
        results+=("FAILED (exit $status) after $((SECONDS - start)) s")
    fi
    return $status
}

if ! part "setup (scripts/install-deps.sh)" ./scripts/install-deps.sh \
    || ! part "build (swift build --build-tests)" swift build --build-tests; then
    echo "scripts/test.sh: setup or build failed; no test can run" >&2
    for i in "${!names[@]}"; do echo "  ${names[$i]}: ${results[$i]}"; done
    exit 1
fi
part "swift test" swift test
if [ -z "${FLOW_TEST_QUICK:-}" ]; then
    part "ThreadSanitizer (FlowDistributedTests)" ./scripts/sanitize.sh thread
    part "AddressSanitizer (FlowCoreTests)" ./scripts/sanitize.sh address
    part "fuzzing (${FLOW_FUZZ_SECONDS:-60} s per target)" env FUZZ_SECONDS="${FLOW_FUZZ_SECONDS:-60}" ./fuzz/ci.sh
fi

echo
echo "== scripts/test.sh summary"
failed=0
for i in "${!names[@]}"; do
    echo "  ${names[$i]}: ${results[$i]}"
    [[ "${results[$i]}" == FAILED* ]] && failed=$((failed + 1))
done
passed=$(( ${#names[@]} - failed ))
echo "parts: $passed passed, $failed failed"
[ $failed -eq 0 ]
