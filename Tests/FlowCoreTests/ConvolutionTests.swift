import Testing
@testable import FlowCore

/// ``Convolution3x3`` against a direct Float64 convolution written from the definition, a hand-computed golden image,
/// and central differences for every gradient.
@Suite("3×3 convolution (im2col + BLAS, the direct Float32 kernels and Winograd F(2×2, 3×3))")
struct ConvolutionTests {
    /// Y[o, i, y, x] = b[o] + Σ_{c, ky, kx} W[o, c, ky, kx] · X[c, i, y + ky − 1, x + kx − 1] (zero outside), CNHW.
    static func direct(_ x: [Double], ci: Int, e: Convolution3x3.Extent, w: [Double], b: [Double], co: Int) -> [Double] {
        let H = e.height, W = e.width, n = e.images
        var y = [Double](repeating: 0, count: co * e.plane)
        for o in 0..<co {
            for i in 0..<n {
                for yy in 0..<H {
                    for xx in 0..<W {
                        var v = b[o]
                        for c in 0..<ci {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    let sy = yy + ky - 1, sx = xx + kx - 1
                                    guard sy >= 0, sy < H, sx >= 0, sx < W else { continue }
                                    v += w[((o * ci + c) * 3 + ky) * 3 + kx] * x[((c * n + i) * H + sy) * W + sx]
                                }
                            }
                        }
                        y[((o * n + i) * H + yy) * W + xx] = v
                    }
                }
            }
        }
        return y
    }

    static func values(_ count: Int, seed: UInt32) -> [Double] {
        let r = RandomStream(seed: 5, purpose: .auxiliary, substream: seed)
        return (0..<count).map { r.normal(UInt64($0)) }
    }

    static func forward(_ x: [Double], ci: Int, e: Convolution3x3.Extent, w: [Double], b: [Double], co: Int,
                        into y: [Double]? = nil) -> [Double] {
        var out = y ?? [Double](repeating: 0, count: co * e.plane)
        var scratch = [Double](repeating: .nan, count: Convolution3x3.scratchCount(channels: max(ci, co), height: e.height, width: e.width))
        Convolution3x3.forward(x, inputChannels: ci, extent: e, weight: w, bias: b, outputChannels: co, into: &out,
                               accumulate: y != nil, scratch: &scratch)
        return out
    }

    @Test("a 3×3 image of ones through a kernel of ones: 4 at the corners, 6 on the edges, 9 in the centre (+ bias)")
    func golden() {
        let e = Convolution3x3.Extent(images: 1, height: 3, width: 3)
        let y = Self.forward([Double](repeating: 1, count: 9), ci: 1, e: e, w: [Double](repeating: 1, count: 9), b: [0.5], co: 1)
        #expect(y == [4.5, 6.5, 4.5, 6.5, 9.5, 6.5, 4.5, 6.5, 4.5])
        // A kernel with a single 1 at (ky, kx) = (0, 2) reads X[y − 1, x + 1]: the image shifted down and left.
        var w = [Double](repeating: 0, count: 9)
        w[2] = 1
        let x: [Double] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        #expect(Self.forward(x, ci: 1, e: e, w: w, b: [0], co: 1) == [0, 0, 0, 2, 3, 0, 5, 6, 0])
    }

    @Test("forward = the direct convolution (Float64, to rounding), several shapes; accumulate adds", arguments: [
        (1, 1, 1, 1, 1), (2, 3, 4, 5, 6), (3, 2, 1, 7, 1), (1, 4, 3, 1, 5), (2, 1, 2, 2, 2),
        // several GEMM tiles: one image row per tile (W = 300), and tiles that end inside an image (W = 3, 170 rows each)
        (2, 2, 3, 3, 300), (3, 2, 2, 64, 3),
    ])
    func forwardMatchesDirect(shape: (Int, Int, Int, Int, Int)) {
        let (n, ci, co, H, W) = shape
        let e = Convolution3x3.Extent(images: n, height: H, width: W)
        let x = Self.values(ci * e.plane, seed: 1), w = Self.values(co * ci * 9, seed: 2), b = Self.values(co, seed: 3)
        let y = Self.forward(x, ci: ci, e: e, w: w, b: b, co: co)
        let reference = Self.direct(x, ci: ci, e: e, w: w, b: b, co: co)
        for j in y.indices { #expect(abs(y[j] - reference[j]) <= 1e-13, "\(shape) element \(j): \(y[j]) vs \(reference[j])") }
        let residual = Self.values(co * e.plane, seed: 4)
        let added = Self.forward(x, ci: ci, e: e, w: w, b: b, co: co, into: residual)
        for j in y.indices { #expect(abs(added[j] - (residual[j] + reference[j])) <= 1e-13) }
    }

    @Test("Float32 forward (the method Float uses here) agrees with Float64 to single precision")
    func singlePrecision() {
        let e = Convolution3x3.Extent(images: 3, height: 6, width: 5), ci = 4, co = 3
        let x = Self.values(ci * e.plane, seed: 1), w = Self.values(co * ci * 9, seed: 2), b = Self.values(co, seed: 3)
        let reference = Self.direct(x, ci: ci, e: e, w: w, b: b, co: co)
        var y = [Float](repeating: 0, count: co * e.plane)
        var scratch = [Float](repeating: 0, count: Convolution3x3.scratchCount(channels: max(ci, co), height: e.height, width: e.width))
        Convolution3x3.forward(x.map(Float.init), inputChannels: ci, extent: e, weight: w.map(Float.init), bias: b.map(Float.init),
                               outputChannels: co, into: &y, scratch: &scratch)
        for j in y.indices { #expect(abs(Double(y[j]) - reference[j]) <= 1e-5 * max(1, abs(reference[j]))) }
    }

    @Test("dW, db and dX of L = Σ g ⊙ Y against central differences; accumulate adds", arguments: [
        (2, 3, 2, 4, 5), (1, 1, 1, 1, 3), (3, 2, 3, 3, 1), (2, 2, 2, 3, 257), (2, 1, 3, 90, 3),
    ])
    func gradients(shape: (Int, Int, Int, Int, Int)) {
        let (n, ci, co, H, W) = shape
        let e = Convolution3x3.Extent(images: n, height: H, width: W)
        let x = Self.values(ci * e.plane, seed: 11), w = Self.values(co * ci * 9, seed: 12), b = Self.values(co, seed: 13)
        let gy = Self.values(co * e.plane, seed: 14)
        func loss(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
            zip(gy, Self.forward(x, ci: ci, e: e, w: w, b: b, co: co)).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var dw = [Double](repeating: .nan, count: w.count), db = [Double](repeating: .nan, count: co)
        var dx = [Double](repeating: .nan, count: x.count)
        var cols = [Double](repeating: .nan, count: Convolution3x3.scratchCount(channels: max(ci, co), height: e.height, width: e.width))
        Convolution3x3.backward(gy, input: x, inputChannels: ci, extent: e, weight: w, outputChannels: co, dWeight: &dw,
                                dBias: &db, accumulate: false, dx: &dx, scratch: &cols)
        // L is linear in each of W, b and X: a central difference is exact up to rounding for any step, so a large
        // step keeps the rounding (ε·|L|/h) far below the tolerance.
        let h = 0.5
        func check(_ analytic: [Double], _ perturb: (Int, Double) -> Double, _ what: String) {
            for j in analytic.indices {
                let numeric = (perturb(j, h) - perturb(j, -h)) / (2 * h)
                #expect(abs(numeric - analytic[j]) <= 1e-10 * max(1, abs(numeric)), "\(shape) \(what)[\(j)]: \(analytic[j]) vs \(numeric)")
            }
        }
        check(dw, { j, d in var v = w; v[j] += d; return loss(x, v, b) }, "dW")
        check(db, { j, d in var v = b; v[j] += d; return loss(x, w, v) }, "db")
        check(dx, { j, d in var v = x; v[j] += d; return loss(v, w, b) }, "dX")
        var dw2 = dw, db2 = db
        Convolution3x3.backward(gy, input: x, inputChannels: ci, extent: e, weight: w, outputChannels: co, dWeight: &dw2,
                                dBias: &db2, accumulate: true, dx: nil, scratch: &cols)
        for j in dw.indices { #expect(abs(dw2[j] - 2 * dw[j]) <= 1e-12 * max(1, abs(dw[j]))) }
        for j in db.indices { #expect(abs(db2[j] - 2 * db[j]) <= 1e-12 * max(1, abs(db[j]))) }
    }

    /// Forward of `x`, `w`, `b` in Float32 by `method`, Y overwritten or added to `into`; the scratch starts as NaN, so
    /// a read of anything the pass did not write shows.
    static func forwardFloat(_ x: [Double], ci: Int, e: Convolution3x3.Extent, w: [Double], b: [Double], co: Int,
                             into y: [Double]? = nil, method: Convolution3x3.Method) -> [Float] {
        var out = (y ?? [Double](repeating: 0, count: co * e.plane)).map(Float.init)
        var scratch = [Float](repeating: .nan, count: Convolution3x3.scratchCount(channels: max(ci, co), height: e.height, width: e.width))
        Convolution3x3.forward(x.map(Float.init), inputChannels: ci, extent: e, weight: w.map(Float.init),
                               bias: b.map(Float.init), outputChannels: co, into: &out, accumulate: y != nil,
                               scratch: &scratch, method: method)
        return out
    }

    /// (dW, db, dX) in Float64 by the GEMM method (checked by central differences above): of `dy`, or with `magnitudes`
    /// of |dy|, |x| and |w|, which gives Σ|terms| of every sum, the scale of its rounding error.
    static func gradients(_ dy: [Double], x: [Double], ci: Int, e: Convolution3x3.Extent, w: [Double], co: Int,
                          magnitudes: Bool = false) -> ([Double], [Double], [Double]) {
        let m = { (v: [Double]) in magnitudes ? v.map { abs($0) } : v }
        var dw = [Double](repeating: 0, count: w.count), db = [Double](repeating: 0, count: co)
        var dx = [Double](repeating: 0, count: x.count)
        var scratch = [Double](repeating: .nan, count: Convolution3x3.scratchCount(channels: max(ci, co), height: e.height, width: e.width))
        Convolution3x3.backward(m(dy), input: m(x), inputChannels: ci, extent: e, weight: m(w), outputChannels: co,
                                dWeight: &dw, dBias: &db, accumulate: false, dx: &dx, scratch: &scratch)
        return (dw, db, dx)
    }

    /// |float − reference| within 2·10⁻⁶ of Σ|terms| (about 30 Float32 ulps of the terms' magnitude), element by element.
    static func expectClose(_ float: [Float], _ reference: [Double], scale: [Double], _ what: String) {
        #expect(float.count == reference.count)
        var worst = 0.0
        for j in reference.indices {
            let error = abs(Double(float[j]) - reference[j]), bound = 2e-6 * (scale[j] + 1e-3)
            worst = max(worst, error / bound)
            if !(error <= bound) {
                Issue.record("\(what)[\(j)]: \(float[j]) vs \(reference[j]) (Σ|terms| \(scale[j]))")
                return
            }
        }
        #expect(worst <= 1)
    }

    @Test("the direct and Winograd Float32 kernels: forward (overwriting and adding), dW, db (overwriting and adding) and dX against Float64, odd shapes", arguments: [
        // (n, Ci, Co, H, W): 1 × 1 images; widths below one vector; output channels not a multiple of the kernels'
        // blocks (4 forward, 3 weights); a thin first and last convolution; realnvp-small's 32 → 32 at 28 × 28; long rows;
        // batches of more than one chunk of `directImages` (8) images, the last one partial
        (1, 1, 1, 1, 1), (2, 3, 5, 2, 2), (3, 2, 7, 3, 1), (1, 1, 32, 28, 28), (2, 32, 2, 14, 14), (2, 32, 32, 28, 28),
        (1, 5, 6, 3, 40), (4, 4, 8, 7, 7), (2, 2, 1, 9, 4), (11, 3, 4, 3, 5), (17, 4, 5, 7, 7),
        // Winograd (at least 16 input and output channels): odd heights and widths (a partial 2 × 2 tile), 1 × 1 and
        // 1 × 2 images, channels not a multiple of its blocks (4 and 8), rows of more and fewer than 8 tiles, one
        // tile row per block (≥ 96 tiles), several blocks per chunk and chunks of 8 images, the last one partial
        (3, 16, 17, 7, 7), (9, 17, 16, 5, 3), (2, 33, 18, 1, 1), (3, 16, 20, 1, 2), (2, 24, 16, 6, 40), (1, 16, 16, 3, 201),
        (10, 16, 16, 14, 14),
    ])
    func directFloat(shape: (Int, Int, Int, Int, Int)) throws {
        // Float64 on any machine, and the GEMM method of Float, always run; the direct and Winograd kernels where the
        // CPU has them (Winograd takes only convolutions of ``Convolution3x3/winogradMinimumChannels`` and more, the
        // direct kernels the rest).
        let (n, ci, co, H, W) = shape
        let e = Convolution3x3.Extent(images: n, height: H, width: W)
        let x = Self.values(ci * e.plane, seed: 21), w = Self.values(co * ci * 9, seed: 22), b = Self.values(co, seed: 23)
        let dy = Self.values(co * e.plane, seed: 24), residual = Self.values(co * e.plane, seed: 25)
        let reference = Self.direct(x, ci: ci, e: e, w: w, b: b, co: co)
        let scale = Self.direct(x.map { abs($0) }, ci: ci, e: e, w: w.map { abs($0) }, b: b.map { abs($0) }, co: co)
        let (dw, db, dx) = Self.gradients(dy, x: x, ci: ci, e: e, w: w, co: co)
        let (sw, sb, sx) = Self.gradients(dy, x: x, ci: ci, e: e, w: w, co: co, magnitudes: true)
        for method in Convolution3x3.directAvailable ? [.im2colGEMM, .direct, .winograd] : [Convolution3x3.Method.im2colGEMM] {
            let label = "\(shape) \(method)"
            Self.expectClose(Self.forwardFloat(x, ci: ci, e: e, w: w, b: b, co: co, method: method), reference, scale: scale,
                             "\(label) Y")
            Self.expectClose(Self.forwardFloat(x, ci: ci, e: e, w: w, b: b, co: co, into: residual, method: method),
                             zip(residual, reference).map { $0 + $1 }, scale: zip(residual, scale).map { abs($0) + $1 },
                             "\(label) residual + Y")
            var fdw = [Float](repeating: .nan, count: w.count), fdb = [Float](repeating: .nan, count: co)
            var fdx = [Float](repeating: .nan, count: x.count)
            var scratch = [Float](repeating: .nan, count: Convolution3x3.scratchCount(channels: max(ci, co), height: e.height, width: e.width))
            let fdy = dy.map(Float.init), fx = x.map(Float.init), fw = w.map(Float.init)
            Convolution3x3.backward(fdy, input: fx, inputChannels: ci, extent: e, weight: fw, outputChannels: co,
                                    dWeight: &fdw, dBias: &fdb, accumulate: false, dx: &fdx, scratch: &scratch, method: method)
            Self.expectClose(fdw, dw, scale: sw, "\(label) dW")
            Self.expectClose(fdb, db, scale: sb, "\(label) db")
            Self.expectClose(fdx, dx, scale: sx, "\(label) dX")
            // accumulate adds to what is there (and dX nil computes none)
            scratch = [Float](repeating: .nan, count: scratch.count)
            Convolution3x3.backward(fdy, input: fx, inputChannels: ci, extent: e, weight: fw, outputChannels: co,
                                    dWeight: &fdw, dBias: &fdb, accumulate: true, dx: nil, scratch: &scratch, method: method)
            Self.expectClose(fdw, dw.map { 2 * $0 }, scale: sw.map { 2 * $0 }, "\(label) dW accumulated")
            Self.expectClose(fdb, db.map { 2 * $0 }, scale: sb.map { 2 * $0 }, "\(label) db accumulated")
        }
        if Convolution3x3.directAvailable && Convolution3x3.usesWinograd(ci, co) {
            // The Winograd kernels ran: their rounding differs from the direct sum's somewhere.
            #expect(Self.forwardFloat(x, ci: ci, e: e, w: w, b: b, co: co, method: .winograd)
                != Self.forwardFloat(x, ci: ci, e: e, w: w, b: b, co: co, method: .direct))
        }
    }

    @Test("the Float32 kernels (Winograd and direct): an image's output and input gradient are the same bits whatever the other images of the call and its place among them")
    func imagesIndependent() throws {
        guard Convolution3x3.directAvailable else { return }
        // 11 images: a full chunk of 8 and a partial one; Winograd (16 → 17) on odd sizes, and direct (3 → 5).
        for (ci, co, H, W) in [(16, 17, 7, 9), (3, 5, 6, 5)] {
            let n = 11, e = Convolution3x3.Extent(images: n, height: H, width: W), P = H * W
            let x = Self.values(ci * e.plane, seed: 31).map(Float.init), w = Self.values(co * ci * 9, seed: 32).map(Float.init)
            let b = Self.values(co, seed: 33).map(Float.init), dy = Self.values(co * e.plane, seed: 34).map(Float.init)
            /// Forward and dX of the images `images` (in that order), one call each.
            func pass(_ images: [Int]) -> (y: [Float], dx: [Float]) {
                let m = images.count, f = Convolution3x3.Extent(images: m, height: H, width: W)
                func pick(_ t: [Float], _ channels: Int) -> [Float] {
                    var out = [Float](repeating: 0, count: channels * m * P)
                    for c in 0..<channels { for (k, i) in images.enumerated() { for q in 0..<P { out[(c * m + k) * P + q] = t[(c * n + i) * P + q] } } }
                    return out
                }
                var y = [Float](repeating: .nan, count: co * m * P), dx = [Float](repeating: .nan, count: ci * m * P)
                var dw = [Float](repeating: 0, count: w.count), db = [Float](repeating: 0, count: co)
                var scratch = [Float](repeating: .nan, count: Convolution3x3.scratchCount(channels: max(ci, co), height: H, width: W))
                Convolution3x3.forward(pick(x, ci), inputChannels: ci, extent: f, weight: w, bias: b, outputChannels: co, into: &y,
                                       scratch: &scratch)
                Convolution3x3.backward(pick(dy, co), input: pick(x, ci), inputChannels: ci, extent: f, weight: w, outputChannels: co,
                                        dWeight: &dw, dBias: &db, accumulate: false, dx: &dx, scratch: &scratch)
                return (y, dx)
            }
            let all = pass(Array(0..<n))
            for (images, label) in [([4], "alone"), ([10, 3, 4, 0], "reordered"), (Array((0..<n).reversed()), "reversed")] {
                let part = pass(images)
                for (k, i) in images.enumerated() {
                    for c in 0..<co {
                        #expect(Array(part.y[((c * images.count + k) * P)..<((c * images.count + k + 1) * P)])
                            == Array(all.y[((c * n + i) * P)..<((c * n + i + 1) * P)]), "\(ci) → \(co) Y of image \(i) \(label)")
                    }
                    for c in 0..<ci {
                        #expect(Array(part.dx[((c * images.count + k) * P)..<((c * images.count + k + 1) * P)])
                            == Array(all.dx[((c * n + i) * P)..<((c * n + i + 1) * P)]), "\(ci) → \(co) dX of image \(i) \(label)")
                    }
                }
            }
        }
    }

}
