#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine (system packages) and runs every test: unit, golden-value,
# gradient, tool, bad-input and MPI integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
./scripts/install-deps.sh
swift build --build-tests
swift test
