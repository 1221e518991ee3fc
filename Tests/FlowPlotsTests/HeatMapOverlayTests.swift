import Foundation
import Testing
import FlowPlots

/// Relative luminance (WCAG 2) of a `#rrggbb` colour.
private func luminance(_ hex: String) -> Double {
    let digits = Array(hex.dropFirst())
    func channel(_ k: Int) -> Double {
        let value = Double(Int(String(digits[(2 * k)..<(2 * k + 2)]), radix: 16) ?? 0) / 255
        return value <= 0.03928 ? value / 12.92 : pow((value + 0.055) / 1.055, 2.4)
    }
    return 0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2)
}

/// WCAG contrast ratio of two `#rrggbb` colours (1 … 21).
private func contrast(_ a: String, _ b: String) -> Double {
    let (la, lb) = (luminance(a), luminance(b))
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

@Suite("Heat map overlay and smoothing")
struct HeatMapOverlayTests {
    private let values = (0..<100).map { Double($0) / 10 }  // [10, 10], spanning the whole colour map
    private let points = Points2D(xs: [0.1, 0.5, 0.9, 5], ys: [0.1, 0.5, 0.9, 0.5])  // the last one is outside

    @Test("Overlay dots are dark with a light outline underneath: each contrasts with one end of viridis")
    func overlayContrast() throws {
        let parsed = parseSVG(Plots.heatMap(values: values, nx: 10, ny: 10, xRange: 0...1, yRange: 0...1, title: "o",
                                            points: points))
        #expect(parsed.wellFormed)
        let dots = parsed.elements(named: "path", in: "points")
        let outlines = parsed.elements(named: "path", in: "point-outlines")
        #expect(parsed.dotCount() == 3)
        #expect(parsed.dotCount(in: "point-outlines") == 3)
        let dot = try #require(dots.first), outline = try #require(outlines.first)
        let dotColor = try #require(dot.attributes["stroke"]), outlineColor = try #require(outline.attributes["stroke"])
        #expect(Set(dots.compactMap { $0.attributes["stroke"] }) == [dotColor])
        // The bright end of viridis (yellow) hides white dots; dark dots stand out on it, and the light
        // outline stands out on the dark end (purple).
        let bright = ColorMap.viridis(1).hex, dark = ColorMap.viridis(0).hex
        #expect(contrast(dotColor, bright) > 7, "dots \(dotColor) on \(bright)")
        #expect(contrast(outlineColor, dark) > 7, "outline \(outlineColor) on \(dark)")
        #expect(contrast(dotColor, outlineColor) > 10)
        // The outline ring is wider than the dot and drawn before (under) it; both are partly transparent.
        let dotWidth = try #require(Double(dot.attributes["stroke-width"] ?? ""))
        let outlineWidth = try #require(Double(outline.attributes["stroke-width"] ?? ""))
        #expect(outlineWidth >= dotWidth + 1)
        let order = parsed.elements.filter { $0.name == "path" && ($0.within("points") || $0.within("point-outlines")) }
        #expect(order.first?.within("point-outlines") == true)
        for path in dots + outlines {
            let opacity = try #require(Double(path.attributes["stroke-opacity"] ?? ""))
            #expect(opacity > 0.3 && opacity < 1)
        }
    }

    @Test("A labelled overlay gets a legend entry whose marker looks like the dots")
    func overlayLegend() {
        let style = OverlayPointStyle(label: "training data (3 points)")
        let parsed = parseSVG(Plots.heatMap(values: values, nx: 10, ny: 10, xRange: 0...1, yRange: 0...1, title: "l",
                                            points: points, pointStyle: style))
        #expect(parsed.texts(class: "legend-label") == ["training data (3 points)"])
        let marker = parsed.elements.first { $0.name == "circle" && $0.attributes["class"] == "legend-marker" }
        #expect(marker?.attributes["fill"] == style.color)
        #expect(marker?.attributes["stroke"] == style.outline)
        // No label, no legend.
        let plain = parseSVG(Plots.heatMap(values: values, nx: 10, ny: 10, xRange: 0...1, yRange: 0...1, title: "l",
                                           points: points))
        #expect(plain.texts(class: "legend-label").isEmpty)
    }

    @Test("The cells are drawn again through a blur of 0.45 cell, clipped to the plot area; smooth: false opts out")
    func smoothing() throws {
        let svg = Plots.heatMap(values: values, nx: 10, ny: 10, xRange: 0...1, yRange: 0...1, title: "s")
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        let cells = try #require(parsed.elements(named: "g").first { $0.attributes["class"] == "cells" })
        let id = try #require(cells.attributes["id"])
        let uses = parsed.elements(named: "use", in: "smoothing")
        #expect(uses.map { $0.attributes["href"] } == ["#\(id)"])
        // The blur's standard deviations are 0.45 of the cell size in pixels (the cells group's scale).
        let transform = try #require(cells.attributes["transform"])
        let scale = transform.components(separatedBy: "scale(")[1].dropLast().split(separator: " ").compactMap { Double($0) }
        #expect(scale.count == 2)
        let deviation = try #require(parsed.elements(named: "feGaussianBlur").first?.attributes["stdDeviation"])
        let sigma = deviation.split(separator: " ").compactMap { Double($0) }
        #expect(sigma.count == 2)
        for k in 0..<min(sigma.count, scale.count) { #expect(abs(sigma[k] - 0.45 * scale[k]) < 1e-3) }
        // The filter sits on a group inside the clipped smoothing group; the clip rect is the plot area, which
        // is what the 10 × 10 cells cover.
        let filtered = parsed.elements(named: "g", in: "smoothing").filter { $0.attributes["filter"] != nil }
        #expect(filtered.count == 1)
        let smoothing = try #require(parsed.elements(named: "g").first { $0.attributes["class"] == "smoothing" })
        let clipID = try #require(smoothing.attributes["clip-path"]).dropFirst(5).dropLast()
        let clipPath = try #require(parsed.elements.firstIndex { $0.name == "clipPath" && $0.attributes["id"] == String(clipID) })
        let clip = parsed.elements[clipPath + 1].attributes
        let origin = transform.components(separatedBy: "translate(")[1].split(separator: ")")[0].split(separator: " ")
        #expect(clip["x"] == String(origin[0]) && clip["y"] == String(origin[1]))
        #expect(abs((Double(clip["width"] ?? "") ?? 0) - 10 * scale[0]) < 0.01)
        #expect(abs((Double(clip["height"] ?? "") ?? 0) - 10 * scale[1]) < 0.01)

        let crisp = parseSVG(Plots.heatMap(values: values, nx: 10, ny: 10, xRange: 0...1, yRange: 0...1, title: "s",
                                           smooth: false))
        #expect(crisp.elements(named: "use").isEmpty && crisp.elements(named: "filter").isEmpty)
        #expect(crisp.elements(named: "rect", in: "cells").count == parsed.elements(named: "rect", in: "cells").count)
    }

    @Test("A 128 × 128 smooth field with 2000 overlay points stays well under 1.5 MB")
    func fileSize() {
        let n = 128
        var field = [Double]()
        for j in 0..<n { for i in 0..<n { field.append(-0.001 * Double((i - 64) * (i - 64) + (j - 50) * (j - 50))) } }
        let cloud = Points2D(xs: (0..<2000).map { Double($0 % 97) / 97 }, ys: (0..<2000).map { Double($0 % 89) / 89 })
        let svg = Plots.heatMap(values: field, nx: n, ny: n, xRange: 0...1, yRange: 0...1, title: "size", points: cloud,
                                pointStyle: OverlayPointStyle(label: "data"))
        #expect(parseSVG(svg).wellFormed)
        #expect(svg.utf8.count < 1_500_000, "\(svg.utf8.count) bytes")
    }
}
