import FlowCore
import Testing
@testable import FlowDistributed

@Suite("Fixed-point gradient summation")
struct FixedPointGradientTests {
    @Test("sums are identical in any order and grouping, and accurate to Float rounding")
    func orderIndependent() {
        let r = RandomStream(seed: 9, purpose: .auxiliary)
        let m = 13, n = 257
        // Values spanning many binades, including zeros and negative numbers.
        let parts: [[Float]] = (0..<m).map { j in (0..<n).map { i in
            let g = r.normal(UInt64(j * n + i))
            return i % 17 == 0 ? 0 : Float(g * Double.pow(2, Double((i % 23) - 11)))
        } }
        let maxExp = parts.flatMap { $0 }.map { abs($0) }.max()!.exponent
        let S = FixedPointGradient.scaleExponent(microBatches: m)
        func sum(order: [Int], groups: Int) -> [Float] {
            // Sum in `groups` partial accumulators, then add the partials.
            var partials = [[Int64]](repeating: [Int64](repeating: 0, count: n), count: groups)
            for (k, j) in order.enumerated() {
                parts[j].withUnsafeBufferPointer { src in
                    partials[k % groups].withUnsafeMutableBufferPointer { acc in
                        FixedPointGradient.accumulate(src.baseAddress!, count: n, shift: S - Int(maxExp), into: acc.baseAddress!)
                    }
                }
            }
            var total = [Int64](repeating: 0, count: n)
            for p in partials.reversed() { for i in 0..<n { total[i] &+= p[i] } }
            var out = [Float](repeating: 0, count: n)
            total.withUnsafeBufferPointer { t in out.withUnsafeMutableBufferPointer { o in
                FixedPointGradient.decode(t.baseAddress!, count: n, shift: S - Int(maxExp), divisor: Double(m), into: o.baseAddress!)
            } }
            return out
        }
        let a = sum(order: Array(0..<m), groups: 1)
        let b = sum(order: Array((0..<m).reversed()), groups: 3)
        let c = sum(order: RandomStream(seed: 1, purpose: .shuffle).permutation(m), groups: 5)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        #expect(a.map(\.bitPattern) == c.map(\.bitPattern))
        for i in 0..<n {
            let exact = (0..<m).reduce(0.0) { $0 + Double(parts[$1][i]) } / Double(m)
            #expect(abs(Double(a[i]) - exact) <= abs(exact) * 1.2e-7 + 1e-30, "element \(i): \(a[i]) vs \(exact)")
        }
    }

    @Test("max exponent and non-finite detection")
    func exponents() {
        let v: [Float] = [0, -3, 0.5, 2.9]
        #expect(v.withUnsafeBufferPointer { FixedPointGradient.maxExponent($0.baseAddress!, count: 4) } == (1, false))
        let z: [Float] = [0, 0]
        #expect(z.withUnsafeBufferPointer { FixedPointGradient.maxExponent($0.baseAddress!, count: 2) }.exponent == FixedPointGradient.zeroExponent)
        for bad in [Float.nan, .infinity, -.infinity] {
            let w: [Float] = [1, bad]
            #expect(w.withUnsafeBufferPointer { FixedPointGradient.maxExponent($0.baseAddress!, count: 2) }.nonFinite)
        }
    }
}
