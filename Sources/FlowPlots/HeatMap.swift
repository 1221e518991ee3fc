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
    ///   `<rect>` (at most `nx · ny` rectangles; a learned 2-D log-density at 128 × 128 with 2000 points takes
    ///   about 0.55 MB).
    /// - `smooth`: the cells (drawn crisp, `class="cells"`) are drawn a second time on top through a Gaussian
    ///   blur of σ = 0.45 cell (`class="smoothing"`, clipped to the plot area), which hides the cell edges the
    ///   way bilinear interpolation of an image would; the crisp cells stay as the fallback for renderers
    ///   without filters and at the border. `false` draws the crisp cells only.
    /// - `points`: optional `[n, 2]` points drawn on top as dots in `pointStyle` (by default dark dots with a
    ///   light outline, visible on every part of the colour map; points outside the ranges are clipped), with
    ///   a legend box in the top-left corner of the plot when the style has a label.
    public static func heatMap(
        values: [Double], nx: Int, ny: Int, xRange: ClosedRange<Double>, yRange: ClosedRange<Double>,
        title: String, xLabel: String = "x\u{2081}", yLabel: String = "x\u{2082}",
        colorBarLabel: String = "log p(x) (nats)", floor: Double? = nil, dynamicRange: Double = 10,
        points: Points2D? = nil, pointStyle: OverlayPointStyle = OverlayPointStyle(), smooth: Bool = true,
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

        HeatMapCells.draw(&doc, values: values, columns: columns, rows: rows, domain: colorDomain, area: area,
                          smooth: smooth)
        if let points, points.count > 0 {
            PointOverlayRenderer.draw(&doc, points: points, style: pointStyle, axes: axes)
        }
        if noFiniteValue { axes.drawNote(&doc, AxesRenderer.nothingToPlot) }
        axes.drawFrame(&doc, title: "", xLabel: xLabel, yLabel: yLabel)
        if let points, points.count > 0 { PointOverlayRenderer.drawLegend(&doc, style: pointStyle, axes: axes) }
        drawColorBar(&doc, ticks: barTicks, domain: colorDomain, label: colorBarLabel,
                     bar: PixelRect(x: area.maxX + barGap, y: area.y, width: barWidth, height: area.height),
                     labelWidth: barLabelWidth)
        return doc.render()
    }

    /// The `count` cell centres of a regular grid over `range`: `lower + (i + 0.5) · (upper − lower) / count`
    /// for `i` in `0..<count` — the x (or y) coordinates at which ``heatMap(values:nx:ny:xRange:yRange:title:xLabel:yLabel:colorBarLabel:floor:dynamicRange:points:pointStyle:smooth:width:height:)``
    /// expects its values.
    public static func gridCenters(_ range: ClosedRange<Double>, count: Int) -> [Double] {
        guard count > 0 else { return [] }
        let step = (range.upperBound - range.lowerBound) / Double(count)
        return (0..<count).map { range.lowerBound + (Double($0) + 0.5) * step }
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
