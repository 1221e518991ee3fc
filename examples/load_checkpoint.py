#!/usr/bin/env python3
"""Load a flow-mpirun checkpoint in Python and compute log p(x) with NumPy alone.

    python3 examples/load_checkpoint.py runs/moons/best.safetensors runs/moons/samples.csv

(from the repository's root, after scripts/run-main.sh, which writes both files). The first argument is a
checkpoint or a run directory (then its best.safetensors, else its model.safetensors, as flow-mpirun's --model).
The second argument is optional: any CSV (optional header line) or .npy of shape [rows, D]; without it, 5
random points are scored.

A conditional model p(x | c) (trained with --context-columns K or --condition class) needs its context: a
third argument CONTEXT [rows, K] (or one row for all), else the DATA file's last K columns (a class-conditional
model: DATA's last column is the class 0 … C-1); it then prints log p(x | c), as `flow-mpirun evaluate` does.
Discrete data (a model trained with dequantisation + logit: digits, Fashion-MNIST) are dequantised with
flow-mpirun's own evaluation noise, Philox4x32-10 keyed by the run's seed (or NOISE_SEED from the environment,
as `evaluate --noise-seed`), so the numbers are those of `evaluate --data` on the same rows. The image flows
(--arch realnvp-small | realnvp-paper: checkerboard and channel-wise couplings with ResNet s/t, squeeze,
factor-out, ActNorm or batch norm with its running averages; conditional too) are reimplemented here as well.

Needs `pip install safetensors numpy`. Reimplements the forward pass (data -> latent) exactly as
flow-mpirun computes it (see docs/math.md and docs/image-flows.md), so its numbers match
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


def standardized_context(t, config, n, c):
    """The context normaliser (identity for a one-hot class); it adds nothing to the log-det."""
    if c is None:
        return None
    c_mean, c_std = t["context_normalizer.mean"].astype(np.float64), t["context_normalizer.std"].astype(np.float64)
    return (np.broadcast_to(c, (n, c.shape[1])) - c_mean) / c_std


def mlp_couplings(t, config, u, c, logdet):
    """The seed model's chain: MLP couplings [b*x, c] -> s, t, each optionally followed by an ActNorm."""
    L = config["hidden_layers"]
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
    return u


def conv3x3(t, name, x):
    """3x3 convolution, stride 1, zero padding 1 (PyTorch's Conv2d): x [n, Ci, H, W] -> [n, Co, H, W]."""
    w, b = t[f"{name}.weight"].astype(np.float64), t[f"{name}.bias"].astype(np.float64)  # [Co, Ci, 3, 3], [Co]
    n, _, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], H, W)) + b[None, :, None, None]
    for ky in range(3):
        for kx in range(3):
            out += np.einsum("oi,nihw->nohw", w[:, :, ky, kx], xp[:, :, ky:ky + H, kx:kx + W])
    return out


def resnet(t, name, u, blocks, c):
    """The s/t ResNet: conv_in (+ W_c c for a conditional flow), B blocks h + conv2(relu(conv1(relu(h)))), conv_out(relu(h))."""
    h = conv3x3(t, f"{name}.in", u)
    if c is not None:
        h += (c @ t[f"{name}.context.weight"].astype(np.float64).T)[:, :, None, None]  # [n, C] per-channel bias
    relu = lambda v: np.maximum(v, 0.0)
    for b in range(blocks):
        h = h + conv3x3(t, f"{name}.blocks.{b}.conv2", relu(conv3x3(t, f"{name}.blocks.{b}.conv1", relu(h))))
    return conv3x3(t, f"{name}.out", relu(h))


