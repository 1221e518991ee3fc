/// Draws one line-chart panel (axes, curves, optional legend) into a rectangle of a larger document; shared by
/// ``Plots/lineChart(series:title:xLabel:yLabel:xLimits:yLimits:legend:width:height:)`` and the zoomed chart
/// with its full-range overview.
enum LineChartPanel {
    /// The finite points of all series and the limits a panel draws them with: explicit limits, or the range
    /// of the finite x values widened by 2 % and of the finite y values widened by 5 %.
    struct Extent {
        let finiteXs: [Double]
        let finiteYs: [Double]
        let xDomain: ClosedRange<Double>
        let yDomain: ClosedRange<Double>

        init(_ series: [LineSeries], xLimits: ClosedRange<Double>?, yLimits: ClosedRange<Double>?) {
            var xs: [Double] = [], ys: [Double] = []
            for line in series {
                for index in line.xs.indices where line.xs[index].isFinite && line.ys[index].isFinite {
                    xs.append(line.xs[index])
                    ys.append(line.ys[index])
                }
            }
            finiteXs = xs
            finiteYs = ys
            xDomain = xLimits ?? (xs.isEmpty ? 0...1 : PlotLimits.padded(xs, margin: 0.02))
            yDomain = yLimits ?? (ys.isEmpty ? 0...1 : PlotLimits.padded(ys, margin: 0.05))
        }
    }

    /// Draws `series` in a panel inside `outer` (see ``Plots/lineChart(series:title:xLabel:yLabel:xLimits:yLimits:legend:width:height:)``
    /// for limits, gaps and markers) and returns the panel's axes, e.g. to draw more on top.
    @discardableResult
    static func draw(
        _ doc: inout SVGDocument, series: [LineSeries], outer: PixelRect, title: String, xLabel: String,
        yLabel: String, xLimits: ClosedRange<Double>?, yLimits: ClosedRange<Double>?, legend: LegendCorner
    ) -> AxesRenderer {
        let extent = Extent(series, xLimits: xLimits, yLimits: yLimits)
        let integerX = !extent.finiteXs.isEmpty && extent.finiteXs.allSatisfy { $0 == $0.rounded() }
        let axes = AxesRenderer(outer: outer, xDomain: extent.xDomain, yDomain: extent.yDomain, title: title,
                                xLabel: xLabel, yLabel: yLabel, xMinimumStep: integerX ? 1 : 0)
        axes.drawBackground(&doc)
        axes.clipped(&doc, cssClass: "series") { doc in
            for (k, line) in series.enumerated() {
                drawLine(&doc, line: line, color: color(line, k), axes: axes)
            }
        }
        if extent.finiteXs.isEmpty, series.contains(where: { !$0.xs.isEmpty }) {
            axes.drawNote(&doc, AxesRenderer.nothingToPlot)
        }
        axes.drawFrame(&doc, title: title, xLabel: xLabel, yLabel: yLabel)

        let entries = legendEntries(series)
        if legend != .hidden, !entries.isEmpty {
            let size = Legend.boxSize(entries)
            let area = axes.area
            let left = legend == .topLeft || legend == .bottomLeft
            let top = legend == .topLeft || legend == .topRight
            Legend.drawBox(&doc, entries: entries, x: left ? area.x + 10 : area.maxX - 10 - size.width,
                           y: top ? area.y + 10 : area.maxY - 10 - size.height)
        }
        return axes
    }

    /// One legend entry per series: its name, colour and dash.
    static func legendEntries(_ series: [LineSeries]) -> [LegendEntry] {
        series.enumerated().map { k, line in
            LegendEntry(name: line.name, color: color(line, k), marker: .line, dashed: line.dashed)
        }
    }

    /// The colour of the `k`-th series: its own, or ``ColorMap/categorical`` entry `k % 10`.
    static func color(_ line: LineSeries, _ k: Int) -> String {
        line.color ?? ColorMap.categorical[k % ColorMap.categorical.count]
    }

    /// Draws the finite runs of `line` as polylines and isolated finite points as markers.
    private static func drawLine(_ doc: inout SVGDocument, line: LineSeries, color: String, axes: AxesRenderer) {
        var run = Points2D.empty
        func flush(_ doc: inout SVGDocument) {
            if run.count == 1 {
                doc.circle(cx: run.xs[0], cy: run.ys[0], r: 3.5, fill: color, cssClass: "marker")
            } else if run.count > 1 {
                doc.polyline(run, stroke: color, strokeWidth: 2, dash: line.dashed ? "6 4" : nil, cssClass: "curve")
            }
            run = .empty
        }
        for index in line.xs.indices {
            let x = line.xs[index], y = line.ys[index]
            if x.isFinite, y.isFinite {
                run.xs.append(axes.xScale(x))
                run.ys.append(axes.yScale(y))
            } else {
                flush(&doc)
            }
        }
        flush(&doc)
    }
}
