import Testing
@testable import FlowCore

@Suite("Vector kernels")
struct VectorKernelsTests {
    /// Σ ((x + x2)·scale + c·w)² against a Double loop, for counts that leave a tail after the 8-lane body.
    @Test("sumOfSquares with a second buffer, a scale and a penalty term equals a Double reference",
          arguments: [1, 7, 8, 13, 64, 1001])
    func sumOfSquaresReference(count: Int) {
        let r = RandomStream(seed: 7, purpose: .auxiliary)
        let x = (0..<count).map { Float(r.normal(UInt64($0))) }
        let x2 = (0..<count).map { Float(r.normal(UInt64(10_000 + $0))) }
        let w = (0..<count).map { Float(r.normal(UInt64(20_000 + $0))) }
        for (useSecond, c) in [(false, 0.0), (true, 0.0), (false, 0.02), (true, 0.02)] {
            var expected = 0.0
            for e in 0..<count {
                let g = useSecond ? x[e] + x2[e] : x[e]  // rounded in Float first, as the kernel documents
                let v = Double(g) * 0.25 + c * Double(w[e])
                expected += v * v
            }
            let got = x.withUnsafeBufferPointer { xp in
                x2.withUnsafeBufferPointer { x2p in
                    w.withUnsafeBufferPointer { wp in
                        VectorKernels.sumOfSquares(xp.baseAddress!, useSecond ? x2p.baseAddress! : nil, scale: 0.25,
                                                   plus: c, times: wp.baseAddress!, count: count)
                    }
                }
            }
            #expect(abs(got - expected) <= 1e-12 * expected, "count \(count), second \(useSecond), c \(c): \(got) vs \(expected)")
        }
    }

    /// Without a penalty the weights do not enter the gradient norm: a non-finite weight must not make the
    /// norm non-finite (0·NaN would), which also shows that the kernel does not read them.
    @Test("sumOfSquares with c = 0 ignores the weights, even non-finite ones")
    func sumOfSquaresIgnoresWeightsWithoutPenalty() {
        let x: [Float] = (0..<19).map { Float($0) - 9 }
        let x2: [Float] = (0..<19).map { 0.5 * Float($0) }
        let w = [Float](repeating: .nan, count: 19)
        var expected = 0.0
        for e in 0..<19 { let v = Double(x[e] + x2[e]) * 2; expected += v * v }
        let got = VectorKernels.sumOfSquares(x, x2, scale: 2, plus: 0, times: w, count: 19)
        #expect(got == expected)
    }
}
