#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine (system packages) and runs every test: unit, golden-value,
# gradient, tool, bad-input, fault and MPI integration tests (swift test); then the sanitizer passes
# (ThreadSanitizer on the data-parallel tests, AddressSanitizer on the core tests) and a short fuzzing run
# of every libFuzzer target (FLOW_FUZZ_SECONDS each, default 60).
#
#   scripts/test.sh                     # everything (~15 min on 2 cores)
#   FLOW_TEST_QUICK=1 scripts/test.sh   # swift test only
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
./scripts/install-deps.sh
swift build --build-tests
swift test
if [ -z "${FLOW_TEST_QUICK:-}" ]; then
    ./scripts/sanitize.sh thread address
    FUZZ_SECONDS="${FLOW_FUZZ_SECONDS:-60}" ./fuzz/ci.sh
fi
