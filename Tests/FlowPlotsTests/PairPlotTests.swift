import Testing
import FlowPlots

@Suite("Pairwise scatter matrix")
struct PairPlotTests {
    /// `[count, 3]` rows `(k, 2k, −k)` for `k = 0…count−1`.
    private func table(_ count: Int) -> [Double] {
        (0..<count).flatMap { [Double($0), 2 * Double($0), -Double($0)] }
    }

    @Test("All feature pairs in lexicographic order")
    func allPairs() {
        #expect(Plots.allFeaturePairs(dimension: 3).map { [$0.0, $0.1] } == [[0, 1], [0, 2], [1, 2]])
        #expect(Plots.allFeaturePairs(dimension: 4, limit: 2).map { [$0.0, $0.1] } == [[0, 1], [0, 2]])
        #expect(Plots.allFeaturePairs(dimension: 1).isEmpty)
        #expect(Plots.allFeaturePairs(dimension: 0).isEmpty)
    }

    @Test("One panel per valid pair, data and samples drawn, legend and feature names shown")
    func panels() {
        let svg = Plots.pairwiseScatter(
            data: table(40), samples: table(30), dimension: 3, pairs: [(0, 1), (0, 2), (1, 2), (0, 7)],
            featureNames: ["age", "income <k$>"], title: "Tabular")
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed, "\(parsed.error ?? "")")
        #expect(parsed.elements(named: "g").filter { $0.attributes["class"] == "panel" }.count == 3)
        #expect(parsed.dotCount() == 3 * (40 + 30))
        #expect(parsed.texts(class: "legend-label") == ["Data", "Samples"])
        #expect(parsed.texts(class: "axis-label") == ["age", "income <k$>", "age", "x2", "income <k$>", "x2"])
        let strokes = Set(parsed.elements(named: "path", in: "points").compactMap { $0.attributes["stroke"] })
        #expect(strokes == ["#1f77b4", "#ff7f0e"])
    }

    @Test("Empty samples, no pairs, and NaN entries are handled")
    func degenerate() {
        var data = table(10)
        data[4] = .nan
        let svg = Plots.pairwiseScatter(data: data, samples: [], dimension: 3, pairs: [(0, 1)], title: "e")
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        #expect(parsed.dotCount() == 9)
        #expect(!containsNonFinite(svg))
        #expect(parseSVG(Plots.pairwiseScatter(data: [], samples: [], dimension: 2, pairs: [], title: "none")).wellFormed)
    }
}
