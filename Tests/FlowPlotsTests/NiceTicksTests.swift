import Foundation
import Testing
import FlowPlots

@Suite("Nice ticks (1-2-5 steps)")
struct NiceTicksTests {
    @Test("0…1 gives 0, 0.2, …, 1.0")
    func unitRange() {
        let ticks = NiceTicks.loose(0...1)
        #expect(ticks.values == [0, 0.2, 0.4, 0.6, 0.8, 1.0])
        #expect(ticks.step == 0.2)
        #expect(ticks.labels == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        #expect(NiceTicks.within(0...1).values == [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    }

    @Test("−3.7…12.2 widens to −5, 0, 5, 10, 15 (loose) or keeps 0, 5, 10 (within)")
    func mixedSign() {
        let loose = NiceTicks.loose(-3.7...12.2)
        #expect(loose.values == [-5, 0, 5, 10, 15])
        #expect(loose.domain == -5...15)
        #expect(loose.labels == ["\u{2212}5", "0", "5", "10", "15"])
        let within = NiceTicks.within(-3.7...12.2)
        #expect(within.values == [0, 5, 10])
        #expect(within.domain == -3.7...12.2)
    }

    @Test("Golden cases for within")
    func withinGolden() {
        #expect(NiceTicks.within(-1.05...1.03).values == [-1, -0.5, 0, 0.5, 1])
        #expect(NiceTicks.within(0...100).values == [0, 20, 40, 60, 80, 100])
        #expect(NiceTicks.within(0.001...0.0042).values == [0.001, 0.002, 0.003, 0.004])
        #expect(NiceTicks.within(0.001...0.0042).labels == ["0.001", "0.002", "0.003", "0.004"])
        #expect(NiceTicks.within(1...3, minimumStep: 1).values == [1, 2, 3])
        #expect(NiceTicks.within((-12)...(-2)).values == [-12, -10, -8, -6, -4, -2])
    }

    @Test("niceStep picks the smallest 1, 2 or 5 × 10^k at or above the raw step",
          arguments: [(0.2, 0.2), (0.21, 0.5), (3.18, 5.0), (7.0, 10.0), (1000.0, 1000.0), (0.0013, 0.002),
                      (1.0, 1.0), (0.3, 0.5), (45.0, 50.0), (0.0, 1.0)])
    func niceStep(raw: Double, expected: Double) {
        #expect(NiceTicks.niceStep(for: raw) == expected)
    }

    @Test("Steps are always 1, 2 or 5 × 10^k and ticks stay inside the range")
    func invariants() {
        for (low, high) in [(-0.37, 0.91), (3.0, 3.02), (-1e4, 2.5e4), (17.0, 1234.0), (-8.8, -8.1)] {
            let ticks = NiceTicks.within(low...high)
            let exponent = (log10(ticks.step)).rounded(.down)
            let mantissa = (ticks.step / pow(10, exponent) * 1e6).rounded() / 1e6
            #expect([1.0, 2, 5].contains(mantissa), "step \(ticks.step)")
            #expect(ticks.values.count >= 2)
            #expect(ticks.values.allSatisfy { $0 >= low - 1e-12 && $0 <= high + 1e-12 })
        }
    }

    @Test("Degenerate and non-finite ranges still give ticks")
    func degenerate() {
        let constant = NiceTicks.within(3.2...3.2)
        #expect(!constant.values.isEmpty)
        #expect(constant.domain.lowerBound < 3.2 && constant.domain.upperBound > 3.2)
        #expect(constant.values.contains(3.2))
        #expect(NiceTicks.within(-Double.infinity...Double.infinity).values == [0, 0.2, 0.4, 0.6, 0.8, 1.0])
        #expect(NiceTicks.loose(0...0).values == [-0.6, -0.4, -0.2, 0, 0.2, 0.4, 0.6])
    }
}
