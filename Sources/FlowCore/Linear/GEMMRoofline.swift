import CFlowSupport
import Foundation

/// This machine's single-core sgemm rate on exactly the matrix products of one worker's training step
/// (`bench --roofline`): the step's efficiency is its GFLOP/s over T × this rate.
///
/// The products of a step on n rows (per coupling, for each of the s and t networks, for each Dense layer
/// in → out, as `Dense` calls them; row-major): forward Y = X·Wᵀ (`[n, in]·[out, in]ᵀ`), the weight gradient
/// dW = dYᵀ·X (`[n, out]ᵀ·[n, in]`), and dX = dY·W (`[n, out]·[out, in]`; not for the first coupling's first
/// layers, whose input needs no gradient), the same set
/// ``FlowConfiguration/trainingFLOPsPerSample`` counts. The element-wise work of a step (tanh, exp, Adam) is not in
/// it, so a step cannot reach 100 %.
public enum GEMMRoofline {
    /// One product C[m, n] = op(A)·op(B) with inner dimension k.
    public struct Shape: Hashable, Sendable {
        /// Whether A, B are transposed; C is `[m, n]`, the inner dimension k.
        public var transA: Bool, transB: Bool, m: Int, n: Int, k: Int
        /// 2·m·n·k floating-point operations.
        public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    }

    /// The products of one worker's step on `rows` rows of `model`, with their counts per step.
    public static func shapes(model: FlowConfiguration, rows: Int) -> [(shape: Shape, count: Int)] {
        var layers: [(Int, Int)] = [(model.dim, model.hidden)]
        layers += Array(repeating: (model.hidden, model.hidden), count: model.hiddenLayers - 1)
        layers.append((model.hidden, model.dim))
        // Per step: the s and t networks of every coupling; the first coupling's networks need no dX of their first
        // layer (nothing before them has parameters).
        let networks = 2 * model.couplings
        var counts: [Shape: Int] = [:]
        for (l, (input, output)) in layers.enumerated() {
            counts[Shape(transA: false, transB: true, m: rows, n: output, k: input), default: 0] += networks   // Y = X·Wᵀ
            counts[Shape(transA: true, transB: false, m: output, n: input, k: rows), default: 0] += networks   // dW = dYᵀ·X
            counts[Shape(transA: false, transB: false, m: rows, n: input, k: output), default: 0] += l > 0 ? networks : networks - 2  // dX = dY·W
        }
        return counts.filter { $0.value > 0 }.map { ($0.key, $0.value) }.sorted { $0.shape.flops > $1.shape.flops }
    }

    /// GFLOP/s of the step's product mix on this thread (BLAS single-threaded): each product timed over enough
    /// repetitions to last about `seconds`, the mix's flops over its time; the median of `repeats` measurements.
    public static func measure(model: FlowConfiguration, rows: Int, seconds: Double = 0.1, repeats: Int = 5) -> Double {
        BLASRuntime.useSingleThread()
        let mix = shapes(model: model, rows: rows)
        var rates: [Double] = []
        for _ in 0..<repeats {
            var totalFlops = 0.0, totalSeconds = 0.0
            for (shape, count) in mix {
                let perCall = timePerCall(shape, seconds: seconds / Double(mix.count))
                totalFlops += shape.flops * Double(count)
                totalSeconds += perCall * Double(count)
            }
            rates.append(totalFlops / totalSeconds / 1e9)
        }
        return rates.sorted()[rates.count / 2]
    }

    /// Seconds per call of one product (inputs filled with small values, so no subnormals or overflow).
    static func timePerCall(_ s: Shape, seconds: Double) -> Double {
        let a = AlignedBuffer<Float>(count: s.m * s.k), b = AlignedBuffer<Float>(count: s.k * s.n), c = AlignedBuffer<Float>(count: s.m * s.n)
        for i in 0..<a.count { a[i] = Float(i % 7) * 0.01 - 0.03 }
        for i in 0..<b.count { b[i] = Float(i % 5) * 0.01 - 0.02 }
        let lda = s.transA ? s.m : s.k, ldb = s.transB ? s.k : s.n
        func call() {
            Float.gemm(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: 1, a: a.base, lda: lda,
                       b: b.base, ldb: ldb, beta: 0, c: c.base, ldc: s.n)
        }
        call()  // warm-up: packing buffers, caches
        var calls = 0
        let t0 = flow_monotonic_seconds()
        var elapsed = 0.0
        repeat {
            for _ in 0..<8 { call() }
            calls += 8
            elapsed = flow_monotonic_seconds() - t0
        } while elapsed < seconds
        return elapsed / Double(calls)
    }
}
