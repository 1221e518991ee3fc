import Foundation
import Testing
import FlowPlots

/// Plots of a diverged run: NaN, ±∞ and huge finite values never crash a figure, never print as nan/inf,
/// and an area with nothing finite to draw says so.
@Suite("Plots of non-finite and huge values")
struct NonFinitePlotTests {
    static let note = "nothing to plot: every value is \u{00B1}\u{221E} or not a number"
    static let huge = Double.greatestFiniteMagnitude
    /// 2⁻¹⁰⁶³ ≈ 1.0e-320, a subnormal (written as a literal, the compiler warns that it loses precision).
    static let subnormal = Double.leastNonzeroMagnitude * 2048

    @Test("Ticks for huge, tiny and constant huge ranges are finite and inside the domain",
          arguments: [(-1e42, -1e42), (2.7e76, 2.7e76), (-1e300, 1e300), (-huge, huge), (huge, huge), (0.0, subnormal),
                      (-3e38, 3e38), (1e20, 1e20 + 1e9)])
    func hugeRanges(low: Double, high: Double) {
        for ticks in [NiceTicks.within(low...high), NiceTicks.within(low...high, minimumStep: 1), NiceTicks.loose(low...high)] {
            #expect(!ticks.values.isEmpty)
            #expect(ticks.values.allSatisfy { $0.isFinite })
            #expect(ticks.step.isFinite && ticks.step > 0)
            let slack = (ticks.domain.upperBound - ticks.domain.lowerBound) * 1e-9
            #expect(ticks.values.allSatisfy { $0 >= ticks.domain.lowerBound - slack && $0 <= ticks.domain.upperBound + slack })
            #expect(Set(ticks.labels).count == ticks.values.count, "labels \(ticks.labels)")
        }
    }

    @Test("Labels switch to exact scientific notation at 10⁹ and below 10⁻⁹")
    func scientificLabels() {
        #expect(NiceTicks.within(0...3e10).labels == ["0", "1e10", "2e10", "3e10"])
        #expect(NiceTicks.within(0...2e9).labels == ["0", "5e8", "1e9", "1.5e9", "2e9"])
        #expect(NiceTicks.within((-4e-12)...0).labels == ["\u{2212}4e\u{2212}12", "\u{2212}3e\u{2212}12", "\u{2212}2e\u{2212}12", "\u{2212}1e\u{2212}12", "0"])
        #expect(NiceTicks.within(1e300...1e300).labels.allSatisfy { $0.contains("e") })
        // Below 10⁹ nothing changes.
        #expect(NiceTicks.within(0...100).labels == ["0", "20", "40", "60", "80", "100"])
    }

    @Test("Robust and padded limits of values near ±Double.greatestFiniteMagnitude are finite")
    func limits() {
        for range in [PlotLimits.robust([-Self.huge, Self.huge]), PlotLimits.robust([-Self.huge, 0, Self.huge, .nan]),
                      PlotLimits.padded([-Self.huge, Self.huge, .infinity])] {
            #expect(range.lowerBound.isFinite && range.upperBound.isFinite && range.lowerBound < range.upperBound)
        }
    }

    @Test("A heat map of huge or no finite log-densities draws, says when there is nothing to plot")
    func heatMaps() {
        let cases: [[Double]] = [[-2.7e76, -2.7e76, -3e76, .nan], [Self.huge, -Self.huge, 0, 1], [-.infinity, .nan, .nan, .nan]]
        for values in cases {
            let svg = Plots.heatMap(values: values, nx: 2, ny: 2, xRange: 0...1, yRange: 0...1, title: "h",
                                    points: Points2D(xs: [.nan, 1e38], ys: [0.5, .infinity]))
            let parsed = parseSVG(svg)
            #expect(parsed.wellFormed)
            #expect(!containsNonFinite(svg))
            #expect(parsed.texts(class: "note") == (values.contains { $0.isFinite } ? [] : [Self.note]))
        }
    }

    @Test("Loss curves that are all NaN, or huge, draw; all-NaN ones carry the note")
    func lossCurves() {
        let nan = Plots.lossCurves(train: [.nan], validation: [.nan], title: "Negative log-likelihood")
        #expect(parseSVG(nan).wellFormed)
        #expect(parseSVG(nan).texts(class: "note") == [Self.note])
        #expect(!containsNonFinite(nan))
        let huge = Plots.lossCurves(train: [2.7e76, 1e42, .nan, 3], validation: [.infinity, -Self.huge, 1, 2], title: "l")
        #expect(parseSVG(huge).wellFormed)
        #expect(parseSVG(huge).texts(class: "note").isEmpty)
        #expect(!containsNonFinite(huge))
        // No points at all is an empty chart, not "nothing to plot".
        #expect(parseSVG(Plots.lineChart(series: [], title: "e")).texts(class: "note").isEmpty)
    }

    @Test("Scatter panels of non-finite points say so; huge points draw")
    func scatter() {
        let nan = Points2D(xs: [.nan, .infinity, 1], ys: [0, 1, -.infinity])
        let big = Points2D(xs: [-Self.huge, Self.huge, 0], ys: [3e38, -3e38, 1])
        let svg = Plots.fourPanel(data: big, latent: nan, sampled: line(5), generated: nan, title: "f")
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        #expect(!containsNonFinite(svg))
        #expect(parsed.texts(class: "note") == [Self.note, Self.note])  // f(X) and g(Z)
        let pairs = Plots.pairwiseScatter(data: [.nan, .nan, .nan, .nan], samples: [], dimension: 2, pairs: [(0, 1)], title: "p")
        #expect(parseSVG(pairs).texts(class: "note") == [Self.note])
    }
}
