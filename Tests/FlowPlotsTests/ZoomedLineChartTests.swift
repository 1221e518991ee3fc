import Testing
import FlowPlots

@Suite("Zoomed line chart with a full-range overview")
struct ZoomedLineChartTests {
    /// The pixel points of a polyline's `points` attribute.
    private func pixels(_ element: ParsedElement) -> [(x: Double, y: Double)] {
        (element.attributes["points"] ?? "").split(separator: " ").map { pair in
            let xy = pair.split(separator: ",").map { Double($0) ?? .nan }
            return (xy[0], xy[1])
        }
    }

    /// The plot frame of a panel: its unfilled rect with a stroke.
    private func frame(_ parsed: ParsedSVG, in cssClass: String) throws -> (x: Double, y: Double, width: Double, height: Double) {
        let rect = try #require(parsed.elements(named: "rect", in: cssClass).first {
            $0.attributes["fill"] == "none" && $0.attributes["stroke"] != nil && !$0.within("legend")
        })
        let a = rect.attributes
        return (Double(a["x"] ?? "") ?? .nan, Double(a["y"] ?? "") ?? .nan, Double(a["width"] ?? "") ?? .nan,
                Double(a["height"] ?? "") ?? .nan)
    }

    private let train: [Double] = [50, 3, 2.5, 2.2, 2.1, 2.05]
    private let validation: [Double] = [40, 3.2, 2.7, 2.4, 2.3, 2.25]
    private var series: [LineSeries] {
        [LineSeries(name: "train", ys: train), LineSeries(name: "validation", ys: validation, dashed: true)]
    }

    @Test("The overview draws every epoch inside its frame, the first epoch's large loss near its top")
    func overviewCoversEverything() throws {
        let svg = Plots.zoomedLineChart(series: series, title: "NLL", yLimits: 2...3.3, zoomTitle: "zoomed")
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        #expect(!containsNonFinite(svg))
        let box = try frame(parsed, in: "overview")
        let curves = parsed.elements(named: "polyline", in: "overview")
        #expect(curves.count == 2)
        for curve in curves {
            let points = pixels(curve)
            #expect(points.count == 6)
            for p in points {
                #expect(p.x >= box.x - 0.01 && p.x <= box.x + box.width + 0.01)
                #expect(p.y >= box.y - 0.01 && p.y <= box.y + box.height + 0.01)
            }
        }
        // The y range is the finite values' range widened by 5 %: 2.05 … 50 maps to the frame minus the margins.
        let first = try #require(curves.first.map(pixels)?.first)
        let last = try #require(curves.first.map(pixels)?.last)
        let pad = 0.05 * (50 - 2.05) / ((50 - 2.05) * 1.1)
        #expect(abs(first.y - (box.y + pad * box.height)) < 0.02)
        #expect(abs(last.y - (box.y + box.height - pad * box.height)) < 0.02)
        #expect(parsed.texts(class: "panel-title") == ["zoomed", "All epochs, full range"])
    }

    @Test("The main panel keeps the zoom; the overview marks it with a window spanning exactly the zoomed y range")
    func zoomKeptAndMarked() throws {
        let parsed = parseSVG(Plots.zoomedLineChart(series: series, title: "NLL", yLimits: 2...3.3))
        let zoomedTicks = parsed.elements.filter { $0.name == "text" && $0.within("zoomed") && $0.attributes["class"] == "tick-label" }
        // Epoch ticks 1 … 6 and NLL ticks within 2 … 3.3: nothing of the full range (up to 50).
        let numbers = zoomedTicks.compactMap { Double($0.text) }
        #expect(numbers.count == zoomedTicks.count && !numbers.isEmpty)
        #expect((numbers.max() ?? .infinity) <= 6)
        #expect(numbers.contains { $0 > 2 && $0 < 3.3 && $0 != $0.rounded() })
        // The main panel's curves run off its top (clipped), so its first points lie above the frame.
        let main = try frame(parsed, in: "zoomed")
        let firstMain = try #require(parsed.elements(named: "polyline", in: "zoomed").first.map(pixels)?.first)
        #expect(firstMain.y < main.y)

        let box = try frame(parsed, in: "overview")
        let window = try #require(parsed.elements(named: "rect", in: "zoom-window").first?.attributes)
        let low = 2.05 - 0.05 * (50 - 2.05), high = 50 + 0.05 * (50 - 2.05)
        func pixel(_ v: Double) -> Double { box.y + box.height - (v - low) / (high - low) * box.height }
        #expect(abs((Double(window["y"] ?? "") ?? 0) - pixel(3.3)) < 0.02)
        #expect(abs((Double(window["height"] ?? "") ?? 0) - (pixel(2) - pixel(3.3))) < 0.03)
        #expect(abs((Double(window["x"] ?? "") ?? 0) - box.x) < 0.01)
        #expect(abs((Double(window["width"] ?? "") ?? 0) - box.width) < 0.01)
    }

    @Test("One legend for both panels, outside both plot areas")
    func legendOnce() throws {
        let parsed = parseSVG(Plots.zoomedLineChart(series: series, title: "NLL", yLimits: 2...3.3))
        #expect(parsed.texts(class: "legend-label") == ["train", "validation"])
        let legend = try #require(parsed.elements(named: "rect", in: "legend").first?.attributes)
        let overview = try frame(parsed, in: "overview")
        #expect((Double(legend["y"] ?? "") ?? 0) > overview.y + overview.height + 20)
        #expect(parsed.texts(class: "axis-label") == ["epoch", "NLL (nats, data units)", "epoch"])
    }
}
