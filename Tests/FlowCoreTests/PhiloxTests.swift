import Foundation
import Testing
@testable import FlowCore

@Suite("Philox4x32-10 and the draws built on it")
struct PhiloxTests {
    @Test("Random123 known-answer vectors")
    func knownAnswers() throws {
        let url = try #require(Bundle.module.url(forResource: "philox4x32_10_kat", withExtension: "txt", subdirectory: "Fixtures"))
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(lines.count >= 3)
        for line in lines {
            let w = line.split(separator: " ").map { UInt32($0, radix: 16)! }
            try #require(w.count == 10)
            let out = Philox4x32_10(key0: w[4], key1: w[5]).block(w[0], w[1], w[2], w[3])
            #expect([out.0, out.1, out.2, out.3] == Array(w[6..<10]), "counter \(w[0..<4]) key \(w[4..<6])")
        }
    }

    @Test("normal draws: mean, variance and Kolmogorov–Smirnov on 10⁶ draws")
    func normalDistribution() {
        let n = 1_000_000
        let s = RandomStream(seed: 12345, purpose: .auxiliary)
        var x = (0..<n).map { s.normal(UInt64($0)) }
        let mean = x.reduce(0, +) / Double(n)
        let variance = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
        #expect(abs(mean) < 5 / Double(n).squareRoot())  // 5 standard errors
        #expect(abs(variance - 1) < 5 * (2 / Double(n)).squareRoot())
        x.sort()
        var d = 0.0
        for (i, v) in x.enumerated() {
            let cdf = 0.5 * (1 + erf(v / 2.0.squareRoot()))
            d = max(d, abs(cdf - Double(i) / Double(n)), abs(Double(i + 1) / Double(n) - cdf))
        }
        // Critical value at α = 0.001: 1.95 / √n.
        #expect(d < 1.95 / Double(n).squareRoot(), "KS statistic \(d)")
    }

    @Test("uniform draws lie in [0, 1) with mean 1/2, and streams differ")
    func uniforms() {
        let a = RandomStream(seed: 7, purpose: .shuffle, substream: 0)
        let b = RandomStream(seed: 7, purpose: .shuffle, substream: 1)
        let ua = (0..<100_000).map { a.uniform(UInt64($0)) }
        #expect(ua.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(abs(ua.reduce(0, +) / 1e5 - 0.5) < 0.005)
        #expect(ua[0..<10] != (0..<10).map { b.uniform(UInt64($0)) }[...])
        let f = (0..<100_000).map { a.uniformFloat(UInt64($0)) }
        #expect(f.allSatisfy { $0 >= 0 && $0 < 1 })
    }

    @Test("permutations are permutations, pure functions of the address, and uniform on small n")
    func permutations() {
        let s = RandomStream(seed: 3, purpose: .shuffle, substream: 9)
        let p = s.permutation(1000)
        #expect(p.sorted() == Array(0..<1000))
        #expect(p == s.permutation(1000))
        #expect(p != RandomStream(seed: 4, purpose: .shuffle, substream: 9).permutation(1000))
        // All 6 permutations of 3 elements appear with frequency ≈ 1/6 over 60000 substreams.
        var counts: [[Int]: Int] = [:]
        for k in 0..<60_000 { counts[RandomStream(seed: 1, purpose: .shuffle, substream: UInt32(k)).permutation(3), default: 0] += 1 }
        #expect(counts.count == 6)
        for (_, c) in counts { #expect(abs(c - 10_000) < 500) }
    }
}
