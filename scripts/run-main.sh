#!/usr/bin/env bash
# The main job on a fresh Debian/Ubuntu machine: installs what is missing, builds flow-mpirun (release),
# trains the seed model on two moons across 2 MPI ranks, then samples and evaluates it.
# Outputs: runs/moons/{model.safetensors,best.safetensors,metrics.csv,config.json,*.svg,samples.csv}.
#
#   scripts/run-main.sh [train flags…]     e.g. --epochs 50; RANKS=4 for another rank count
# An earlier runs/moons is replaced (train --force); the script says so before training.
# FLOW_BIN=/path/to/flow-mpirun uses that binary instead of building .build/release/flow-mpirun.
set -euo pipefail
if [ -n "${FLOW_BIN:-}" ] && [[ "$FLOW_BIN" != /* ]]; then FLOW_BIN="$PWD/$FLOW_BIN"; fi
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
./scripts/install-deps.sh
if [ -n "${FLOW_BIN:-}" ]; then
  echo "using FLOW_BIN=$FLOW_BIN (not building)"
else
  swift build -c release --product flow-mpirun
  export FLOW_BIN="$PWD/.build/release/flow-mpirun"
fi
# The README's expected numbers are the bits of OpenBLAS's Haswell (AVX2) kernels, which CI pins too; another
# kernel (e.g. the AVX-512 ones OpenBLAS picks by itself on such CPUs) sums in another order and ends elsewhere.
# Pin them on any x86-64 CPU with AVX2 unless OPENBLAS_CORETYPE is already set (launch.sh passes it to the ranks).
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
  export OPENBLAS_CORETYPE=Haswell
  echo "OPENBLAS_CORETYPE=Haswell (the kernels of the README's expected numbers; set OPENBLAS_CORETYPE to choose others)"
fi
ranks="${RANKS:-2}"
out=runs/moons
if [ -d "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
  echo "replacing the earlier run in $out (--force)"
fi
cluster/launch.sh -n "$ranks" train --out "$out" --force "$@"
cluster/launch.sh -n "$ranks" sample --model "$out" -n 2000 --out "$out/samples.csv"
cluster/launch.sh -n "$ranks" evaluate --model "$out" --dataset moons --samples 2000 --data-seed 12345
echo "plots: $out/flow_panels.svg $out/loss.svg $out/density.svg; samples: $out/samples.csv"
bindir="$(cd "$(dirname "$FLOW_BIN")" && pwd)"
echo "to run flow-mpirun yourself (as the README's examples do): export PATH=\"$bindir:\$PATH\""
