#!/usr/bin/env bash
# The main job on a fresh Debian/Ubuntu machine: installs what is missing, builds flow-mpirun (release),
# trains the seed model on two moons across 2 MPI ranks, then samples and evaluates it.
# Outputs: runs/moons/{model.safetensors,best.safetensors,metrics.csv,config.json,*.svg,samples.csv}.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
./scripts/install-deps.sh
swift build -c release --product flow-mpirun
ranks="${RANKS:-2}"
cluster/launch.sh -n "$ranks" train --out runs/moons --force "$@"
cluster/launch.sh -n "$ranks" sample --model runs/moons -n 2000 --out runs/moons/samples.csv
cluster/launch.sh -n "$ranks" evaluate --model runs/moons --dataset moons --samples 2000 --data-seed 12345
echo "plots: runs/moons/flow_panels.svg runs/moons/loss.svg runs/moons/density.svg"
