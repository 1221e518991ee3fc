extension Plots {
    /// A heat map of a scalar field on a regular grid (typically a 2-D log-density), coloured with viridis,
    /// with a colour bar labelled `colorBarLabel` and optional data points drawn on top.
    ///
    /// - `values`: shape `[ny, nx]`, row-major: `values[j * nx + i]` is the value of cell column `i`, row `j`.
    ///   Row `j = 0` is the bottom row (smallest y). The grid covers `xRange` × `yRange` exactly: cell `i` spans
    ///   `x0 + i·dx … x0 + (i+1)·dx` with `dx = (x1 − x0) / nx`; evaluate the field at
    ///   ``gridCenters(_:count:)`` to match. Missing entries (if `values` is short) and NaN cells are not
    ///   painted; +inf counts as the maximum, −inf as the floor.
    /// - Colour scale: from `floor` (default: maximum finite value − `dynamicRange`) to the maximum finite value.
    ///   Lower values are clipped to the floor colour. If the floor is not below the maximum it is set to
    ///   maximum − 1; the scale then goes through ``NiceTicks/sanitized(_:)`` (which widens it when a huge
    ///   maximum swallows the 1). With no finite value the plot area says so (``AxesRenderer/nothingToPlot``).
    ///   Colours are quantised to 256 levels and horizontal runs of equal colour are merged into one
    ///   `<rect>`, so `nx`, `ny` up to ~120 give at most `nx · ny` rectangles.
    /// - `points`: optional `[n, 2]` points drawn as 2 px dots of `pointColor` at `pointOpacity`
    ///   (points outside the ranges are clipped).
    public static func heatMap(
        values: [Double], nx: Int, ny: Int, xRange: ClosedRange<Double>, yRange: ClosedRange<Double>,
        title: String, xLabel: String = "x\u{2081}", yLabel: String = "x\u{2082}",
        colorBarLabel: String = "log p(x) (nats)", floor: Double? = nil, dynamicRange: Double = 10,
        points: Points2D? = nil, pointColor: String = "#ffffff", pointOpacity: Double = 0.5,
        width: Double = 640, height: Double = 560
    ) -> String {
        let columns = max(nx, 0), rows = max(ny, 0)
        var top = -Double.infinity
        for value in values.prefix(columns * rows) where value.isFinite { top = max(top, value) }
        let noFiniteValue = top == -.infinity && !values.prefix(columns * rows).isEmpty
        if top == -.infinity { top = 0 }
        var bottom = floor ?? (top - max(dynamicRange, 0))
        if !bottom.isFinite || bottom >= top { bottom = top - 1 }
        let (lowColor, highColor) = NiceTicks.sanitized(bottom...top)
        let colorDomain = lowColor...highColor

        // Room on the right for the colour bar: gap, bar, ticks, labels, rotated label.
        let barTicks = AxesRenderer.fittedTicks(colorDomain, length: height - 120, minimumStep: 0) { _ in PlotTheme.fontSize }
        let barLabelWidth = barTicks.labels.map { PlotTheme.textWidth($0) }.max() ?? 0
        let barWidth = 16.0, barGap = 18.0
        let rightExtra = barGap + barWidth + PlotTheme.tickLength + 4 + barLabelWidth + 26

        var doc = SVGDocument(width: width, height: height)
        PlotTheme.drawFigureTitle(&doc, title: title, width: width)
        let outer = PixelRect(x: 0, y: PlotTheme.figureTitleHeight - 10, width: width,
                              height: height - PlotTheme.figureTitleHeight + 10)
        let axes = AxesRenderer(outer: outer, xDomain: xRange, yDomain: yRange, title: "", xLabel: xLabel,
                                yLabel: yLabel, rightExtra: rightExtra)
        let area = axes.area
        doc.rect(x: area.x, y: area.y, width: area.width, height: area.height, fill: "#eeeeee")

        // Cells, one <rect> per horizontal run of equal colour, in grid units (one cell = 1 × 1) under a
        // transform, so that cell coordinates are small integers.
        let palette = (0...255).map { ColorMap.viridis(Double($0) / 255).hex }
        let cellWidth = area.width / Double(max(columns, 1)), cellHeight = area.height / Double(max(rows, 1))
        let transform = "translate(\(SVGFormat.number(area.x)) \(SVGFormat.number(area.y))) "
            + "scale(\(SVGFormat.number(cellWidth, decimals: 6)) \(SVGFormat.number(cellHeight, decimals: 6)))"
        doc.group(attributes: [("class", "cells"), ("shape-rendering", "crispEdges"), ("transform", transform)]) { doc in
            for row in 0..<rows {
                let y = String(rows - 1 - row)
                var column = 0
                while column < columns {
                    guard let level = colorLevel(values, row * columns + column, domain: colorDomain) else {
                        column += 1
                        continue
                    }
                    var end = column + 1
                    while end < columns, colorLevel(values, row * columns + end, domain: colorDomain) == level { end += 1 }
                    doc.raw("<rect x=\"\(column)\" y=\"\(y)\" width=\"\(end - column)\" height=\"1\" fill=\"\(palette[level])\"/>\n")
                    column = end
                }
            }
        }
        if let points, points.count > 0 {
            axes.clipped(&doc, cssClass: "points") { doc in
                let layers = ScatterPanelRenderer.pointLayers(points, xLimits: axes.xScale.domain,
                                                              yLimits: axes.yScale.domain, axes: axes)
                for layer in layers {
                    doc.path(layer, stroke: pointColor, strokeWidth: 2, opacity: pointOpacity, lineCap: "round")
                }
            }
        }
        if noFiniteValue { axes.drawNote(&doc, AxesRenderer.nothingToPlot) }
        axes.drawFrame(&doc, title: "", xLabel: xLabel, yLabel: yLabel)
        drawColorBar(&doc, ticks: barTicks, domain: colorDomain, label: colorBarLabel,
                     bar: PixelRect(x: area.maxX + barGap, y: area.y, width: barWidth, height: area.height),
                     labelWidth: barLabelWidth)
        return doc.render()
    }

    /// The `count` cell centres of a regular grid over `range`: `lower + (i + 0.5) · (upper − lower) / count`
    /// for `i` in `0..<count` — the x (or y) coordinates at which ``heatMap(values:nx:ny:xRange:yRange:title:xLabel:yLabel:colorBarLabel:floor:dynamicRange:points:pointColor:pointOpacity:width:height:)``
    /// expects its values.
    public static func gridCenters(_ range: ClosedRange<Double>, count: Int) -> [Double] {
        guard count > 0 else { return [] }
        let step = (range.upperBound - range.lowerBound) / Double(count)
        return (0..<count).map { range.lowerBound + (Double($0) + 0.5) * step }
    }

    /// Colour level 0…255 of `values[index]` on `domain`, or `nil` for NaN or missing cells.
    private static func colorLevel(_ values: [Double], _ index: Int, domain: ClosedRange<Double>) -> Int? {
        guard index < values.count else { return nil }
        let value = values[index]
        if value.isNaN { return nil }
        let t = (min(max(value, domain.lowerBound), domain.upperBound) - domain.lowerBound)
            / (domain.upperBound - domain.lowerBound)
        return Int((t * 255).rounded())
    }

    private static func drawColorBar(
        _ doc: inout SVGDocument, ticks: NiceTicks, domain: ClosedRange<Double>, label: String, bar: PixelRect,
        labelWidth: Double
    ) {
        let anchors = ColorMap.viridisAnchors
        let stops = anchors.enumerated().map { (offset: Double($0.offset) / Double(anchors.count - 1), color: $0.element.hex) }
        let gradient = doc.linearGradient(stops: stops, vertical: true)
        let scale = LinearScale(domain: domain, pixelStart: bar.maxY, pixelEnd: bar.y)
        doc.group(attributes: [("class", "colorbar")]) { doc in
            doc.rect(x: bar.x, y: bar.y, width: bar.width, height: bar.height, fill: "url(#\(gradient))",
                     stroke: PlotTheme.axisColor, strokeWidth: 1)
            for value in ticks.values {
                let y = scale(value)
                doc.line(x1: bar.maxX, y1: y, x2: bar.maxX + PlotTheme.tickLength, y2: y, stroke: PlotTheme.axisColor)
                doc.text(ticks.label(for: value), x: bar.maxX + PlotTheme.tickLength + 3, y: y + 4,
                         fill: PlotTheme.tickLabelColor, cssClass: "tick-label")
            }
            if !label.isEmpty {
                doc.text(label, x: bar.maxX + PlotTheme.tickLength + 3 + labelWidth + 16, y: bar.midY, anchor: .middle,
                         fill: PlotTheme.textColor, rotation: -90, cssClass: "axis-label")
            }
        }
    }
}
