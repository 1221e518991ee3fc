/// Element-wise kernels of the hot path. Arithmetic and reductions use explicit 8-lane SIMD vectors (a
/// fixed summation order, so results are deterministic); selections (ReLU and its derivative) are plain
/// loops written in the shape LLVM vectorises into compare/max instructions, because Swift lowers SIMD
/// comparisons lane by lane.
///
/// All buffers are row-major and owned by the caller; `count`, `rows`, `columns` in elements.
public enum VectorKernels {


    @inline(__always)
    static func load<S: FlowScalar>(_ p: UnsafePointer<S>) -> SIMD8<S> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<S>.self)
    }

    @inline(__always)
    static func store<S: FlowScalar>(_ v: SIMD8<S>, _ p: UnsafeMutablePointer<S>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<S>.self)
    }

    /// y[i, :] += b for every row; then y = max(y, 0) when `relu` (NaN propagates: `Swift.max(NaN, 0)` is
    /// NaN). Plain loops in the shape LLVM turns into vaddps/vmaxps; SIMD comparisons are avoided because
    /// Swift lowers them lane by lane.
    @inline(__always)
    public static func addBias<S: FlowScalar>(_ y: UnsafeMutablePointer<S>, rows: Int, columns: Int, bias b: UnsafePointer<S>, relu: Bool) {
        for i in 0..<rows {
            let yi = y + i * columns
            if relu {
                for o in 0..<columns { yi[o] = Swift.max(yi[o] + b[o], 0) }
            } else {
                for o in 0..<columns { yi[o] += b[o] }
            }
        }
    }

    /// x = max(x, 0) for `count` elements (NaN propagates).
    @inline(__always)
    public static func relu<S: FlowScalar>(_ x: UnsafeMutablePointer<S>, count: Int) {
        for e in 0..<count { x[e] = Swift.max(x[e], 0) }
    }

    /// d[i, o] = a[i, o] > 0 ? d[i, o] : 0 over `[rows, columns]` (the ReLU derivative from the stored
    /// activation), and, when `columnSums` is given, adds the masked rows' column sums to it (`[columns]`,
    /// the next bias gradient).
    @inline(__always)
    public static func reluMask<S: FlowScalar>(_ d: UnsafeMutablePointer<S>, activation a: UnsafePointer<S>, rows: Int, columns: Int,
                                        columnSums: UnsafeMutablePointer<S>?) {
        for i in 0..<rows {
            let di = d + i * columns, ai = a + i * columns
            for o in 0..<columns { di[o] = ai[o] > 0 ? di[o] : 0 }
            if let cs = columnSums { add(di, into: cs, count: columns) }
        }
    }

    /// sums[:] (+)= Σ_i x[i, :] over `rows` rows of `[rows, columns]`.
    @inline(__always)
    public static func addColumnSums<S: FlowScalar>(_ x: UnsafePointer<S>, rows: Int, columns: Int, into sums: UnsafeMutablePointer<S>) {
        let vectorEnd = columns & ~7
        for i in 0..<rows {
            let xi = x + i * columns
            var o = 0
            while o < vectorEnd {
                store(load(sums + o) + load(xi + o), sums + o)
                o &+= 8
            }
            while o < columns { sums[o] += xi[o]; o &+= 1 }
        }
    }

    /// y[0 ..< count] += a · x[0 ..< count].
    @inline(__always)
    public static func axpy<S: FlowScalar>(_ a: S, _ x: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, count: Int) {
        let vectorEnd = count & ~7
        let va = SIMD8<S>(repeating: a)
        var e = 0
        while e < vectorEnd {
            store(load(y + e) + va * load(x + e), y + e)
            e &+= 8
        }
        while e < count { y[e] += a * x[e]; e &+= 1 }
    }

    /// Σ x[e]·y[e] over `count` elements, accumulated in 8 lanes then summed (a fixed order).
    @inline(__always)
    public static func dot<S: FlowScalar>(_ x: UnsafePointer<S>, _ y: UnsafePointer<S>, count: Int) -> S {
        let vectorEnd = count & ~7
        var acc = SIMD8<S>(repeating: 0)
        var e = 0
        while e < vectorEnd {
            acc = acc + load(x + e) * load(y + e)
            e &+= 8
        }
        var s = acc.sum()
        while e < count { s += x[e] * y[e]; e &+= 1 }
        return s
    }

    /// x[0 ..< count] *= a.
    @inline(__always)
    public static func scale<S: FlowScalar>(_ x: UnsafeMutablePointer<S>, by a: S, count: Int) {
        let vectorEnd = count & ~7
        let va = SIMD8<S>(repeating: a)
        var e = 0
        while e < vectorEnd { store(load(x + e) * va, x + e); e &+= 8 }
        while e < count { x[e] *= a; e &+= 1 }
    }

    /// dst[0 ..< count] += src[0 ..< count].
    @inline(__always)
    public static func add<S: FlowScalar>(_ src: UnsafePointer<S>, into dst: UnsafeMutablePointer<S>, count: Int) {
        let vectorEnd = count & ~7
        var e = 0
        while e < vectorEnd { store(load(dst + e) + load(src + e), dst + e); e &+= 8 }
        while e < count { dst[e] += src[e]; e &+= 1 }
    }

    /// Σ x[e]² over `count` elements, accumulated in Double.
    @inline(__always)
    public static func sumOfSquares<S: FlowScalar>(_ x: UnsafePointer<S>, count: Int) -> Double {
        let vectorEnd = count & ~7
        var acc = SIMD8<Double>(repeating: 0)
        var e = 0
        while e < vectorEnd {
            let v = SIMD8<Double>(load(x + e))
            acc = acc + v * v
            e &+= 8
        }
        var s = acc.sum()
        while e < count { let v = Double(x[e]); s += v * v; e &+= 1 }
        return s
    }

    /// Σ ((x[e] + x2[e])·scale + c·w[e])² over `count` elements (x2 optional; the sum x + x2 is rounded
    /// in the scalar type first, as a reduction pass would), accumulated in Double (8 lanes, fixed order).
    /// With c = 0, `w` is not read (no pass over the weights without an L2 penalty).
    public static func sumOfSquares<S: FlowScalar>(_ x: UnsafePointer<S>, _ x2: UnsafePointer<S>? = nil, scale: Double,
                                                   plus c: Double, times w: UnsafePointer<S>, count: Int) -> Double {
        if c == 0 && x2 == nil { return scale * scale * sumOfSquares(x, count: count) }
        let vectorEnd = count & ~7
        var acc = SIMD8<Double>(repeating: 0)
        let vs = SIMD8<Double>(repeating: scale), vc = SIMD8<Double>(repeating: c)
        var e = 0
        while e < vectorEnd {
            var g = load(x + e)
            if let x2 { g = g + load(x2 + e) }
            var v = SIMD8<Double>(g) * vs
            if c != 0 { v = v + vc * SIMD8<Double>(load(w + e)) }  // no pass over w without a penalty
            acc = acc + v * v
            e &+= 8
        }
        var s = acc.sum()
        while e < count {
            var g = x[e]
            if let x2 { g += x2[e] }
            var v = Double(g) * scale
            if c != 0 { v += c * Double(w[e]) }
            s += v * v
            e &+= 1
        }
        return s
    }
}
