import Testing
import FlowPlots

@Suite("Scatter panels and the four-panel figure")
struct ScatterPlotTests {
    @Test("The four-panel figure is well-formed XML with four titled panels and every point drawn")
    func fourPanel() {
        let svg = Plots.fourPanel(data: line(50), latent: line(40, start: -20), sampled: line(30), generated: line(20),
                                  title: "Two moons")
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed, "\(parsed.error ?? "")")
        #expect(parsed.elements.first?.name == "svg")
        #expect(parsed.elements(named: "g").filter { $0.attributes["class"] == "panel" }.count == 4)
        #expect(parsed.texts(class: "panel-title") == ["Data space X", "Latent space f(X)", "Sampled Z ~ N(0, I)", "Generated g(Z)"])
        #expect(parsed.texts(class: "title") == ["Two moons"])
        #expect(parsed.dotCount() == 50 + 40 + 30 + 20)
        // No legend: every panel holds a single series.
        #expect(parsed.texts(class: "legend-label").isEmpty)
    }

    @Test("Data-space panels share limits, and so do latent panels")
    func sharedLimits() {
        let svg = Plots.fourPanel(data: line(10), latent: line(10), sampled: line(10, start: 100), generated: line(10, start: 5),
                                  title: "")
        let parsed = parseSVG(svg)
        let panels = parsed.elements.filter { $0.name == "text" && $0.attributes["class"] == "tick-label" }
        #expect(!panels.isEmpty)
        // Both data-space panels (first and last) print the same tick labels.
        let labelsByPanel = splitByPanel(parsed)
        #expect(labelsByPanel.count == 4)
        #expect(labelsByPanel[0] == labelsByPanel[3])
        #expect(labelsByPanel[1] == labelsByPanel[2])
        #expect(labelsByPanel[0] != labelsByPanel[1])
    }

    private func splitByPanel(_ parsed: ParsedSVG) -> [[String]] {
        var result: [[String]] = []
        for element in parsed.elements {
            if element.name == "g", element.attributes["class"] == "panel" { result.append([]) }
            if element.name == "text", element.attributes["class"] == "tick-label", !result.isEmpty {
                result[result.count - 1].append(element.text)
            }
        }
        return result
    }

    @Test("Non-finite points and points outside explicit limits are skipped, never written as nan/inf")
    func nonFiniteSkipped() {
        var points = line(100)
        points.xs[3] = .nan
        points.ys[7] = .infinity
        points.xs[9] = -.infinity
        points.xs[10] = 1e6  // outside the explicit limits
        let panel = ScatterPanelSpec(title: "p", series: [ScatterSeries(name: "s", points: points, color: "#000")],
                                     xLimits: -1...100, yLimits: -1...200)
        let svg = Plots.panelGrid(panels: [panel], columns: 1, title: "t")
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        #expect(parsed.dotCount() == 96)
        #expect(!containsNonFinite(svg))
    }

    @Test("Large series are split round-robin into interleaved layers")
    func layers() {
        let panel = ScatterPanelSpec(title: "", series: [ScatterSeries(name: "s", points: line(5000), color: "#123456")])
        let parsed = parseSVG(Plots.panelGrid(panels: [panel], columns: 1, title: ""))
        let paths = parsed.elements(named: "path", in: "points")
        #expect(paths.count == ScatterSeries.layerCount)
        #expect(parsed.dotCount() == 5000)
        #expect(paths.allSatisfy { $0.attributes["stroke-linecap"] == "round" && $0.attributes["stroke"] == "#123456" })
    }

    @Test("A title with <&>\" is escaped and reads back unchanged")
    func escapedTitle() {
        let title = "RealNVP <x> & \"y\" 'z'"
        let svg = Plots.fourPanel(data: line(3), latent: line(3), sampled: line(3), generated: line(3), title: title)
        #expect(svg.contains("RealNVP &lt;x&gt; &amp; &quot;y&quot; &apos;z&apos;"))
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        #expect(parsed.texts(class: "title") == [title])
    }

    @Test("The same input gives the same bytes")
    func deterministic() {
        let a = Plots.fourPanel(data: line(300), latent: line(300), sampled: line(300), generated: line(300), title: "x")
        let b = Plots.fourPanel(data: line(300), latent: line(300), sampled: line(300), generated: line(300), title: "x")
        #expect(a == b)
        #expect(a.utf8.count > 1000)
    }

    @Test("Empty or constant data still gives a valid SVG")
    func emptyAndConstant() {
        let empty = Plots.fourPanel(data: .empty, latent: .empty, sampled: .empty, generated: .empty, title: "empty")
        let parsed = parseSVG(empty)
        #expect(parsed.wellFormed)
        #expect(parsed.dotCount() == 0)
        #expect(parsed.texts(class: "panel-title").count == 4)
        let constant = Points2D(xs: [2, 2, 2], ys: [5, 5, 5])
        let svg = Plots.fourPanel(data: constant, latent: constant, sampled: constant, generated: constant, title: "c")
        let constantParsed = parseSVG(svg)
        #expect(constantParsed.wellFormed)
        #expect(constantParsed.dotCount() == 12)
        #expect(!containsNonFinite(svg))
        let nothing = parseSVG(Plots.panelGrid(panels: [], columns: 0, title: "none"))
        #expect(nothing.wellFormed)
        #expect(nothing.texts(class: "title") == ["none"])
    }

    @Test("A panel with two series gets a legend row with both names")
    func legend() {
        let panel = ScatterPanelSpec(title: "", series: [
            ScatterSeries(name: "data", points: line(5), color: "#1f77b4"),
            ScatterSeries(name: "model", points: line(6), color: "#ff7f0e"),
        ])
        let parsed = parseSVG(Plots.panelGrid(panels: [panel, panel], columns: 2, title: "L"))
        #expect(parsed.texts(class: "legend-label") == ["data", "model"])
        #expect(parsed.dotCount() == 22)
    }
}
