#!/usr/bin/env bash
# A model's bytes, for checking that a change to the code changes no arithmetic (issue 13's "bit for bit").
#
#   scripts/seed-golden.sh BINARY OUTDIR [extra train flags…]
#
# Trains `--dataset moons --epochs 3 --seed 7` (the seed model, unless extra flags change it) in default and
# --reproducible mode at 1 rank × 1 thread, 1 × 2 and `mpirun -np 2` × 1, and prints one line per run: the layout,
# evaluate --json's NLL, and the SHA-256 of the checkpoint, of `sample -n 500 --seed 3` and of `encode` of the
# first 200 samples (its rows: the header is z0,z1 since 5566b97, x0,x1 before); then one small dequantising digits run. OpenBLAS is pinned to its Haswell kernels so that
# the bytes do not depend on which kernels this CPU would pick. Compare two builds with
#   scripts/seed-golden.sh old/flow-mpirun /tmp/a > a.txt; scripts/seed-golden.sh .build/release/flow-mpirun /tmp/b > b.txt; diff a.txt b.txt
# (a debug and a release build differ in the last bits; compare like with like). The debug build's values of
# a small model are pinned in Tests/FlowToolTests/SeedGoldenTests.swift.
set -euo pipefail
bin=$1; out=$2; shift 2
extra=("$@")
mkdir -p "$out"
export OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1
root=(); [ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
nll() { "$bin" evaluate --model "$1" --json --threads 1 | python3 -c 'import json,sys; print(repr(json.load(sys.stdin)["nll"]))'; }
hash() { sha256sum < "$1" | cut -c1-64; }
for mode in default reproducible; do
  flags=(); [ $mode = reproducible ] && flags=(--reproducible)
  for layout in 1x1 1x2 2x1; do
    dir="$out/$mode-$layout"
    args=(train --dataset moons --epochs 3 --seed 7 "${extra[@]}" --out "$dir" --force --no-plots --quiet "${flags[@]}")
    case $layout in
      1x1) "$bin" "${args[@]}" --threads 1 ;;
      1x2) "$bin" "${args[@]}" --threads 2 ;;
      2x1) mpirun -np 2 --bind-to none "${root[@]}" -x OPENBLAS_CORETYPE -x OPENBLAS_NUM_THREADS "$bin" "${args[@]}" --threads 1 ;;
    esac >/dev/null
    "$bin" sample --model "$dir/model.safetensors" -n 500 --seed 3 --out "$dir/samples-golden.csv" --threads 1 2>/dev/null
    head -201 "$dir/samples-golden.csv" > "$dir/encode-input.csv"
    "$bin" encode --model "$dir/model.safetensors" --data "$dir/encode-input.csv" --out "$dir/latents-golden.csv" --threads 1 2>/dev/null
    echo "$mode $layout nll=$(nll "$dir/model.safetensors") model=$(hash "$dir/model.safetensors") sample=$(hash "$dir/samples-golden.csv") encode=$(tail -n +2 "$dir/latents-golden.csv" | sha256sum | cut -c1-64)"
  done
done
# The dequantising path (digits: uniform dequantisation + logit), one small run.
dir="$out/digits"
"$bin" train --dataset digits --epochs 2 --hidden 32 --hidden-layers 1 --couplings 2 --seed 7 --threads 2 --out "$dir" --force --no-plots --quiet >/dev/null
"$bin" sample --model "$dir/model.safetensors" -n 50 --seed 3 --out "$dir/samples-golden.csv" --threads 1 2>/dev/null
echo "digits 1x2 nll=$(nll "$dir/model.safetensors") model=$(hash "$dir/model.safetensors") sample=$(hash "$dir/samples-golden.csv")"
