import CFlowSupport

/// 3×3 convolution kernels, stride 1, zero padding 1 (the s/t networks of RealNVP's convolutional couplings), by
/// im2col + the system BLAS `gemm`, on raw buffers in the channel-major batch layout `[C, n, H, W]` ("CNHW": one
/// plane of n·H·W values per channel), so that every product is one large GEMM over all n images at once:
///
///     forward          Y[Co, N]  = W[Co, Ci·9] · cols(X)[Ci·9, N] + b         N = n·H·W
///     backward weight  dW[Co, Ci·9] (+)= dY[Co, N] · cols(X)ᵀ,   db[Co] (+)= Σ_N dY
///     backward data    dX[Ci, N] = W′[Ci, Co·9] · cols(dY)         W′ = W flipped and transposed
///
/// The weight is PyTorch's `Conv2d` layout `[Co, Ci, 3, 3]` (cross-correlation: Y[o, y, x] = b[o] +
/// Σ_{c, ky, kx} W[o, c, ky, kx] · X[c, y + ky − 1, x + kx − 1]), which read as a matrix is `[Co, Ci·9]` with
/// the im2col rows in the same (c, ky, kx) order.
///
/// Buffers (caller-allocated): `x` `[Ci, n, H, W]`, `y`/`dy` `[Co, n, H, W]`, `dx` like `x`, `weight`/`dWeight`
/// `[Co, Ci, 3, 3]`, `bias`/`dBias` `[Co]`, and `scratch` of ``scratchCount(channels:width:)`` elements. The GEMMs run
/// tile by tile over whole image rows (``tileRows(width:)``), so the im2col columns stay in cache and the scratch does
/// not grow with the batch.
///
/// Measured against oneDNN 2.6 on realnvp-small's shapes (BENCHMARKS.md §13, `flow-conv-bench` and
/// `Benchmarks/Convolution/conv_onednn.cpp`): faster than oneDNN given plain NCHW tensors (its im2col + GEMM path),
/// 1.6× slower than its AVX-512 direct kernels on blocked layouts, reorders included; adopting those is open work.
/// Checked against a direct Float64 convolution and by finite differences in `ConvolutionTests`.
public enum Convolution3x3 {
    /// The spatial and batch extent of a pass: n images of H × W.
    public struct Extent: Hashable, Sendable {
        /// Images n.
        public var images: Int
        /// Height H and width W (pixels).
        public var height: Int, width: Int
        /// An extent of `images` images of `height` × `width`.
        public init(images: Int, height: Int, width: Int) {
            self.images = images
            self.height = height
            self.width = width
        }
        /// Values per channel plane: n·H·W.
        @inlinable public var plane: Int { images * height * width }
    }

    /// Columns per GEMM tile: whole image rows, about 512 columns, so that a tile of im2col columns (up to
    /// C·9 × 512 values) stays in a core's L2 cache between its writing and the GEMM's reading of it.
    @inlinable
    public static func tileRows(width: Int) -> Int { max(1, 512 / max(1, width)) }

    /// Scratch elements a pass needs for up to `channels` input or output channels on images `width` wide: the
    /// im2col tile and the flipped weight of the backward-data pass.
    @inlinable
    public static func scratchCount(channels: Int, width: Int) -> Int {
        channels * 9 * tileRows(width: width) * width + channels * channels * 9
    }

