#!/usr/bin/env bash
# The conditional-flow checks of BENCHMARKS.md §12, with the release build:
#   1. two moons, the seed model with and without the moon as context (--condition class): held-out NLLs, the
#      conditional model's marginal NLL, and the share of class-k samples on moon k;
#   2. a linear-Gaussian x | c ~ N(A·c + b, L·Lᵀ) (D = 3, K = 2) with a known conditional log-likelihood, for
#      three data seeds.
#
#   scripts/conditional-checks.sh [OUT_DIR]     # default /tmp/flow-conditional-checks; needs python3 with numpy
#   FLOW_CHECKS=lg scripts/conditional-checks.sh   # only the linear-Gaussian part (moons: FLOW_CHECKS=moons)
#
# About 20 minutes on a 2-core machine (the two seed-model runs are 300 epochs each).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
out="${1:-/tmp/flow-conditional-checks}"
checks="${FLOW_CHECKS:-moons lg}"
swift build -c release --product flow-mpirun >/dev/null
bin="$PWD/.build/release/flow-mpirun"
mkdir -p "$out"
cd "$out"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(' '.join(str(d.get(k)) for k in sys.argv[1:]))" "$@"; }

if [[ " $checks " == *" moons "* ]]; then
    echo "== two moons: the seed model, unconditional and with the moon as context"
    "$bin" train --dataset moons --out moons-plain --force --quiet
    "$bin" train --dataset moons --condition class --out moons-class --force --quiet
    plain=$("$bin" evaluate --model moons-plain --json | json nll)
    read -r cond marginal < <("$bin" evaluate --model moons-class --json | json nll marginal_nll)
    for k in 0 1; do "$bin" sample --model moons-class --class "$k" -n 20000 --seed 5 --out "class$k.csv" 2>/dev/null; done
    python3 - "$plain" "$cond" "$marginal" <<'EOF'
import math, sys
import numpy as np
plain, cond, marginal = map(float, sys.argv[1:4])
def moon(p):
    """The nearer of the two noise-free arcs: 0 = upper (centre (0, 0)), 1 = lower (centre (1, 0.5))."""
    def distance(p, centre, upper):
        # The arc's nearest point: the radial projection when its angle lies on the arc, else the nearer end
        # (clipping the angle alone would send a point just below (-1, 0) to the far end (1, 0)).
        v = p - centre
        lo, hi = (0, np.pi) if upper else (-np.pi, 0)
        a = np.clip(np.arctan2(v[:, 1], v[:, 0]), lo, hi)
        on_arc = np.linalg.norm(p - (centre + np.stack([np.cos(a), np.sin(a)], 1)), axis=1)
        ends = [np.linalg.norm(p - (centre + np.array([np.cos(e), np.sin(e)])), axis=1) for e in (lo, hi)]
        return np.minimum(on_arc, np.minimum(*ends))
    return (distance(p, np.array([1.0, 0.5]), False) < distance(p, np.array([0.0, 0.0]), True)).astype(int)
rng = np.random.default_rng(0)
a = np.linspace(0, np.pi, 200000)
upper = np.stack([np.cos(a), np.sin(a)], 1) + 0.05 * rng.standard_normal((len(a), 2))
lower = np.stack([1 - np.cos(a), 0.5 - np.sin(a)], 1) + 0.05 * rng.standard_normal((len(a), 2))
# The fitted boundary of the issue's check: a 5-nearest-neighbour vote among 3000 labelled moons drawn like the
# training set (noise 0.05, half on each moon; the tool test does the same with the run's own training rows).
fa = rng.uniform(0, np.pi, 3000)
fit_x = np.concatenate([np.stack([np.cos(fa[:1500]), np.sin(fa[:1500])], 1),
                        np.stack([1 - np.cos(fa[1500:]), 0.5 - np.sin(fa[1500:])], 1)]) + 0.05 * rng.standard_normal((3000, 2))
fit_y = np.repeat([0, 1], 1500)
def knn(p, k=5):
    out = np.empty(len(p), dtype=int)
    for s in range(0, len(p), 2000):
        d = ((p[s:s + 2000, None, :] - fit_x[None, :, :]) ** 2).sum(-1)
        out[s:s + 2000] = (fit_y[np.argpartition(d, k, axis=1)[:, :k]].sum(1) > k // 2).astype(int)
    return out
print(f"validation NLL: p(x) {plain:.4f}, p(x | moon) {cond:.4f}; gain {plain - cond:.4f} nats (ln 2 = {math.log(2):.4f})")
print(f"the conditional model's marginal -log sum_c pi_c p(x | c): {marginal:.4f}; minus its conditional NLL: {marginal - cond:.4f}")
for k in (0, 1):
    x = np.loadtxt(f"class{k}.csv", delimiter=",", skiprows=1)
    print(f"class {k}: {100 * (knn(x) == k).mean():.2f} % of {len(x)} samples on moon {k}'s side of the fitted (5-NN) boundary, "
          f"{100 * (moon(x) == k).mean():.2f} % nearer moon {k}'s noise-free arc")
print(f"the data themselves (noise 0.05): {100 * (knn(upper) == 0).mean():.2f} % / {100 * (knn(lower) == 1).mean():.2f} % by the fitted boundary, "
      f"{100 * (moon(upper) == 0).mean():.2f} % / {100 * (moon(lower) == 1).mean():.2f} % by the nearer arc")
EOF
fi

if [[ " $checks " == *" lg "* ]]; then
    echo "== linear-Gaussian x | c ~ N(A c + b, L L^T), D = 3, K = 2: 50 000 training rows, 5 000 test rows"
    for seed in 0 1 2; do
        truth=$(python3 - "$seed" <<'EOF'
import sys
import numpy as np
rng = np.random.default_rng(int(sys.argv[1]))
A = np.array([[1.0, -0.5], [0.3, 0.8], [-0.7, 0.2]]); b = np.array([0.5, -1.0, 2.0])
L = np.array([[0.6, 0, 0], [0.3, 0.5, 0], [-0.2, 0.4, 0.3]]); S = L @ L.T
for name, n in (("train", 50000), ("test", 5000)):
    c = rng.standard_normal((n, 2))
    x = c @ A.T + b + rng.standard_normal((n, 3)) @ L.T
    np.savetxt(f"lg-{name}.csv", np.hstack([x, c]), delimiter=",", header="x0,x1,x2,c0,c1", comments="")
r = x - (c @ A.T + b)
ll = -0.5 * np.einsum("ni,ij,nj->n", r, np.linalg.inv(S), r) - 0.5 * np.log(np.linalg.det(2 * np.pi * S))
print(-ll.mean())
EOF
)
        "$bin" train --data lg-train.csv --context-columns 2 --hidden 32 --hidden-layers 2 --couplings 4 --lr 2e-3 \
            --schedule cosine --batch-size 256 --epochs 30 --out "lg-$seed" --force --quiet --no-plots >/dev/null
        flow=$("$bin" evaluate --model "lg-$seed" --data lg-test.csv --json | json nll)
        python3 -c "import sys; f, t = map(float, sys.argv[1:3]); print(f'seed {sys.argv[3]}: held-out conditional NLL flow {f:.4f}, true {t:.4f}, difference {f - t:+.4f} nats')" "$flow" "$truth" "$seed"
    done
fi
