import Testing
import FlowPlots

@Suite("Number formatting, XML escaping and linear scales")
struct FormatAndScaleTests {
    @Test("Coordinates print with at most two decimals, trimmed, without negative zero")
    func numberFormatting() {
        #expect(SVGFormat.number(12.5) == "12.5")
        #expect(SVGFormat.number(3) == "3")
        #expect(SVGFormat.number(2.345678) == "2.35")
        #expect(SVGFormat.number(-1.2) == "-1.2")
        #expect(SVGFormat.number(-0.001) == "0")
        #expect(SVGFormat.number(1234.5678) == "1234.57")
        #expect(SVGFormat.number(0.05) == "0.05")
        #expect(SVGFormat.number(.nan) == "0")
        #expect(SVGFormat.number(7.123456, decimals: 4) == "7.1235")
    }

    @Test("Fixed formatting keeps all decimals and uses the requested minus sign")
    func fixedFormatting() {
        #expect(SVGFormat.fixed(1, decimals: 1) == "1.0")
        #expect(SVGFormat.fixed(0.2, decimals: 1) == "0.2")
        #expect(SVGFormat.fixed(-0.5, decimals: 1, minus: "\u{2212}") == "\u{2212}0.5")
        #expect(SVGFormat.fixed(-0.04, decimals: 1) == "0.0")
        #expect(SVGFormat.fixed(15, decimals: 0) == "15")
        #expect(SVGFormat.fixed(0.002, decimals: 3) == "0.002")
    }

    @Test("XML special characters are escaped and forbidden control characters dropped")
    func escaping() {
        #expect(SVGFormat.escapeXML("a<&>\"'b") == "a&lt;&amp;&gt;&quot;&apos;b")
        #expect(SVGFormat.escapeXML("x\u{1}y\tz") == "xy\tz")
        #expect(SVGFormat.escapeXML("τ = 0.25") == "τ = 0.25")
    }

    @Test("A linear scale maps domain ends to pixel ends")
    func linearScaleX() {
        let scale = LinearScale(domain: -2...3, pixelStart: 50, pixelEnd: 450)
        #expect(scale(-2) == 50)
        #expect(scale(3) == 450)
        #expect(scale(0.5) == 250)
    }

    @Test("A y scale is inverted: the domain minimum is at the bottom pixel")
    func linearScaleY() {
        let scale = LinearScale(domain: 0...10, pixelStart: 400, pixelEnd: 40)
        #expect(scale(0) == 400)
        #expect(scale(10) == 40)
        #expect(scale(5) == 220)
        #expect(scale(10) < scale(0))
    }

    @Test("A zero-width domain maps to the pixel midpoint")
    func degenerateScale() {
        let scale = LinearScale(domain: 1...1, pixelStart: 0, pixelEnd: 100)
        #expect(scale(1) == 50)
        #expect(scale(7) == 50)
    }

    @Test("Robust limits ignore outliers beyond the 0.5/99.5 % quantiles; padded limits do not")
    func limits() {
        var values = (0...999).map(Double.init)
        values.append(1e6)
        values.append(.nan)
        let robust = PlotLimits.robust(values)
        #expect(robust.upperBound < 1100)
        #expect(robust.lowerBound < 0 && robust.lowerBound > -100)
        let padded = PlotLimits.padded([0, 10, .infinity], margin: 0.1)
        #expect(padded == -1...11)
        #expect(PlotLimits.robust([]) == -1...1)
        #expect(PlotLimits.padded([2, 2], margin: 0) == 1.5...2.5)
    }

    @Test("Points2D reads flat row-major [n, 2] and picks columns of [n, d]")
    func points() {
        let pairs = Points2D(rowMajor: [Float(1), 2, 3, 4, 5, 6])
        #expect(pairs.xs == [1, 3, 5])
        #expect(pairs.ys == [2, 4, 6])
        let table = Points2D(rowMajor: [0.0, 1, 2, 10, 11, 12], dimension: 3, xColumn: 2, yColumn: 0)
        #expect(table == Points2D(xs: [2, 12], ys: [0, 10]))
        #expect(Points2D(xs: [1, .nan, 3], ys: [1, 2, .infinity]).finiteCount == 1)
    }
}
