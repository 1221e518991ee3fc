#!/bin/bash
# Alternating rounds, PyTorch peer against our `train` loop (BENCHMARKS §11a): per round the peer at 2 threads
# (fused Adam, denormals flushed), then ours with the machine's kernels (Cooperlake on AVX-512) and with
# OPENBLAS_CORETYPE=Haswell, each validating every epoch (V=1, our default) and after the last only (V=1000, as
# the peer). Prints per round: peer samples/s, then per setting "train step" samples/s.
# Usage: scripts/peer-parity.sh [rounds]   (env: FLOW_BIN, PYTHON, PEER)
set -euo pipefail
B=${FLOW_BIN:-.build/release/flow-mpirun}
PY=${PYTHON:-../venv-torch/bin/python}
PEER=${PEER:-../shared/peers/torch_realnvp.py}
for r in $(seq 1 "${1:-5}"); do
  p=$("$PY" "$PEER" --threads 2 --epochs 12 --quiet --fused-adam --flush-denormal 2>&1 | grep RESULT_JSON \
      | python3 -c "import sys,json; print(round(json.loads(sys.stdin.read().split(' ',1)[1])['samples_per_s']))")
  line="round $r peer $p"
  for k in C H; do for ve in 1 1000; do
    if [ $k = C ]; then E=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE); else E=(env OPENBLAS_CORETYPE=Haswell); fi
    o=$("${E[@]}" "$B" bench --threads 2 --train --train-out /tmp/flow-parity --train-epochs 32 --train-validate-every $ve 2>&1 \
        | grep -A1 "train samples/s" | tail -1)
    line="$line | $k V=$ve $(echo "$o" | awk '{print $4, $5}')"
  done; done
  echo "$line"
done