    /// cols[(c·9 + ky·3 + kx), j − first] = X[c, i, y + ky − 1, x + kx − 1] for the columns j = (i·H + y)·W + x of
    /// image rows `rows` (r = i·H + y), 0 outside the image. `x` `[Ci, n, H, W]` → `cols` `[Ci·9, rows.count·W]`.
    @inlinable
    public static func im2col<S: FlowScalar>(_ x: UnsafePointer<S>, channels ci: Int, extent e: Extent, rows: Range<Int>,
                                             into cols: UnsafeMutablePointer<S>) {
        if S.self == Float.self {
            flow_im2col3x3_f32(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), ci, e.plane, e.height, e.width,
                               rows.lowerBound, rows.upperBound, UnsafeMutableRawPointer(cols).assumingMemoryBound(to: Float.self))
            return
        }
        let H = e.height, W = e.width, N = e.plane, tN = rows.count * W
        for c in 0..<ci {
            let plane = x + c * N
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let out = cols + (c * 9 + ky * 3 + kx) * tN
                    let dx = kx - 1
                    // Columns x with 0 ≤ x + dx < W.
                    let x0 = max(0, -dx), x1 = min(W, W - dx)
                    for r in rows {
                        let yy = r % H, sy = yy + ky - 1
                        let d = out + (r - rows.lowerBound) * W
                        if sy < 0 || sy >= H {
                            d.update(repeating: 0, count: W)
                            continue
                        }
                        let s = plane + (r - yy + sy) * W + dx
                        if x0 > 0 { d[0] = 0 }
                        if x1 < W { d[W - 1] = 0 }
                        (d + x0).update(from: s + x0, count: x1 - x0)
                    }
                }
            }
        }
    }

    /// The tiles of a pass: ranges of image rows r = i·H + y.
    @inlinable
    static func tiles(_ e: Extent) -> StrideTo<Int> { stride(from: 0, to: e.images * e.height, by: tileRows(width: e.width)) }

    /// Forward: Y = conv(X, W) + b, `x` `[Ci, n, H, W]` → `y` `[Co, n, H, W]` (overwritten, or Y += conv(X, W) + b
    /// when `accumulate`, a residual connection); `scratch` of ``scratchCount(channels:width:)`` for max(Ci, Co).
    @inlinable
    public static func forward<S: FlowScalar>(
        _ x: UnsafePointer<S>, inputChannels ci: Int, extent e: Extent, weight w: UnsafePointer<S>, bias b: UnsafePointer<S>,
        outputChannels co: Int, into y: UnsafeMutablePointer<S>, accumulate: Bool = false, scratch cols: UnsafeMutablePointer<S>
    ) {
        let N = e.plane, W = e.width, allRows = e.images * e.height
        guard N > 0 else { return }
        if !accumulate {
            // Y = b, then Y += W · cols tile by tile.
            for o in 0..<co { (y + o * N).update(repeating: b[o], count: N) }
        } else {
            for o in 0..<co {
                let yo = y + o * N, bo = b[o]
                for j in 0..<N { yo[j] += bo }
            }
        }
        for r0 in tiles(e) {
            let rows = r0..<min(allRows, r0 + tileRows(width: W)), tN = rows.count * W
            im2col(x, channels: ci, extent: e, rows: rows, into: cols)
            // Y[Co, tile] += W[Co, Ci·9] · cols[Ci·9, tile]
            S.gemm(transA: false, transB: false, m: co, n: tN, k: ci * 9, alpha: 1, a: w, lda: ci * 9, b: cols, ldb: tN,
                   beta: 1, c: y + r0 * W, ldc: N)
        }
    }

    /// Backward of ``forward(_:inputChannels:extent:weight:bias:outputChannels:into:accumulate:scratch:)`` given dL/dY
    /// `dy` `[Co, n, H, W]` and the forward input `x`: dW `[Co, Ci, 3, 3]` and db `[Co]` overwritten, or added to when
    /// `accumulate`; dL/dX into `dx` `[Ci, n, H, W]` (overwritten) when given. `scratch` of
    /// ``scratchCount(channels:width:)`` for max(Ci, Co).
    ///
    /// dX is the convolution of dY with the flipped, transposed weight, W′[c, o, ky, kx] = W[o, c, 2 − ky, 2 − kx]:
    /// dX[c, y, x] = Σ_{o, ky, kx} W[o, c, ky, kx] · dY[o, y − ky + 1, x − kx + 1] (an im2col of dY and one GEMM per tile,
    /// no scatter).
    @inlinable
    public static func backward<S: FlowScalar>(
        _ dy: UnsafePointer<S>, input x: UnsafePointer<S>, inputChannels ci: Int, extent e: Extent,
        weight w: UnsafePointer<S>, outputChannels co: Int, dWeight dw: UnsafeMutablePointer<S>,
        dBias db: UnsafeMutablePointer<S>, accumulate: Bool, dx: UnsafeMutablePointer<S>?, scratch: UnsafeMutablePointer<S>
    ) {
        let N = e.plane, K = ci * 9, W = e.width, allRows = e.images * e.height
        if !accumulate {
            dw.update(repeating: 0, count: co * K)
            db.update(repeating: 0, count: co)
        }
        guard N > 0 else { return }
        // Y[o, :] += b[o]  ⇒  db[o] += Σ_N dY[o, :]
        for o in 0..<co {
            let d = dy + o * N
            var sum: S = 0
            for j in 0..<N { sum += d[j] }
            db[o] += sum
        }
        let cols = scratch, flipped = scratch + max(ci, co) * 9 * tileRows(width: W) * W
        // Y = W · cols  ⇒  dW += dY · colsᵀ, tile by tile
        for r0 in tiles(e) {
            let rows = r0..<min(allRows, r0 + tileRows(width: W)), tN = rows.count * W
            im2col(x, channels: ci, extent: e, rows: rows, into: cols)
            S.gemm(transA: false, transB: true, m: co, n: K, k: tN, alpha: 1, a: dy + r0 * W, lda: N, b: cols, ldb: tN,
                   beta: 1, c: dw, ldc: K)
        }
        guard let dx else { return }
        // W′[c, o, ky, kx] = W[o, c, 2 − ky, 2 − kx]  `[Ci, Co·9]`
        for o in 0..<co {
            for c in 0..<ci {
                for k in 0..<9 { flipped[(c * co + o) * 9 + k] = w[(o * ci + c) * 9 + 8 - k] }
            }
        }
        for r0 in tiles(e) {
            let rows = r0..<min(allRows, r0 + tileRows(width: W)), tN = rows.count * W
            im2col(dy, channels: co, extent: e, rows: rows, into: cols)
            // dX[Ci, tile] = W′[Ci, Co·9] · cols(dY)[Co·9, tile]
            S.gemm(transA: false, transB: false, m: ci, n: tN, k: co * 9, alpha: 1, a: flipped, lda: co * 9, b: cols, ldb: tN,
                   beta: 0, c: dx + r0 * W, ldc: N)
        }
    }
}
