/// Dense layer kernels on raw row-major buffers: y = x·Wᵀ + b (PyTorch's `nn.Linear` convention).
///
/// Buffers (all row-major, allocated by the caller):
/// - `x`  `[rows, inputs]`    layer input
/// - `W`  `[outputs, inputs]` weight; `b` `[outputs]` bias
/// - `y`  `[rows, outputs]`   layer output (after the optional ReLU)
/// - `dy` `[rows, outputs]`   dL/d(pre-activation output); `dW` like `W`; `dx` like `x`
/// - `scratch` `[4 · max(inputs, outputs)]` for the thin-layer paths (a transposed thin weight)
///
/// Large layers go to BLAS `gemm`; thin ones (inputs or outputs ≤ 4, i.e. the first and last layer of s
/// and t when D is small) are written directly with unit-stride vector loops, where BLAS's packing costs
/// more than the products.
enum Dense {
    static let thin = 4

    /// Forward: y = x·Wᵀ + b, then y = max(y, 0) when `relu` (NaN propagates).
    @inline(__always)
    static func forward<S: FlowScalar>(
        _ x: UnsafePointer<S>, rows: Int, inputs: Int,
        weight W: UnsafePointer<S>, bias b: UnsafePointer<S>, outputs: Int,
        into y: UnsafeMutablePointer<S>, relu: Bool, scratch: UnsafeMutablePointer<S>
    ) {
        if inputs <= thin {
            // y_i = b + Σ_k x[i,k]·W[:,k], with Wᵀ copied to scratch so that W[:,k] is contiguous.
            transpose(W, rows: outputs, columns: inputs, into: scratch)
            for i in 0..<rows {
                let yi = y + i * outputs
                yi.update(from: b, count: outputs)
                for k in 0..<inputs {
                    let xk = x[i * inputs + k]
                    if xk != 0 { VectorKernels.axpy(xk, scratch + k * outputs, yi, count: outputs) }
                }
            }
            if relu { VectorKernels.relu(y, count: rows * outputs) }
            return
        }
        if outputs <= thin {
            // y[i,o] = b[o] + W[o,:]·x_i: dot products over the long input dimension.
            for i in 0..<rows {
                for o in 0..<outputs {
                    let v = b[o] + VectorKernels.dot(x + i * inputs, W + o * inputs, count: inputs)
                    y[i * outputs + o] = relu && v < 0 ? 0 : v
                }
            }
            return
        }
        S.gemm(transA: false, transB: true, m: rows, n: outputs, k: inputs,
               alpha: 1, a: x, lda: inputs, b: W, ldb: inputs, beta: 0, c: y, ldc: outputs)
        VectorKernels.addBias(y, rows: rows, columns: outputs, bias: b, relu: relu)
    }

    /// t[c, r] = m[r, c] for an `[rows, columns]` matrix.
    @inline(__always)
    static func transpose<S: FlowScalar>(_ m: UnsafePointer<S>, rows: Int, columns: Int, into t: UnsafeMutablePointer<S>) {
        for r in 0..<rows { for c in 0..<columns { t[c * rows + r] = m[r * columns + c] } }
    }

    /// Weight gradient of `y = x·Wᵀ + b`: dW (+)= dyᵀ·x `[outputs, inputs]`. With `accumulate` false the result
    /// overwrites `dW`. (The bias gradient Σ_rows dy is formed by the caller, fused with the ReLU mask.)
    @inline(__always)
    static func backwardWeight<S: FlowScalar>(
        _ dy: UnsafePointer<S>, x: UnsafePointer<S>, rows: Int, inputs: Int, outputs: Int,
        dWeight dW: UnsafeMutablePointer<S>, accumulate: Bool, scratch: UnsafeMutablePointer<S>
    ) {
        if inputs <= thin {
            // dWᵀ[k, :] = Σ_i x[i,k]·dy_i in scratch (unit stride over the outputs), then added transposed.
            scratch.update(repeating: 0, count: inputs * outputs)
            for i in 0..<rows {
                for k in 0..<inputs {
                    let xk = x[i * inputs + k]
                    if xk != 0 { VectorKernels.axpy(xk, dy + i * outputs, scratch + k * outputs, count: outputs) }
                }
            }
            for o in 0..<outputs {
                for k in 0..<inputs {
                    let g = scratch[k * outputs + o]
                    dW[o * inputs + k] = accumulate ? dW[o * inputs + k] + g : g
                }
            }
            return
        }
        if outputs <= thin {
            if !accumulate { dW.update(repeating: 0, count: outputs * inputs) }
            for i in 0..<rows {
                for o in 0..<outputs {
                    VectorKernels.axpy(dy[i * outputs + o], x + i * inputs, dW + o * inputs, count: inputs)
                }
            }
            return
        }
        if rows == 0 {
            if !accumulate { dW.update(repeating: 0, count: outputs * inputs) }
            return
        }
        S.gemm(transA: true, transB: false, m: outputs, n: inputs, k: rows,
               alpha: 1, a: dy, lda: outputs, b: x, ldb: inputs, beta: accumulate ? 1 : 0, c: dW, ldc: inputs)
    }

    /// Input gradient of `y = x·Wᵀ + b`: dx = dy·W `[rows, inputs]` (overwrites `dx`).
    @inline(__always)
    static func backwardInput<S: FlowScalar>(
        _ dy: UnsafePointer<S>, rows: Int, inputs: Int, outputs: Int,
        weight W: UnsafePointer<S>, into dx: UnsafeMutablePointer<S>, scratch: UnsafeMutablePointer<S>
    ) {
        guard rows > 0 else { return }
        if outputs <= thin {
            for i in 0..<rows {
                let dxi = dx + i * inputs
                dxi.update(repeating: 0, count: inputs)
                for o in 0..<outputs { VectorKernels.axpy(dy[i * outputs + o], W + o * inputs, dxi, count: inputs) }
            }
            return
        }
        if inputs <= thin {
            transpose(W, rows: outputs, columns: inputs, into: scratch)
            for i in 0..<rows {
                for k in 0..<inputs {
                    dx[i * inputs + k] = VectorKernels.dot(dy + i * outputs, scratch + k * outputs, count: outputs)
                }
            }
            return
        }
        S.gemm(transA: false, transB: false, m: rows, n: inputs, k: outputs,
               alpha: 1, a: dy, lda: outputs, b: W, ldb: inputs, beta: 0, c: dx, ldc: inputs)
    }
}
