import Testing
import FlowPlots

@Suite("Colour maps and the SVG builder")
struct ColorMapAndDocumentTests {
    @Test("Viridis endpoints are #440154 and #fde725; inputs are clamped")
    func viridisEndpoints() {
        #expect(ColorMap.viridis(0).hex == "#440154")
        #expect(ColorMap.viridis(1).hex == "#fde725")
        #expect(ColorMap.viridis(-3) == ColorMap.viridis(0))
        #expect(ColorMap.viridis(7) == ColorMap.viridis(1))
        #expect(ColorMap.viridis(.nan) == ColorMap.viridis(0))
        #expect(ColorMap.viridisAnchors.count <= 256)
    }

    @Test("Viridis midpoint is close to matplotlib's #21918c")
    func viridisMiddle() {
        let middle = ColorMap.viridis(0.5)
        #expect(abs(Int(middle.red) - 0x21) <= 2)
        #expect(abs(Int(middle.green) - 0x91) <= 2)
        #expect(abs(Int(middle.blue) - 0x8c) <= 2)
    }

    @Test("Gray map and hex formatting")
    func gray() {
        #expect(ColorMap.gray(0).hex == "#000000")
        #expect(ColorMap.gray(1).hex == "#ffffff")
        #expect(ColorMap.gray(0.5).hex == "#808080")
        #expect(RGBColor(rgb: 0x0a0b0c).hex == "#0a0b0c")
    }

    @Test("The builder writes a viewBox, escapes text and nests groups with clip paths")
    func builder() {
        var doc = SVGDocument(width: 200, height: 100)
        let clip = doc.clipRect(x: 10, y: 10, width: 50, height: 50)
        doc.group(attributes: [("class", "data"), ("clip-path", "url(#\(clip))")]) { doc in
            doc.circle(cx: 20, cy: 20, r: 2)
            doc.line(x1: 0, y1: 0, x2: 1.234, y2: 5)
            doc.polyline(Points2D(xs: [0, 1, 2], ys: [3, 4, 5]))
            doc.path("M1 1h0", stroke: "#000", strokeWidth: 2, opacity: 0.5, lineCap: "round")
        }
        doc.text("a < b & c", x: 5, y: 95, anchor: .middle, rotation: -90)
        let svg = doc.render()
        #expect(svg.contains("viewBox=\"0 0 200 100\""))
        #expect(svg.contains("x2=\"1.23\""))
        #expect(svg.contains("a &lt; b &amp; c"))
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        #expect(parsed.elements(named: "clipPath").first?.attributes["id"] == clip)
        #expect(parsed.elements(named: "circle", in: "data").count == 1)
        #expect(parsed.elements(named: "polyline", in: "data").first?.attributes["points"] == "0,3 1,4 2,5")
        #expect(parsed.elements(named: "text").first?.text == "a < b & c")
        #expect(parsed.elements(named: "rect").count == 2)  // background + clip rect
    }
}
