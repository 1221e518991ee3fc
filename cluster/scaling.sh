#!/usr/bin/env bash
# Strong- and weak-scaling sweeps of the training step with `flow-mpirun bench`, then a CSV, an SVG plot of
# samples/s and efficiency against workers, and a markdown table (for BENCHMARKS.md).
#
#   cluster/scaling.sh [OUT_DIR]                 # one machine: ranks 1, 2, 4 (oversubscribed) × threads 1, 2
#   cluster/scaling.sh --netns 3 [OUT_DIR]       # separate hosts over TCP: the one-box cluster (cluster/netns),
#                                                # 1 … N hosts × 1 thread (needs root; creates and removes it)
#
# Strong scaling keeps the global batch at 256; weak scaling keeps 256 rows per rank (global batch 256 × ranks).
# Each point is `bench --steps 10 --repeats 3` (median); the seed model. Environment: FLOW_BIN (the binary),
# STEPS, REPEATS. The machine should be otherwise idle: compare ratios measured in one run.
# First it measures the network on 2 ranks (α–β fit, share of the allreduce hidden) into OUT_DIR/network.txt;
# the markdown table then gives the performance model's predicted ms/step of every point and its error.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
netns=0
sharded=()
if [ "${1:-}" = "--netns" ]; then netns="${2:?usage: $0 --netns HOSTS [OUT_DIR]}"; shift 2; fi
out="${1:-$repo/runs/scaling}"
bin="${FLOW_BIN:-$repo/.build/release/flow-mpirun}"
steps="${STEPS:-10}"
repeats="${REPEATS:-3}"
[ -x "$bin" ] || { echo "error: $bin not found: swift build -c release (or set FLOW_BIN)" >&2; exit 1; }
mkdir -p "$out"
csv="$out/scaling.csv"
echo "kind,ranks,threads,workers,batch,samples_per_s,ms_per_step,compute_ms,allreduce_ms,optimizer_ms" > "$csv"
root=()
[ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)

point() {  # kind ranks threads batch
  local kind=$1 ranks=$2 threads=$3 batch=$4 part
  part=$(mktemp "$out/part.XXXXXX.csv")
  local args=(bench --threads "$threads" --batch-size "$batch" --steps "$steps" --repeats "$repeats" --warmup 3 --csv "$part")
  if [ "$netns" -gt 0 ]; then
    FLOW_BIN="$bin" "$here/netns/launch.sh" -n "$ranks" -- "${args[@]}" > "$part.log" 2>&1
  elif [ "$ranks" -eq 1 ]; then
    "$bin" "${args[@]}" > "$part.log" 2>&1
  else
    mpirun -np "$ranks" --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 "${root[@]}" \
      -x OPENBLAS_NUM_THREADS=1 "$bin" "${args[@]}" > "$part.log" 2>&1
  fi
  # bench's CSV: ranks,threads,mode,overlap,samples_per_s,…,ms_per_step,compute_ms,reduction_ms,allreduce_ms,optimizer_ms
  tail -n +2 "$part" | awk -F, -v k="$kind" -v b="$batch" '{ printf "%s,%s,%s,%d,%s,%s,%s,%s,%s,%s\n", k, $1, $2, $1*$2, b, $5, $9, $10, $12, $13 }' >> "$csv"
  echo "$kind: $ranks rank(s) × $threads thread(s), batch $batch: $(tail -n 1 "$csv" | cut -d, -f6) samples/s"
  rm -f "$part" "$part.log"
}

# The network's α–β fit and the share of the allreduce hidden behind the backward pass, measured on 2 ranks
# (2 hosts with --netns), for the performance model's prediction of every point (bench --report).
network() {
  local args=(bench --threads 1 --steps "$steps" --repeats "$repeats" --warmup 3 --allreduce --compare-overlap)
  if [ "$netns" -gt 0 ]; then
    FLOW_BIN="$bin" "$here/netns/launch.sh" -n 2 -- "${args[@]}"
  else
    mpirun -np 2 --bind-to none --mca mpi_yield_when_idle 1 "${root[@]}" -x OPENBLAS_NUM_THREADS=1 "$bin" "${args[@]}"
  fi > "$out/network.txt" 2>&1
  alpha=$(sed -n 's/^fit: α = \([0-9.]*\) µs.*/\1/p' "$out/network.txt")
  beta=$(sed -n 's/^fit: .*β = \([0-9.]*\) GB\/s.*/\1/p' "$out/network.txt")
  hidden=$(sed -n 's/.*exposed with overlap: \([0-9]*\)% hidden.*/\1/p' "$out/network.txt")
  hidden=$(awk -v h="${hidden:-0}" 'BEGIN { printf "%.2f", h / 100 }')
  echo "network: α = $alpha µs, β = $beta GB/s, $(awk -v h="$hidden" 'BEGIN { printf "%.0f", 100 * h }')% of the allreduce hidden ($out/network.txt)"
}

if [ "$netns" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "error: --netns needs root" >&2; exit 1; }
  "$here/netns/up.sh" "$netns" > /dev/null
  trap '"$here/netns/down.sh" > /dev/null 2>&1 || true' EXIT
  network
  for r in $(seq 1 "$netns"); do point strong "$r" 1 256; done
  for r in $(seq 1 "$netns"); do point weak "$r" 1 $((256 * r)); done
else
  network
  hidden=0.00  # one host: the points run with bench's default --overlap auto: no overlap, sharded optimiser
  sharded=(--sharded-optimizer)
  for r in 1 2 4; do for t in 1 2; do point strong "$r" "$t" 256; done; done
  for r in 1 2 4; do for t in 1 2; do point weak "$r" "$t" $((256 * r)); done; done
fi
model=()
[ -n "$alpha" ] && [ -n "$beta" ] && model=(--alpha-us "$alpha" --beta-gbs "$beta" --hidden-share "$hidden" "${sharded[@]}")
"$bin" bench --report "$csv" --svg "$out/scaling.svg" --markdown "$out/scaling.md" "${model[@]}"
echo "wrote $csv, $out/scaling.svg, $out/scaling.md"
