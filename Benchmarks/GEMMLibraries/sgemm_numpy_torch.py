# Single-threaded sgemm of the seed step's main shape: numpy's OpenBLAS against PyTorch (MKL) (BENCHMARKS.md §11).
#   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 ../venv-torch/bin/python sgemm_numpy_torch.py
import time, numpy as np, torch
torch.set_num_threads(1)
def rate(f, flops, secs=1.0):
    f(); n=0; t=time.perf_counter()
    while time.perf_counter()-t < secs:
        f(); n+=1
    return flops*n/(time.perf_counter()-t)/1e9
for m in (128, 256):
    a=np.random.rand(m,256).astype(np.float32); b=np.random.rand(256,256).astype(np.float32)
    ta=torch.from_numpy(a); tb=torch.from_numpy(b)
    fl=2*m*256*256
    print(f"m={m}: numpy {np.__version__} ({np.show_config.__module__}) {rate(lambda: a@b.T, fl):.1f} GFLOP/s; torch (MKL) {rate(lambda: ta@tb.T, fl):.1f} GFLOP/s")
