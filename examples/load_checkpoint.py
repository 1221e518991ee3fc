#!/usr/bin/env python3
"""Load a flow-mpirun checkpoint in Python and compute log p(x) with NumPy alone.

    python3 examples/load_checkpoint.py runs/moons/best.safetensors runs/moons/samples.csv

(from the repository's root, after scripts/run-main.sh, which writes both files). The second argument is
optional: any CSV (optional header line) or .npy of shape [rows, D]; without it, 5 random points are scored.

A conditional model p(x | c) (trained with --context-columns K or --condition class) needs its context: a
third argument CONTEXT [rows, K] (or one row for all), else the DATA file's last K columns (a class-conditional
model: DATA's last column is the class 0 … C-1); it then prints log p(x | c), as `flow-mpirun evaluate` does.
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


def log_prob(t, config, x, c=None):
    """log p(x) (or log p(x | c)) in nats per row, data units; x is [rows, D], c [rows, K] for a conditional model."""
    mean, std = t["normalizer.mean"].astype(np.float64), t["normalizer.std"].astype(np.float64)
    u = (x - mean) / std
    logdet = np.full(len(x), -np.log(std).sum())
    L = config["hidden_layers"]
    if config.get("context_features"):
        # The context normaliser (identity for a one-hot class); it adds nothing to the log-det.
        c_mean, c_std = t["context_normalizer.mean"].astype(np.float64), t["context_normalizer.std"].astype(np.float64)
        c = (np.broadcast_to(c, (len(x), c.shape[1])) - c_mean) / c_std
    for i in range(config["couplings"]):
        m = t[f"couplings.{i}.mask"].astype(np.float64)
        h = u * m
        if c is not None:
            h = np.concatenate([h, c], axis=1)  # the s and t networks read [b*x, c]
        s = mlp(t, f"couplings.{i}.s", h, L, tanh=True)
        if config.get("learnable_scale"):
            s = s * t[f"couplings.{i}.scale"]
        s = s * (1 - m)
        tt = mlp(t, f"couplings.{i}.t", h, L, tanh=False) * (1 - m)
        u = u * m + (1 - m) * (u * np.exp(s) + tt)
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
    d, k, classes = config["dim"], config.get("context_features", 0), config.get("context_classes")
    c = None
    if k:
        if len(sys.argv) > 3:
            c = read_table(sys.argv[3])
        elif len(sys.argv) > 2 and classes and x.shape[1] == d + 1:
            labels = x[:, d]  # the last column is the class 0 ... C-1
            bad = np.flatnonzero((labels != np.round(labels)) | (labels < 0) | (labels >= classes))
            if len(bad):
                sys.exit(f"error: {sys.argv[2]}: row {bad[0] + 1} has class {labels[bad[0]]}; the model has classes 0..{classes - 1}")
            c = np.eye(classes)[labels.astype(int)]
            x = x[:, :d]
        elif len(sys.argv) > 2 and x.shape[1] == d + k:
            x, c = x[:, :d], x[:, d:]
        elif len(sys.argv) > 2:
            sys.exit(f"error: {sys.argv[2]}: {x.shape[1]} columns; the conditional model needs D = {d} features and its "
                     f"context (the last {k} columns{', or the class' if classes else ''}), or a CONTEXT file")
        else:
            c = np.zeros((1, k))
            if classes:
                c[0, 0] = 1  # class 0
        if c.shape[1] != k or len(c) not in (1, len(x)):
            sys.exit(f"error: the context has shape {c.shape}; the model needs [{len(x)} or 1, {k}]")
        c = c.astype(np.float64)
    if x.shape[1] != d:
        sys.exit(f"error: the data have {x.shape[1]} columns; the model has D = {d}")
    lp = log_prob(tensors, config, x.astype(np.float64), c)
    what = "log p(x | c)" if k else "log p(x)"
    print(f"mean {what} over {len(x)} rows: {lp.mean():.6f} nats; NLL {-lp.mean():.6f}; "
          f"bits/dim {-lp.mean() / (d * math.log(2)):.6f}")


if __name__ == "__main__":
    main()
