extension Plots {
    /// A line chart zoomed to `yLimits` (e.g. past the large losses of the first epochs) beside a smaller
    /// overview panel that shows every finite point of every series at full range, so that both the detail and
    /// what the zoom cuts off stay visible.
    ///
    /// - The main panel (left, `width − overviewWidth` wide) is ``lineChart(series:title:xLabel:yLabel:xLimits:yLimits:legend:width:height:)``'s
    ///   panel with `yLimits`, titled `zoomTitle` (empty for none); curves are clipped to it.
    /// - The overview (right, `class="overview"`, titled `overviewTitle`) spans the same x range and the range
    ///   of all finite y values (widened by 5 %); a shaded dashed box (`class="zoom-window"`) marks the part
    ///   the main panel shows.
    /// - The legend (one entry per series) sits under the overview, outside both plot areas.
    public static func zoomedLineChart(
        series: [LineSeries], title: String, yLimits: ClosedRange<Double>, zoomTitle: String = "",
        overviewTitle: String = "All epochs, full range", xLabel: String = "epoch",
        yLabel: String = "NLL (nats, data units)", width: Double = 980, height: Double = 420,
        overviewWidth: Double = 300
    ) -> String {
        let side = min(max(overviewWidth, 0), width)
        var doc = SVGDocument(width: width, height: height)
        PlotTheme.drawFigureTitle(&doc, title: title, width: width)
        let top = PlotTheme.figureTitleHeight - 10
        let main = PixelRect(x: 0, y: top, width: width - side, height: height - top)
        let full = LineChartPanel.Extent(series, xLimits: nil, yLimits: nil)
        doc.group(attributes: [("class", "zoomed")]) { doc in
            LineChartPanel.draw(&doc, series: series, outer: main, title: zoomTitle, xLabel: xLabel, yLabel: yLabel,
                                xLimits: full.xDomain, yLimits: yLimits, legend: .hidden)
        }
        let entries = LineChartPanel.legendEntries(series)
        let legendHeight = entries.isEmpty ? 0 : Legend.boxSize(entries).height + 16
        let overviewOuter = PixelRect(x: main.maxX, y: top, width: side,
                                      height: min(main.height * 0.62, main.height - legendHeight))
        var overviewArea = overviewOuter
        doc.group(attributes: [("class", "overview")]) { doc in
            let axes = LineChartPanel.draw(&doc, series: series, outer: overviewOuter, title: overviewTitle,
                                           xLabel: xLabel, yLabel: "", xLimits: full.xDomain, yLimits: full.yDomain,
                                           legend: .hidden)
            overviewArea = axes.area
            drawZoomWindow(&doc, yLimits: yLimits, axes: axes)
        }
        if !entries.isEmpty {
            Legend.drawBox(&doc, entries: entries, x: overviewArea.x, y: overviewOuter.maxY + 8)
        }
        return doc.render()
    }

    /// The zoomed part of the overview: the full x range by `yLimits`, shaded, with a dashed border.
    private static func drawZoomWindow(_ doc: inout SVGDocument, yLimits: ClosedRange<Double>, axes: AxesRenderer) {
        let (low, high) = NiceTicks.sanitized(yLimits)
        let area = axes.area
        let y0 = min(max(axes.yScale(high), area.y), area.maxY), y1 = min(max(axes.yScale(low), area.y), area.maxY)
        doc.group(attributes: [("class", "zoom-window"), ("fill-opacity", "0.1"), ("stroke-dasharray", "4 3")]) { doc in
            doc.rect(x: area.x, y: y0, width: area.width, height: y1 - y0, fill: PlotTheme.axisColor,
                     stroke: PlotTheme.axisColor, strokeWidth: 1)
        }
    }
}
