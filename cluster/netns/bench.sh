#!/usr/bin/env bash
# Weak and strong scaling of flow-mpirun over TCP between the one-box cluster's hosts, and the cost of an
# allreduce on its links (as root, with a release build):
#   cluster/netns/bench.sh [--hosts "1 2 3"] [--repeats 2] [--epochs 3] [--threads 1] [-- extra train flags…]
# For each host count H: `train --epochs E --no-plots` (the seed model) through launch.sh with H hosts × 1 rank
# × T threads, strong (global --batch-size 256) and weak (--batch-size 256·H), each run R times; prints every
# run's samples/s (the `done:` line) and rank 0's mean time per step in the allreduce (FLOW_LOG_LEVEL=debug),
# then the best and median. H = 1 is also run without mpirun. Finally an MPI_Allreduce micro-benchmark
# (allreduce-bench.c, built with mpicc) over 2…max hosts, 4 B to 16 MiB and the seed's 9.5 MB gradient,
# with a rough α–β fit (α = 4-byte time, β = slope from 1 to 16 MiB).
# Brings the cluster up (and down at the end) unless it is already up. Environment: FLOW_BIN (default: the
# release build of this repository).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
hosts_list="1 2 3"; repeats=2; epochs=3; threads=1; extra=()
while (($#)); do
  case "$1" in
    --hosts) hosts_list="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: $0 [--hosts \"1 2 3\"] [--repeats R] [--epochs E] [--threads T] [-- train flags…]" >&2; exit 64 ;;
  esac
done
export FLOW_BIN="${FLOW_BIN:-$repo/.build/release/flow-mpirun}"
[ -x "$FLOW_BIN" ] || { echo "error: $FLOW_BIN not found (swift build -c release, or set FLOW_BIN)" >&2; exit 1; }
max_hosts=0; for h in $hosts_list; do ((h > max_hosts)) && max_hosts=$h; done
work="$(mktemp -d /tmp/flow-netns-bench.XXXXXX)"
made_cluster=0
cleanup() { rm -rf "$work"; if ((made_cluster)); then "$here/down.sh"; fi; }
trap cleanup EXIT
have=$(cat "$FLOW_NETNS_STATE/hosts" 2>/dev/null || echo 0)
if ((have < max_hosts)); then "$here/up.sh" "$max_hosts" >/dev/null; made_cluster=1; fi

# One run: prints "samples/s allreduce_ms".
run() {  # run HOSTS BATCH [mpirun|single]
  local h=$1 batch=$2 how=${3:-mpirun} log="$work/log"
  local args=(train --epochs "$epochs" --no-plots --threads "$threads" --batch-size "$batch" --force --out "$work/out" "${extra[@]}")
  if [ "$how" = single ]; then
    FLOW_LOG_LEVEL=debug OPENBLAS_NUM_THREADS=1 "$FLOW_BIN" "${args[@]}" >"$log" 2>&1
  else
    "$here/launch.sh" -n "$h" -x FLOW_LOG_LEVEL=debug -- "${args[@]}" >"$log" 2>&1
  fi || { echo "error: run failed:" >&2; cat "$log" >&2; exit 1; }
  local sps ar
  sps=$(grep -o 'done: .*' "$log" | sed -E 's/.* ([0-9.]+) samples\/s.*/\1/' | head -1)
  ar=$(grep -m1 -o 'allreduce [0-9.]*' "$log" | awk '{print $2}')
  echo "$sps ${ar:-?}"
}
summary() {  # best and median of the samples/s column
  sort -n | awk '{v[NR]=$1; a[NR]=$2} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "best %s, median %s samples/s; allreduce %s ms/step (best run)\n", v[NR], m, a[NR]}'
}

echo "# flow-mpirun over the one-box cluster: epochs $epochs, $threads thread(s) per rank, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in strong weak; do
  for h in $hosts_list; do
    batch=256; [ "$mode" = weak ] && batch=$((256 * h))
    hows=mpirun; ((h == 1)) && hows="single mpirun"
    for how in $hows; do
      results=()
      for _ in $(seq 1 "$repeats"); do results+=("$(run "$h" "$batch" "$how")"); done
      printf '%-6s hosts=%d batch=%-4d %-6s runs: %s | %s\n' "$mode" "$h" "$batch" "$how" \
        "$(printf '%s; ' "${results[@]}")" "$(printf '%s\n' "${results[@]}" | summary)"
    done
  done
done

if command -v mpicc >/dev/null 2>&1; then
  mpicc -O2 -o "$work/allreduce-bench" "$here/allreduce-bench.c"
  for h in $hosts_list; do
    ((h >= 2)) || continue
    echo "# MPI_Allreduce (float sum) over $h hosts, TCP, median of the slowest rank's time"
    FLOW_BIN="$work/allreduce-bench" "$here/launch.sh" -n "$h" -- $((16 << 20)) 9535584 | tee "$work/ar"
    # + the seed model's gradient (2,383,896 floats). α–β: α = time at 4 B, β = slope from 1 MiB to 16 MiB.
    awk '$1 == 4 {a = $2} $1 == 1048576 {t1 = $2} $1 == 16777216 {t2 = $2}
         END {b = (t2 - t1) / (16777216 - 1048576);
              printf "# alpha-beta fit: alpha = %.1f us, beta = %.3f ns/byte (%.2f GB/s)\n", a * 1e6, b * 1e9, 1 / b / 1e9}' "$work/ar"
  done
else
  echo "(mpicc not found: no allreduce micro-benchmark; apt install libopenmpi-dev)"
fi
