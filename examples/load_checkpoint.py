#!/usr/bin/env python3
"""Load a flow-mpirun checkpoint in Python and compute log p(x) with NumPy alone.

    python3 examples/load_checkpoint.py runs/moons/best.safetensors runs/moons/samples.csv

(from the repository's root, after scripts/run-main.sh, which writes both files). The second argument is
optional: any CSV (optional header line) or .npy of shape [rows, D]; without it, 5 random points are scored.
Needs `pip install safetensors numpy`. Reimplements the forward pass (data -> latent) exactly as
flow-mpirun computes it (see docs/math.md), so its numbers match
`flow-mpirun evaluate --model runs/moons --data runs/moons/samples.csv`.
"""
import json
import math
import os
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


def load(path):
    tensors = load_file(path)
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata()
    config = json.loads(meta["model"])
    return tensors, config, meta


def mlp(t, prefix, h, layers, tanh):
    for j in range(layers + 1):
        w, b = t[f"{prefix}.{j}.weight"].astype(np.float64), t[f"{prefix}.{j}.bias"].astype(np.float64)
        h = h @ w.T + b  # Dense: y = x W^T + b, weight [out, in]
        if j < layers:
            h = np.maximum(h, 0.0)
    return np.tanh(h) if tanh else h


def log_prob(t, config, x):
    """log p(x) in nats per row, data units; x is [rows, D]."""
    mean, std = t["normalizer.mean"].astype(np.float64), t["normalizer.std"].astype(np.float64)
    u = (x - mean) / std
    logdet = np.full(len(x), -np.log(std).sum())
    L = config["hidden_layers"]
    for i in range(config["couplings"]):
        m = t[f"couplings.{i}.mask"].astype(np.float64)
        h = u * m
        s = mlp(t, f"couplings.{i}.s", h, L, tanh=True)
        if config.get("learnable_scale"):
            s = s * t[f"couplings.{i}.scale"]
        s = s * (1 - m)
        tt = mlp(t, f"couplings.{i}.t", h, L, tanh=False) * (1 - m)
        u = h + (1 - m) * (u * np.exp(s) + tt)
        logdet += s.sum(1)
        if config.get("act_norm"):  # ActNorm after the coupling: y = u * exp(log_scale) + bias
            log_scale = t[f"actnorms.{i}.log_scale"].astype(np.float64)
            u = u * np.exp(log_scale) + t[f"actnorms.{i}.bias"]
            logdet += log_scale.sum()
    d = x.shape[1]
    return -0.5 * (u * u).sum(1) - 0.5 * d * math.log(2 * math.pi) + logdet


def read_table(path):
    """A .npy file, or a CSV with an optional header line."""
    if path.endswith(".npy"):
        return np.load(path)
    with open(path) as f:
        first = f.readline()
    try:
        [float(v) for v in first.split(",")]
        skip = 0
    except ValueError:
        skip = 1
    return np.loadtxt(path, delimiter=",", ndmin=2, skiprows=skip)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "runs/moons/best.safetensors"
    for given in sys.argv[1:3] or [path]:
        if not os.path.isfile(given):
            sys.exit(f"error: {given}: no such file (scripts/run-main.sh writes runs/moons/best.safetensors and "
                     "runs/moons/samples.csv; run this from the repository's root)")
    tensors, config, meta = load(path)
    print(f"{path}: {config}")
    if config.get("preprocessing"):
        # Discrete data: flow-mpirun evaluates x + u with its own seeded noise u and the logit transform, which
        # this short script does not reproduce; refuse rather than print a number that means something else.
        sys.exit(f"error: {path}: the model was trained with preprocessing {config['preprocessing']} "
                 "(dequantisation + logit of discrete data); this script handles continuous models only: "
                 "use `flow-mpirun evaluate` for it")
    print(f"{len(tensors)} tensors, e.g. couplings.0.s.0.weight {tensors['couplings.0.s.0.weight'].shape}")
    if "training.step" in tensors:
        print(f"training step {int(tensors['training.step'])}, Adam step {int(tensors['training.optimizer_step'])}")
    if len(sys.argv) > 2:
        x = read_table(sys.argv[2])
    else:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(5, config["dim"])) * tensors["normalizer.std"] + tensors["normalizer.mean"]
    lp = log_prob(tensors, config, x.astype(np.float64))
    print(f"mean log p(x) over {len(x)} rows: {lp.mean():.6f} nats; NLL {-lp.mean():.6f}; "
          f"bits/dim {-lp.mean() / (config['dim'] * math.log(2)):.6f}")


if __name__ == "__main__":
    main()
