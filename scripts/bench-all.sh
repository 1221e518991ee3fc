#!/usr/bin/env bash
# Every measurement in BENCHMARKS.md, in one run on an otherwise idle machine:
#   scripts/bench-all.sh [OUT_DIR]          (default runs/bench)
# 1. flow-mpirun vs the PyTorch reference (Benchmarks/pytorch, when torch is installed in $TORCH_PYTHON's environment),
#    alternating the two programs, ROUNDS (default 3) rounds each, 1 and 2 threads;
# 2. flow-mpirun bench: 1 × {1,2} threads, default and exact mode; 2 ranks × 1 thread with and without
#    overlapping the allreduce, allreduce α–β fit, scaling prediction; 2 ranks × 2 threads;
# 3. heap allocations per steady-state step (ordo-one/malloc-interposer);
# 4. cluster/scaling.sh (one machine).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$repo/runs/bench}"
mkdir -p "$out"
cd "$repo"
export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release --product flow-mpirun
swift build -c release --product flow-alloc-count
bin=.build/release/flow-mpirun
root=()
[ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
mpi=(mpirun --bind-to none --mca mpi_yield_when_idle 1 "${root[@]}" -x OPENBLAS_NUM_THREADS=1)
torch="${TORCH_PYTHON:-$repo/../venv-torch/bin/python}"
peer="$repo/Benchmarks/pytorch/torch_realnvp.py"
echo "$(date -u +%Y-%m-%dT%H:%MZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs" > "$out/machine.txt"

echo "== 1. flow-mpirun vs PyTorch (alternating, ${ROUNDS:-3} rounds)"
if [ ! -x "$torch" ]; then
  echo "note: no PyTorch interpreter at $torch (set TORCH_PYTHON, or see Benchmarks/pytorch/README.md): flow-mpirun only" >&2
fi
for round in $(seq 1 "${ROUNDS:-3}"); do
  for t in 1 2; do
    $bin bench --threads "$t" --steps 20 --repeats 3 --csv "$out/ours-t$t-r$round.csv" | tail -n 3
    if [ -x "$torch" ] && [ -f "$peer" ]; then
      "$torch" "$peer" --threads "$t" --epochs 12 --quiet --fused-adam --flush-denormal | grep RESULT_JSON > "$out/torch-t$t-r$round.json"
      python3 -c "import json,sys; r=json.loads(open(sys.argv[1]).read().split(' ',1)[1]); print('torch', sys.argv[2], 'threads:', round(r['samples_per_s']), 'samples/s')" "$out/torch-t$t-r$round.json" "$t"
    fi
  done
done

echo "== 2. time split, exact mode, ranks"
$bin bench --threads 1,2 --steps 20 --repeats 5 --json "$out/threads.json" --csv "$out/threads.csv" | tee "$out/threads.txt"
$bin bench --threads 1,2 --steps 20 --repeats 5 --reproducible --csv "$out/exact.csv" | tee "$out/exact.txt"
"${mpi[@]}" -np 2 $bin bench --threads 1 --steps 20 --repeats 5 --compare-overlap --allreduce --predict --json "$out/ranks2.json" \
  | tee "$out/ranks2.txt"
"${mpi[@]}" -np 2 --oversubscribe $bin bench --threads 2 --steps 10 --repeats 3 | tee "$out/ranks2x2.txt"

echo "== 3. heap allocations per steady-state step"
for t in 1 2; do
  for mode in "" --reproducible; do
    LD_PRELOAD=.build/release/libMallocInterposerSwift.so .build/release/flow-alloc-count --threads "$t" $mode | tee -a "$out/alloc.txt"
  done
done

echo "== 4. scaling sweep"
FLOW_BIN="$repo/$bin" cluster/scaling.sh "$out/scaling"
echo "results in $out"
