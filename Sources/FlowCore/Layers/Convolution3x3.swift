import CFlowSupport

/// 3×3 convolution kernels, stride 1, zero padding 1 (the s/t networks of RealNVP's convolutional couplings), on raw
/// buffers in the channel-major batch layout `[C, n, H, W]` ("CNHW": one plane of n·H·W values per channel):
///
///     forward          Y[o, p]  = b[o] + Σ_{c, k} W[o, c, k] · X[c, p + tap k]
///     backward weight  dW[o, c, k] (+)= Σ_p dY[o, p] · X[c, p + tap k],   db[o] (+)= Σ_p dY[o, p]
///     backward data    dX = conv(dY, W′),   W′[c, o, ky, kx] = W[o, c, 2 − ky, 2 − kx]
///
/// The weight is PyTorch's `Conv2d` layout `[Co, Ci, 3, 3]` (cross-correlation: Y[o, y, x] = b[o] +
/// Σ_{c, ky, kx} W[o, c, ky, kx] · X[c, y + ky − 1, x + kx − 1]).
///
/// Three methods (``Method``): Float32 on x86-64 with AVX2 + FMA uses ``Method/winograd``: Winograd's F(2×2, 3×3)
/// (`conv_winograd.c`; Lavin & Gray, CVPR 2016) for all three passes of convolutions with at least
/// ``winogradMinimumChannels`` input and output channels, and ``Method/direct``'s kernels for the thinner ones:
/// register-tiled kernels in C (`conv_direct.c`) on a zero-bordered copy of the activations (no im2col, no GEMM
/// packing). Every other case, Float64 (the tests' reference) included, uses ``Method/im2colGEMM``,
/// im2col tiles of ~512 columns and the system BLAS `gemm`, one large product over all n images per tile.
///
/// Buffers (caller-allocated): `x` `[Ci, n, H, W]`, `y`/`dy` `[Co, n, H, W]`, `dx` like `x`, `weight`/`dWeight`
/// `[Co, Ci, 3, 3]`, `bias`/`dBias` `[Co]`, and `scratch` of ``scratchCount(channels:height:width:)`` elements (for
/// the larger of Ci and Co; fixed: it does not grow with n).
///
/// Measured on realnvp-small's shapes (BENCHMARKS.md §13, `flow-conv-bench`, one thread, 32 images): Winograd (with
/// the direct kernels for the thin convolutions) 1.43× faster than the direct kernels alone, which are 1.35× faster
/// than im2col + OpenBLAS; oneDNN 2.6's AVX-512 direct kernels, with the reorders a drop-in use needs, 1.10–1.17×
/// faster than the direct kernels, but they allocate on every call. The GEMM method is checked against a direct
/// Float64 convolution and by central differences, the direct and Winograd kernels against the Float64 results, in
/// `ConvolutionTests`.
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

    /// How a convolution is computed.
    public enum Method: Sendable {
        /// im2col tiles and the system BLAS `gemm` (any scalar type).
        case im2colGEMM
        /// The AVX2 + FMA direct kernels (Float32 on x86-64 CPUs with AVX2 and FMA only).
        case direct
        /// Winograd F(2×2, 3×3) in AVX2 + FMA (forward, backward-data and backward-weights) for convolutions with at
        /// least ``Convolution3x3/winogradMinimumChannels`` input and output channels, the direct kernels otherwise
        /// (Float32 on x86-64 CPUs with AVX2 and FMA only). 16 products per 2×2 outputs and channel pair instead of 36;
        /// its rounding differs from the direct sum's (bounded in `ConvolutionTests`).
        case winograd
    }

    /// Input and output channels from which ``Method/winograd`` uses the Winograd kernels: with 16 and more they are
    /// 1.4–2× faster than the direct kernels, with 8 about as fast (the weight gradient 0.8–1.0×), with fewer slower
    /// (BENCHMARKS.md §13): the transforms then cost more than they save.
    public static let winogradMinimumChannels = 16

    /// Whether ``Method/winograd`` computes a convolution with `ci` input and `co` output channels by Winograd.
    @inlinable
    public static func usesWinograd(_ ci: Int, _ co: Int) -> Bool { min(ci, co) >= winogradMinimumChannels }

    /// Whether this CPU runs the direct Float32 kernels (x86-64 with AVX2 and FMA).
    public static let directAvailable: Bool = flow_cpu_has_avx2() == 1

    /// The method used for scalars of type `S`: ``Method/winograd`` for Float32 where available, else
    /// ``Method/im2colGEMM``.
    @inlinable
    public static func method<S: FlowScalar>(for _: S.Type) -> Method {
        S.self == Float.self && directAvailable ? .winograd : .im2colGEMM
    }

    /// Columns per GEMM tile: whole image rows, about 512 columns, so that a tile of im2col columns (up to
    /// C·9 × 512 values) stays in a core's L2 cache between its writing and the GEMM's reading of it.
    @inlinable
    public static func tileRows(width: Int) -> Int { max(1, 512 / max(1, width)) }

    /// Images per call of the direct kernels: they pad and convolve a batch this many images at a time, so that
    /// their scratch does not grow with the batch.
    public static let directImages = 8

    /// Scratch elements a pass of any method needs for up to `channels` input or output channels on images of
    /// `height` × `width`, for any number of images: the GEMM method's im2col tile and flipped weight, or the direct
    /// and Winograd methods' regions (``directRegions(_:channels:extent:)``), whichever is larger.
    @inlinable
    public static func scratchCount(channels: Int, height: Int, width: Int) -> Int {
        let gemm = channels * 9 * tileRows(width: width) * width + channels * channels * 9
        return max(gemm, directScratchCount(channels: channels, height: height, width: width).total)
    }

    /// The sizes of ``directRegions(_:channels:extent:)``: two padded activations of up to ``directImages`` images
    /// (⌈C/4⌉·4 planes of (H + 2)·(W + 2) values per image, plus a guard) each, a third region for the direct
    /// kernel's output or the Winograd transforms, the packed weight (direct or Winograd) and the weight gradient's
    /// lane sums.
    @inlinable
    static func directScratchCount(channels: Int, height: Int, width: Int) -> (padded: Int, work: Int, packed: Int, total: Int) {
        let c4 = (channels + 3) / 4 * 4
        let padded = c4 * flow_conv3x3_padded_stride(directImages, height, width)
        let work = max(padded, flow_conv3x3_winograd_scratch_count(channels, channels, width))
        let packed = max(c4 * channels * 9, flow_conv3x3_winograd_packed_count(channels, channels))
        return (padded, work, packed, 2 * padded + work + packed + channels * channels * 9 * 8)
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

    /// The direct and Winograd methods' scratch regions for a pass with up to `channels` channels on ``directImages``
    /// images of the extent's size: two padded activations a and b (`[⌈C/4⌉·4, stride]` each), the work region y (the
    /// direct kernel's padded output, or the Winograd transforms), the packed weight and the weight gradient's lane
    /// sums.
    @usableFromInline
    static func directRegions(_ scratch: UnsafeMutablePointer<Float>, channels: Int, extent e: Extent)
        -> (a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>,
            packed: UnsafeMutablePointer<Float>, partial: UnsafeMutablePointer<Float>) {
        let n = directScratchCount(channels: channels, height: e.height, width: e.width)
        let packed = scratch + 2 * n.padded + n.work
        return (scratch, scratch + n.padded, scratch + 2 * n.padded, packed, packed + n.packed)
    }

    /// Forward: Y = conv(X, W) + b, `x` `[Ci, n, H, W]` → `y` `[Co, n, H, W]` (overwritten, or Y += conv(X, W) + b
    /// when `accumulate`, a residual connection); `scratch` of ``scratchCount(channels:height:width:)`` for max(Ci, Co);
    /// `method` defaults to ``method(for:)``.
    @inlinable
    public static func forward<S: FlowScalar>(
        _ x: UnsafePointer<S>, inputChannels ci: Int, extent e: Extent, weight w: UnsafePointer<S>, bias b: UnsafePointer<S>,
        outputChannels co: Int, into y: UnsafeMutablePointer<S>, accumulate: Bool = false, scratch cols: UnsafeMutablePointer<S>,
        method: Method? = nil
    ) {
        let N = e.plane, W = e.width, allRows = e.images * e.height
        guard N > 0 else { return }
        let chosen = method ?? Self.method(for: S.self)
        if chosen != .im2colGEMM, S.self == Float.self, directAvailable {
            // Y = conv(pad(X), pack(W)) + b, ``directImages`` images at a time: the padded input in region a, the
            // direct tiles' output or the Winograd transforms in region y.
            let f = { (p: UnsafePointer<S>) in UnsafeRawPointer(p).assumingMemoryBound(to: Float.self) }
            let r = directRegions(UnsafeMutableRawPointer(cols).assumingMemoryBound(to: Float.self),
                                  channels: max(ci, co), extent: e)
            let out = UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self), P = e.height * e.width
            // The two methods' kernels share their signatures.
            let winograd = chosen == .winograd && usesWinograd(ci, co)
            let pack = winograd ? flow_conv3x3_winograd_pack_weights_f32 : flow_conv3x3_pack_weights_f32
            let convolve = winograd ? flow_conv3x3_forward_winograd_f32 : flow_conv3x3_forward_direct_f32
            pack(f(w), co, ci, 0, r.packed)
            for first in stride(from: 0, to: e.images, by: directImages) {
                let images = min(directImages, e.images - first)
                flow_conv3x3_pad_f32(f(x) + first * P, ci, N, images, e.height, e.width, r.a)
                convolve(r.a, ci, images, e.height, e.width, r.packed, f(b), co, out + first * P, N, accumulate ? 1 : 0, r.y)
            }
            return
        }
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
    /// ``scratchCount(channels:height:width:)`` for max(Ci, Co); `method` defaults to ``method(for:)``.
    ///
    /// dX is the convolution of dY with the flipped, transposed weight, W′[c, o, ky, kx] = W[o, c, 2 − ky, 2 − kx]:
    /// dX[c, y, x] = Σ_{o, ky, kx} W[o, c, ky, kx] · dY[o, y − ky + 1, x − kx + 1] (no scatter: in the GEMM method an
    /// im2col of dY and one GEMM per tile, in the direct method the forward kernel on the padded dY).
    @inlinable
    public static func backward<S: FlowScalar>(
        _ dy: UnsafePointer<S>, input x: UnsafePointer<S>, inputChannels ci: Int, extent e: Extent,
        weight w: UnsafePointer<S>, outputChannels co: Int, dWeight dw: UnsafeMutablePointer<S>,
        dBias db: UnsafeMutablePointer<S>, accumulate: Bool, dx: UnsafeMutablePointer<S>?, scratch: UnsafeMutablePointer<S>,
        method: Method? = nil
    ) {
        let N = e.plane, K = ci * 9, W = e.width, allRows = e.images * e.height
        if !accumulate {
            dw.update(repeating: 0, count: co * K)
            db.update(repeating: 0, count: co)
        }
        guard N > 0 else { return }
        // Y[o, :] += b[o]  ⇒  db[o] += Σ_N dY[o, :]
        if S.self == Float.self {
            flow_add_plane_sums_f32(UnsafeRawPointer(dy).assumingMemoryBound(to: Float.self), co, N,
                                    UnsafeMutableRawPointer(db).assumingMemoryBound(to: Float.self))
        } else {
            for o in 0..<co {
                let d = dy + o * N
                var sum: S = 0
                for j in 0..<N { sum += d[j] }
                db[o] += sum
            }
        }
        let chosen = method ?? Self.method(for: S.self)
        if chosen != .im2colGEMM, S.self == Float.self, directAvailable {
            // dW (+)= Σ pad(dY)·pad(X) at the 9 taps; dX = conv(pad(dY), pack(W′)), W′ the flipped, transposed weight;
            // ``directImages`` images at a time, by Winograd where ``Method/winograd`` takes the convolution.
            let f = { (p: UnsafePointer<S>) in UnsafeRawPointer(p).assumingMemoryBound(to: Float.self) }
            let m = { (p: UnsafeMutablePointer<S>) in UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self) }
            let r = directRegions(m(scratch), channels: max(ci, co), extent: e), P = e.height * e.width
            // The two methods' kernels share their signatures; Winograd's weight gradient works in region y.
            let winograd = chosen == .winograd && usesWinograd(ci, co)
            let pack = winograd ? flow_conv3x3_winograd_pack_weights_f32 : flow_conv3x3_pack_weights_f32
            let convolve = winograd ? flow_conv3x3_forward_winograd_f32 : flow_conv3x3_forward_direct_f32
            let weights = winograd ? flow_conv3x3_backward_weights_winograd_f32 : flow_conv3x3_backward_weights_direct_f32
            if dx != nil { pack(f(w), co, ci, 1, r.packed) }
            for first in stride(from: 0, to: e.images, by: directImages) {
                let images = min(directImages, e.images - first)
                flow_conv3x3_pad_f32(f(dy) + first * P, co, N, images, e.height, e.width, r.a)
                flow_conv3x3_pad_f32(f(x) + first * P, ci, N, images, e.height, e.width, r.b)
                weights(r.a, r.b, ci, images, e.height, e.width, co, m(dw), 1, winograd ? r.y : r.partial)
                if let dx {
                    convolve(r.a, co, images, e.height, e.width, r.packed, nil, ci, m(dx) + first * P, N, 0, r.y)
                }
            }
            return
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
