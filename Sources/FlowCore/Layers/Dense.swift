/// Dense layer kernels on raw row-major buffers: y = x·Wᵀ + b (PyTorch's `nn.Linear` convention).
///
/// Buffers (all row-major, allocated by the caller):
/// - `x`  `[rows, inputs]`   layer input
/// - `W`  `[outputs, inputs]` weight; `b` `[outputs]` bias
/// - `y`  `[rows, outputs]`  layer output (after the optional ReLU)
/// - `dy` `[rows, outputs]`  dL/d(pre-activation output); `dW`, `db` like `W`, `b`; `dx` like `x`
enum Dense {
    /// Forward: y = x·Wᵀ + b, then y = max(y, 0) when `relu` (NaN propagates).
    @inline(__always)
    static func forward<S: FlowScalar>(
        _ x: UnsafePointer<S>, rows: Int, inputs: Int,
        weight W: UnsafePointer<S>, bias b: UnsafePointer<S>, outputs: Int,
        into y: UnsafeMutablePointer<S>, relu: Bool
    ) {
        if inputs <= 4 {
            // Thin input (K = D): BLAS packing costs more than the products; a direct loop vectorises over
            // the outputs.
            for i in 0..<rows {
                let yi = y + i * outputs, xi = x + i * inputs
                for o in 0..<outputs { yi[o] = b[o] }
                for k in 0..<inputs {
                    let xk = xi[k]
                    let wk = W + k
                    for o in 0..<outputs { yi[o] += xk * wk[o * inputs] }
                }
                if relu { for o in 0..<outputs { let v = yi[o]; yi[o] = v < 0 ? 0 : v } }
            }
            return
        }
        S.gemm(transA: false, transB: true, m: rows, n: outputs, k: inputs,
               alpha: 1, a: x, lda: inputs, b: W, ldb: inputs, beta: 0, c: y, ldc: outputs)
        for i in 0..<rows {
            let yi = y + i * outputs
            if relu {
                for o in 0..<outputs { let v = yi[o] + b[o]; yi[o] = v < 0 ? 0 : v }
            } else {
                for o in 0..<outputs { yi[o] += b[o] }
            }
        }
    }

    /// Parameter gradients of `y = x·Wᵀ + b`: dW (+)= dyᵀ·x, db (+)= Σ_rows dy. With `accumulate` false the
    /// results overwrite `dW`, `db`; otherwise they are added.
    @inline(__always)
    static func backwardParameters<S: FlowScalar>(
        _ dy: UnsafePointer<S>, x: UnsafePointer<S>, rows: Int, inputs: Int, outputs: Int,
        dWeight dW: UnsafeMutablePointer<S>, dBias db: UnsafeMutablePointer<S>, accumulate: Bool
    ) {
        if !accumulate {
            dW.update(repeating: 0, count: outputs * inputs)
            db.update(repeating: 0, count: outputs)
        }
        guard rows > 0 else { return }
        if inputs <= 4 || outputs <= 4 {
            // Thin side: rank-`rows` update written directly.
            for i in 0..<rows {
                let dyi = dy + i * outputs, xi = x + i * inputs
                for o in 0..<outputs {
                    let g = dyi[o]
                    let dWo = dW + o * inputs
                    for k in 0..<inputs { dWo[k] += g * xi[k] }
                }
            }
        } else {
            S.gemm(transA: true, transB: false, m: outputs, n: inputs, k: rows,
                   alpha: 1, a: dy, lda: outputs, b: x, ldb: inputs, beta: 1, c: dW, ldc: inputs)
        }
        for i in 0..<rows {
            let dyi = dy + i * outputs
            for o in 0..<outputs { db[o] += dyi[o] }
        }
    }

    /// Input gradient of `y = x·Wᵀ + b`: dx = dy·W `[rows, inputs]` (overwrites `dx`).
    @inline(__always)
    static func backwardInput<S: FlowScalar>(
        _ dy: UnsafePointer<S>, rows: Int, inputs: Int, outputs: Int,
        weight W: UnsafePointer<S>, into dx: UnsafeMutablePointer<S>
    ) {
        guard rows > 0 else { return }
        if outputs <= 4 || inputs <= 4 {
            for i in 0..<rows {
                let dxi = dx + i * inputs, dyi = dy + i * outputs
                for k in 0..<inputs { dxi[k] = 0 }
                for o in 0..<outputs {
                    let g = dyi[o]
                    let Wo = W + o * inputs
                    for k in 0..<inputs { dxi[k] += g * Wo[k] }
                }
            }
            return
        }
        S.gemm(transA: false, transB: false, m: rows, n: inputs, k: outputs,
               alpha: 1, a: dy, lda: outputs, b: W, ldb: inputs, beta: 0, c: dx, ldc: inputs)
    }
}