def image_couplings(t, arch, u, c, logdet):
    """The multi-scale image flow (docs/image-flows.md) on rows [n, D]: each level's checkerboard couplings,
    squeeze, channel-wise couplings, then the last half of the channels factored out (they stay in place in the
    row: the active image is always a prefix of it); then the final checkerboard couplings."""
    n = len(u)
    C, H, W = arch["input"]["channels"], arch["input"]["height"], arch["input"]["width"]

    def coupling(name, u, C, H, W, checkerboard, k):
        a = C * H * W
        x = u[:, :a].reshape(n, C, H, W)
        if checkerboard:
            parity = (np.arange(H)[:, None] + np.arange(W)[None, :]) % 2
            b = (parity == 0) if k % 2 == 0 else (parity == 1)  # b = 1: conditions (even pixels for even k)
            b = b.astype(np.float64)[None, None]
            raw = resnet(t, f"{name}.net", x * b, arch["res_blocks"], c)
            s = t[f"{name}.scale"].astype(np.float64)[None, :, None, None] * np.tanh(raw[:, :C]) * (1 - b)
            y = b * x + (1 - b) * (x * np.exp(s) + raw[:, C:])
        else:
            half = C // 2
            cond, tr = (slice(0, half), slice(half, C)) if k % 2 == 0 else (slice(half, C), slice(0, half))
            raw = resnet(t, f"{name}.net", x[:, cond], arch["res_blocks"], c)
            s = t[f"{name}.scale"].astype(np.float64)[None, :, None, None] * np.tanh(raw[:, :half])
            y = x.copy()
            y[:, tr] = x[:, tr] * np.exp(s) + raw[:, half:]
        logdet[:] += s.reshape(n, -1).sum(1)
        if arch.get("act_norm", True):  # ActNorm: y * exp(log_scale_c) + bias_c, log-det H*W*sum(log_scale)
            ls = t[f"{name}.actnorm.log_scale"].astype(np.float64)
            y = y * np.exp(ls)[None, :, None, None] + t[f"{name}.actnorm.bias"].astype(np.float64)[None, :, None, None]
            logdet[:] += H * W * ls.sum()
        if arch.get("batch_norm", False):  # batch norm, evaluation: running averages, eps 1e-5
            bn = lambda key: t[f"{name}.batchnorm.{key}"].astype(np.float64)
            g = np.exp(bn("log_scale")) / np.sqrt(bn("running_var") + 1e-5)
            y = (y - bn("running_mean")[None, :, None, None]) * g[None, :, None, None] + bn("bias")[None, :, None, None]
            logdet[:] += H * W * np.log(g).sum()
        u = u.copy()
        u[:, :a] = y.reshape(n, a)
        return u

    for level in range(arch["levels"]):
        for k in range(arch["checkerboard_couplings"]):
            u = coupling(f"levels.{level}.checkerboard.{k}", u, C, H, W, True, k)
        # squeeze: [C, H, W] -> [4C, H/2, W/2], channel 4c + 2dy + dx holds pixel (2i + dy, 2j + dx) of channel c
        a = C * H * W
        x = u[:, :a].reshape(n, C, H // 2, 2, W // 2, 2).transpose(0, 1, 3, 5, 2, 4)
        u = u.copy()
        u[:, :a] = x.reshape(n, a)
        C, H, W = 4 * C, H // 2, W // 2
        for k in range(arch["channel_couplings"]):
            u = coupling(f"levels.{level}.channel.{k}", u, C, H, W, False, k)
        C //= 2  # factor-out: the last C/2 channels go to the latent where they are
    for k in range(arch["final_couplings"]):
        u = coupling(f"final.checkerboard.{k}", u, C, H, W, True, k)
    return u


def philox4x32_10(key, c0, c1, c2, c3):
    """Philox4x32-10 (Salmon et al., SC 2011) on uint64 arrays holding 32-bit words."""
    m32 = np.uint64(0xFFFFFFFF)
    x0, x1, x2, x3 = (np.asarray(v, dtype=np.uint64) & m32 for v in (c0, c1, c2, c3))
    k0, k1 = np.uint64(key & 0xFFFFFFFF), np.uint64(key >> 32)
    for r in range(10):
        if r > 0:
            k0, k1 = (k0 + np.uint64(0x9E3779B9)) & m32, (k1 + np.uint64(0xBB67AE85)) & m32
        p0, p1 = np.uint64(0xD2511F53) * x0, np.uint64(0xCD9E8D57) * x2
        x0, x1, x2, x3 = ((p1 >> np.uint64(32)) ^ x1 ^ k0), (p1 & m32), ((p0 >> np.uint64(32)) ^ x3 ^ k1), (p0 & m32)
    return x0, x1, x2, x3


def evaluation_noise(seed, rows, dim):
    """flow-mpirun's fixed dequantisation noise of `evaluate`: u[e] uniform in [0, 1) from the 64 bits of Philox
    block e of stream (seed, purpose 6 = dequantisation, substream 0xFFFFFFFF), e = row * D + column."""
    e = np.arange(rows * dim, dtype=np.uint64)
    x0, x1, _, _ = philox4x32_10(seed, e & np.uint64(0xFFFFFFFF), e >> np.uint64(32), 6, 0xFFFFFFFF)
    return (((x0 << np.uint64(32)) | x1) >> np.uint64(11)).astype(np.float64).reshape(rows, dim) * 2.0 ** -53


def log_prob(t, config, x, c=None, noise_seed=0):
    """log p(x) (or log p(x | c)) in nats per row, data units; x is [rows, D], c [rows, K] for a conditional model.
    Discrete data (dequantisation + logit) are dequantised with flow-mpirun's evaluation noise of `noise_seed`."""
    n, d = x.shape
    logdet = np.zeros(n)
    pre = (config.get("preprocessing") or {}).get("dequantizeLogit")
    if pre:
        levels, alpha = pre["levels"], pre["alpha"]
        s = alpha + (1 - 2 * alpha) * (x + evaluation_noise(noise_seed, n, d)) / levels
        x = np.log(s) - np.log1p(-s)  # logit
        logdet += d * (math.log(1 - 2 * alpha) - math.log(levels)) - (np.log(s) + np.log1p(-s)).sum(1)
    mean, std = t["normalizer.mean"].astype(np.float64), t["normalizer.std"].astype(np.float64)
    u = (x - mean) / std
    logdet += -np.log(std).sum()
    c = standardized_context(t, config, n, c)
    if config.get("image_flow"):
        u = image_couplings(t, config["image_flow"], u, c, logdet)
    else:
        u = mlp_couplings(t, config, u, c, logdet)
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
    if os.path.isdir(path):
        # A run directory, as flow-mpirun's --model takes it: its best model, else its last checkpoint (the last
        # first for a run with --no-keep-best, which its config.json records).
        names = ["best.safetensors", "model.safetensors"]
        try:
            with open(os.path.join(path, "config.json")) as f:
                if (json.load(f).get("options") or {}).get("keep_best") is False:
                    names.reverse()
        except (OSError, ValueError):
            pass
        for name in names:
            if os.path.isfile(os.path.join(path, name)):
                path = os.path.join(path, name)
                break
        else:
            sys.exit(f"error: {path}: a directory without best.safetensors or model.safetensors (not a run directory?)")
    for given in [path] + sys.argv[2:3]:
        if not os.path.isfile(given):
            sys.exit(f"error: {given}: no such file (scripts/run-main.sh writes runs/moons/best.safetensors and "
                     "runs/moons/samples.csv; run this from the repository's root)")
    tensors, config, meta = load(path)
    print(f"{path}: {config}")
    first = "couplings.0.s.0.weight" if "couplings.0.s.0.weight" in tensors else sorted(k for k in tensors if k.endswith(".net.in.weight"))[0]
    print(f"{len(tensors)} tensors, e.g. {first} {tensors[first].shape}")
    if "training.step" in tensors:
        print(f"training step {int(tensors['training.step'])}, Adam step {int(tensors['training.optimizer_step'])}")
    if len(sys.argv) > 2:
        x = read_table(sys.argv[2])
    else:
        rng = np.random.default_rng(0)
        pre = (config.get("preprocessing") or {}).get("dequantizeLogit")
        x = (rng.integers(0, pre["levels"], size=(5, config["dim"])).astype(np.float64) if pre else
             rng.normal(size=(5, config["dim"])) * tensors["normalizer.std"] + tensors["normalizer.mean"])
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
    pre = (config.get("preprocessing") or {}).get("dequantizeLogit")
    if pre and np.any((x != np.floor(x)) | (x < 0) | (x >= pre["levels"])):
        sys.exit(f"error: the model was trained on discrete data (integers 0..{pre['levels'] - 1}); the data hold other values")
    noise_seed = int(os.environ.get("NOISE_SEED", json.loads(meta.get("training", "{}")).get("seed", 0)))
    lp = log_prob(tensors, config, x.astype(np.float64), c, noise_seed)
    what = "log p(x | c)" if k else "log p(x)"
    print(f"mean {what} over {len(x)} rows: {lp.mean():.9f} nats; NLL {-lp.mean():.9f}; "
          f"bits/dim {-lp.mean() / (d * math.log(2)):.6f}")


if __name__ == "__main__":
    main()
