/// Exact, order-independent summation of Float gradients for the reproducible mode.
///
/// Each micro-batch's gradient g is mapped to integers q = round(g · 2^(S − e_t)), with e_t the largest
/// binary exponent of |g| over tensor t in every micro-batch of the step (agreed by an allreduce-max), and
/// S chosen so that |q| < 2⁵¹ and the sum of all M micro-batches stays below 2⁶². Integer addition is
/// associative, so the per-worker, per-rank and MPI sums give the same bits in any order and grouping;
/// the result is turned back into Float once: g = Float(Σq · 2^(e_t − S) / B).
///
/// Resolution: 2^(e_t − S) ≈ 2⁻⁵⁰ of the tensor's largest entry, far below Float's own rounding.
public enum FixedPointGradient {
    /// Exponent sentinel of a tensor whose gradient is all zero.
    public static let zeroExponent: Int64 = -10_000

    /// S for a step with `microBatches` micro-batches in the global batch (at most 50; smaller when M >
    /// 2048 so that the sum cannot overflow).
    public static func scaleExponent(microBatches: Int) -> Int {
        var bits = 0
        while (1 << bits) < max(1, microBatches) { bits += 1 }
        return min(50, 61 - bits)
    }

    /// The binary exponent of the largest |x| among `count` elements (`zeroExponent` if all are zero) and
    /// whether any element is NaN or infinite.
    @inlinable
    public static func maxExponent(_ x: UnsafePointer<Float>, count: Int) -> (exponent: Int64, nonFinite: Bool) {
        var m: Float = 0
        var bad = false
        for e in 0..<count {
            let a = abs(x[e])
            if !(a <= Float.greatestFiniteMagnitude) { bad = true }
            m = a > m ? a : m
        }
        if bad { return (zeroExponent, true) }
        return (m == 0 ? zeroExponent : Int64(m.exponent), false)
    }

    /// acc[e] += round(x[e] · 2^shift) for `count` elements, rounding half to even. Requires
    /// |x[e]| · 2^shift < 2⁵¹ (guaranteed by the choice of S).
    @inlinable
    public static func accumulate(_ x: UnsafePointer<Float>, count: Int, shift: Int, into acc: UnsafeMutablePointer<Int64>) {
        let scale = Double(sign: .plus, exponent: shift, significand: 1)
        // Adding 1.5·2⁵² rounds to an integer and places it in the low mantissa bits: for |d| < 2⁵¹ the
        // bit pattern of (d + magic) minus that of magic is round(d) exactly.
        let magic = 6_755_399_441_055_744.0  // 1.5 · 2^52
        let magicBits = Int64(bitPattern: magic.bitPattern)
        for e in 0..<count {
            let r = Double(x[e]) * scale + magic
            acc[e] &+= Int64(bitPattern: r.bitPattern) &- magicBits
        }
    }

    /// g[e] = Float(acc[e] · 2^(−shift) / divisor) for `count` elements.
    @inlinable
    public static func decode(_ acc: UnsafePointer<Int64>, count: Int, shift: Int, divisor: Double,
                              into g: UnsafeMutablePointer<Float>) {
        let scale = Double(sign: .plus, exponent: -shift, significand: 1)
        for e in 0..<count { g[e] = Float(Double(acc[e]) * scale / divisor) }
    }
}
