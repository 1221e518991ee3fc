#!/usr/bin/env bash
# The sanitizer passes (issue 6), each in its own scratch folder so the normal build is untouched:
#   ThreadSanitizer on the data-parallel tests (FlowDistributedTests: worker pool, trainer, exact mode),
#   AddressSanitizer on the core tests (FlowCoreTests: math, readers, checkpoints, fuzz regressions).
#
#   scripts/sanitize.sh                  # both
#   scripts/sanitize.sh thread           # one of: thread address
#
# Any ThreadSanitizer or AddressSanitizer report fails the pass (halt_on_error), as does a failing test.
# LeakSanitizer's exit-time reports of allocations the toolchain's own libraries keep (XCTest, Foundation) are
# suppressed by fuzz/lsan.supp; none is in our code. Swift's crash backtracer is off: it hangs when a
# sanitizer stops the process from a worker thread, where the sanitizer's own report already has the stack.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
passes=("$@")
[ ${#passes[@]} -gt 0 ] || passes=(thread address)
for pass in "${passes[@]}"; do
    start=$(date +%s)
    case "$pass" in
        thread)
            echo "== ThreadSanitizer: FlowDistributedTests"
            TSAN_OPTIONS="halt_on_error=1" SWIFT_BACKTRACE="enable=no" \
                swift test --scratch-path .build-tsan --sanitize=thread --filter FlowDistributedTests ;;
        address)
            echo "== AddressSanitizer: FlowCoreTests"
            ASAN_OPTIONS="halt_on_error=1" SWIFT_BACKTRACE="enable=no" LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp" \
                swift test --scratch-path .build-asan --sanitize=address --filter FlowCoreTests ;;
        *) echo "scripts/sanitize.sh: unknown pass '$pass' (thread, address)" >&2; exit 2 ;;
    esac
    echo "== $pass sanitizer pass: clean in $(( $(date +%s) - start )) s"
done
