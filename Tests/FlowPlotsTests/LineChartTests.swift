import Testing
import FlowPlots

@Suite("Line charts")
struct LineChartTests {
    private func pointCount(_ element: ParsedElement) -> Int {
        (element.attributes["points"] ?? "").split(separator: " ").count
    }

    @Test("NaN and infinity split a curve; an isolated point gets a marker; nothing prints as nan/inf")
    func gaps() {
        let series = LineSeries(name: "train", ys: [1, 2, .nan, 4, 5, .infinity, 7])
        let svg = Plots.lineChart(series: [series], title: "t")
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        let curves = parsed.elements(named: "polyline", in: "series")
        #expect(curves.map(pointCount) == [2, 2])
        #expect(parsed.elements(named: "circle", in: "series").count == 1)
        #expect(!containsNonFinite(svg))
    }

    @Test("A series with one point draws one marker and no line")
    func singlePoint() {
        let parsed = parseSVG(Plots.lineChart(series: [LineSeries(name: "v", ys: [2.5])], title: "one"))
        #expect(parsed.wellFormed)
        #expect(parsed.elements(named: "circle", in: "series").count == 1)
        #expect(parsed.elements(named: "polyline", in: "series").isEmpty)
    }

    @Test("Loss curves carry the axis labels, a legend and integer epoch ticks")
    func lossCurves() {
        let svg = Plots.lossCurves(train: [3.1, 2.4, 2.0], validation: [3.3, 2.6, 2.3], title: "Loss")
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        #expect(parsed.texts(class: "axis-label") == ["epoch", "NLL (nats, data units)"])
        #expect(parsed.texts(class: "legend-label") == ["train", "validation"])
        let curves = parsed.elements(named: "polyline", in: "series")
        #expect(curves.count == 2)
        #expect(curves[1].attributes["stroke-dasharray"] != nil)
        let xLabels = parsed.texts(class: "tick-label").filter { !$0.contains(".") }
        #expect(xLabels == ["1", "2", "3"])
    }

    @Test("Constant, empty and all-NaN series still give valid charts with ticks")
    func degenerate() {
        for series in [[LineSeries(name: "c", ys: [2, 2, 2, 2])], [], [LineSeries(name: "n", ys: [.nan, .nan])]] {
            let svg = Plots.lineChart(series: series, title: "d")
            let parsed = parseSVG(svg)
            #expect(parsed.wellFormed)
            #expect(parsed.texts(class: "tick-label").count >= 4)
            #expect(!containsNonFinite(svg))
        }
    }

    @Test("Explicit limits are honoured and the output is deterministic")
    func limitsAndDeterminism() {
        let series = [LineSeries(name: "a", xs: [0, 1, 2], ys: [0, 10, 20])]
        let a = Plots.lineChart(series: series, title: "x", yLimits: 0...5, legend: .hidden)
        #expect(a == Plots.lineChart(series: series, title: "x", yLimits: 0...5, legend: .hidden))
        let parsed = parseSVG(a)
        #expect(parsed.texts(class: "legend-label").isEmpty)
        #expect(parsed.texts(class: "tick-label").contains("5"))
        #expect(!parsed.texts(class: "tick-label").contains("20"))
    }
}
