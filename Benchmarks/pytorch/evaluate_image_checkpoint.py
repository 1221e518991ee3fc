#!/usr/bin/env python3
"""An independent check of flow-mpirun's image-flow likelihoods: loads a `realnvp-small` checkpoint (safetensors, read
with NumPy) into the modules of the PyTorch peer `torch_image_realnvp.py` (../shared/peers, or PEER_DIR) and computes
the test bits/dim of the first N Fashion-MNIST test images with PyTorch's own convolutions, preprocessing and log-dets.

    ../venv-torch/bin/python Benchmarks/pytorch/evaluate_image_checkpoint.py runs/fashion/model.safetensors 2000

Conventions mapped: our checkerboard coupling k conditions on even (y + x) for even k; our ActNorm is y = x·e^ls + b
(the peer's (x + loc)·e^logs); our factor-out keeps the first half of the channels active (the peer's the second).
Compare with `flow-mpirun evaluate --model DIR --limit-rows N` (its dequantisation noise differs: expect agreement to
about 0.01 bits/dim on 2000 images). Measured: BENCHMARKS.md §13.
"""
import json, math, os, struct, sys
import numpy as np, torch
sys.path.insert(0, os.environ.get("PEER_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/peers")))
import torch_image_realnvp as peer

def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__": continue
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "F64": np.float64, "I64": np.int64}[v["dtype"]]
        out[k] = np.frombuffer(data[a:b], dtype=dt).reshape(v["shape"])
    return out

t = read_safetensors(sys.argv[1])
m = peer.RealNVP(32, 2)
def T(name): return torch.from_numpy(t[name].copy())
def load_stage(mods, prefix, kind, shape_hw):
    for i in range(0, len(mods), 2):
        k = i // 2
        c, an = mods[i], mods[i + 1]
        name = f"{prefix}.{k}"
        c.net.inp.weight.data = T(f"{name}.net.in.weight"); c.net.inp.bias.data = T(f"{name}.net.in.bias")
        for b, (a1, a2) in enumerate(c.net.blocks):
            a1.weight.data = T(f"{name}.net.blocks.{b}.conv1.weight"); a1.bias.data = T(f"{name}.net.blocks.{b}.conv1.bias")
            a2.weight.data = T(f"{name}.net.blocks.{b}.conv2.weight"); a2.bias.data = T(f"{name}.net.blocks.{b}.conv2.bias")
        c.net.out.weight.data = T(f"{name}.net.out.weight"); c.net.out.bias.data = T(f"{name}.net.out.bias")
        c.scale.data = T(f"{name}.scale").view(1, -1, 1, 1)
        if kind == "checker":
            h, w = shape_hw
            # ours: coupling k conditions on even (y+x) when k is even; mask b = 1 on conditioning pixels
            yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            even = ((yy + xx) % 2 == 0).float()
            c.mask = (even if k % 2 == 0 else 1 - even).view(1, 1, h, w)
        # ActNorm: ours y = x e^ls + b; peer y = (x + loc) e^logs
        ls = T(f"{name}.actnorm.log_scale"); b = T(f"{name}.actnorm.bias")
        an.logs.data = ls.view(1, -1, 1, 1); an.loc.data = (b * torch.exp(-ls)).view(1, -1, 1, 1); an.ready.fill_(1)
load_stage(m.l1a, "levels.0.checkerboard", "checker", (28, 28))
load_stage(m.l1b, "levels.0.channel", "channel", None)
load_stage(m.l2a, "levels.1.checkerboard", "checker", (14, 14))
load_stage(m.l2b, "levels.1.channel", "channel", None)
load_stage(m.fin, "final.checkerboard", "checker", (7, 7))
# the peer's channel coupling: parity 0 → first half conditions (as ours for k even)

def forward_ours(y):
    ld = torch.zeros(y.shape[0])
    x, ld = m.run(m.l1a, y, ld); x = peer.squeeze(x); x, ld = m.run(m.l1b, x, ld)
    x, z1 = x[:, :2], x[:, 2:]          # ours keeps the first half active, the last half goes to the latent
    x, ld = m.run(m.l2a, x, ld); x = peer.squeeze(x); x, ld = m.run(m.l2b, x, ld)
    x, z2 = x[:, :4], x[:, 4:]
    z3, ld = m.run(m.fin, x, ld)
    z = torch.cat([z1.flatten(1), z2.flatten(1), z3.flatten(1)], 1)
    return -0.5 * (z ** 2).sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi) + ld

x = torch.from_numpy(peer.read_idx_images("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").copy())[: int(sys.argv[2]) if len(sys.argv) > 2 else 10000]
gen = torch.Generator().manual_seed(12345)
tot = 0.0
with torch.no_grad():
    for i in range(0, len(x), 500):
        y, ld = peer.preprocess(x[i:i + 500], gen)
        tot += (-(forward_ours(y) + ld)).sum().item()
print("torch re-evaluation of the checkpoint: test bits/dim", tot / len(x) / (784 * math.log(2)), "on", len(x), "images")
