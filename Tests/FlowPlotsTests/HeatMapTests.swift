import Testing
import FlowPlots

@Suite("Heat maps")
struct HeatMapTests {
    @Test("One rect per cell when all colours differ, in grid units with row 0 at the bottom")
    func cells() {
        let values = (0..<12).map(Double.init)  // [ny = 3, nx = 4]
        let svg = Plots.heatMap(values: values, nx: 4, ny: 3, xRange: 0...4, yRange: 0...3, title: "h", floor: -100)
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        let cells = parsed.elements(named: "rect", in: "cells")
        #expect(cells.count == 12)
        #expect(Set(cells.map { $0.attributes["fill"] ?? "" }).count == 12)
        // The maximum (value 11) is row j = 2, column i = 3: the top-right cell, drawn at y = 0.
        let top = cells.first { $0.attributes["fill"] == "#fde725" }
        #expect(top?.attributes["x"] == "3")
        #expect(top?.attributes["y"] == "0")
        let bottomLeft = cells.first { $0.attributes["x"] == "0" && $0.attributes["y"] == "2" }
        #expect(bottomLeft != nil)
    }

    @Test("Runs of equal colour merge: a constant field draws one rect per row")
    func merging() {
        let parsed = parseSVG(Plots.heatMap(values: Array(repeating: -1.5, count: 20), nx: 5, ny: 4, xRange: 0...1,
                                            yRange: 0...1, title: "c"))
        #expect(parsed.wellFormed)
        let cells = parsed.elements(named: "rect", in: "cells")
        #expect(cells.count == 4)
        #expect(cells.allSatisfy { $0.attributes["width"] == "5" && $0.attributes["fill"] == "#fde725" })
    }

    @Test("Values below the floor (default max − 10) take the floor colour; NaN cells are not painted")
    func floorAndNaN() {
        let values: [Double] = [0, -10, -1000, -.infinity, .nan, 0.5]  // [1, 6]; max 0.5, floor −9.5
        let svg = Plots.heatMap(values: values, nx: 6, ny: 1, xRange: 0...6, yRange: 0...1, title: "f")
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        let cells = parsed.elements(named: "rect", in: "cells")
        // Cells 1…3 (−10, −1000, −inf) merge into one floor-coloured run; cell 4 (NaN) is skipped.
        #expect(cells.map { $0.attributes["x"] ?? "" } == ["0", "1", "5"])
        #expect(cells[1].attributes["width"] == "3")
        #expect(cells[1].attributes["fill"] == "#440154")
        #expect(cells[2].attributes["fill"] == "#fde725")
        #expect(!containsNonFinite(svg))
        // The colour bar runs from the floor to the maximum.
        #expect(parsed.texts(class: "tick-label").contains("\u{2212}8"))
    }

    @Test("Colour bar with a viridis gradient and the log-density label; overlay points are drawn")
    func colorBarAndPoints() {
        let values = (0..<100).map { Double($0) / 10 }
        let points = Points2D(xs: [0.1, 0.5, 0.9, 5], ys: [0.1, 0.5, 0.9, 0.5])  // the last one is outside
        let parsed = parseSVG(Plots.heatMap(values: values, nx: 10, ny: 10, xRange: 0...1, yRange: 0...1,
                                            title: "p", points: points))
        #expect(parsed.wellFormed)
        #expect(parsed.texts(class: "axis-label").contains("log p(x) (nats)"))
        #expect(parsed.elements(named: "stop").count == ColorMap.viridisAnchors.count)
        #expect(parsed.elements(named: "stop").first?.attributes["stop-color"] == "#440154")
        #expect(parsed.dotCount() == 3)
    }

    @Test("Empty or short grids still give valid SVG")
    func degenerate() {
        #expect(parseSVG(Plots.heatMap(values: [], nx: 0, ny: 0, xRange: 0...1, yRange: 0...1, title: "e")).wellFormed)
        let short = parseSVG(Plots.heatMap(values: [1, 2], nx: 3, ny: 2, xRange: 0...1, yRange: 0...1, title: "s"))
        #expect(short.wellFormed)
        #expect(short.elements(named: "rect", in: "cells").count == 2)
        let allNaN = Plots.heatMap(values: [.nan, .nan], nx: 2, ny: 1, xRange: 0...1, yRange: 0...1, title: "n")
        #expect(parseSVG(allNaN).wellFormed)
        #expect(!containsNonFinite(allNaN))
    }

    @Test("Grid centres are the cell midpoints")
    func gridCenters() {
        #expect(Plots.gridCenters(0...4, count: 4) == [0.5, 1.5, 2.5, 3.5])
        #expect(Plots.gridCenters(-1...1, count: 2) == [-0.5, 0.5])
        #expect(Plots.gridCenters(0...1, count: 0).isEmpty)
    }
}
