import Foundation
import Testing
@testable import FlowCore

@Suite("Exact invertibility")
struct InvertibilityTests {
    /// (dim, tolerance): the inverse computes y − t, which cancels when |t| ≫ |x·eˢ|; the round-off then
    /// grows with depth and width, hence the looser bound for D = 16.
    @Test("decode(encode(x)) = x, Float32, random models: 1e-5 relative for D ≤ 8",
          arguments: [(2, 1e-5), (3, 1e-5), (7, 1e-5), (8, 1e-5), (16, 5e-5)] as [(Int, Float)])
    func roundTrip(dim: Int, tolerance: Float) throws {
        for mask in MaskScheme.allCases {
            let config = FlowConfiguration(dim: dim, couplings: 6, hidden: 32, hiddenLayers: 2, maskScheme: mask)
            var model = try RealNVP<Float>(configuration: config, seed: UInt64(dim))
            // Perturb the biases too, so that t ≠ 0 and s ≠ 0 everywhere.
            let r = RandomStream(seed: 1, purpose: .auxiliary)
            for i in model.parameters.indices { model.parameters[i] += Float(0.05 * r.normal(UInt64(i))) }
            let data = Matrix(rows: 500, columns: dim, values: (0..<(500 * dim)).map { Float(2 * r.normal(UInt64(1_000_000 + $0))) })
            let (z, _) = model.encode(data)
            #expect(z.values != data.values)
            let back = model.decode(z)
            var worst: Float = 0
            for (a, b) in zip(back.values, data.values) { worst = max(worst, abs(a - b) / max(1, abs(b))) }
            #expect(worst < tolerance, "D=\(dim) \(mask): max relative round-trip error \(worst)")
        }
    }

    @Test("encode(decode(z)) = z in Float64 to 1e-12")
    func reverseRoundTrip() throws {
        let config = FlowConfiguration(dim: 5, couplings: 4, hidden: 16, hiddenLayers: 3, maskScheme: .checkerboard, learnableScale: true)
        let model = try RealNVP<Double>(configuration: config, seed: 99)
        let r = RandomStream(seed: 2, purpose: .auxiliary)
        let z = Matrix(rows: 64, columns: 5, values: (0..<320).map { r.normal(UInt64($0)) })
        let again = model.encode(model.decode(z)).z
        for (a, b) in zip(again.values, z.values) { #expect(abs(a - b) < 1e-12) }
    }
}
