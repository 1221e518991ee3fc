/// One named curve of a line chart: `ys[i]` plotted against `xs[i]`, joined in array order.
public struct LineSeries: Sendable, Equatable {
    /// Name shown in the legend.
    public var name: String
    /// The x values (e.g. epochs), one per point.
    public var xs: [Double]
    /// The y values (e.g. losses), same count as `xs`. A NaN or infinite x or y breaks the curve: the point is
    /// skipped and the line resumes at the next finite point. A finite point with no finite neighbour is
    /// drawn as a round marker.
    public var ys: [Double]
    /// CSS colour; `nil` takes ``ColorMap/categorical`` entry `k % 10` for the `k`-th series.
    public var color: String?
    /// Draws the curve dashed (e.g. for a validation curve).
    public var dashed: Bool

    /// Creates a series. Precondition: `xs.count == ys.count`.
    public init(name: String, xs: [Double], ys: [Double], color: String? = nil, dashed: Bool = false) {
        precondition(xs.count == ys.count, "LineSeries: xs and ys must have the same count")
        self.name = name
        self.xs = xs
        self.ys = ys
        self.color = color
        self.dashed = dashed
    }

    /// Creates a series of `ys` against `firstX, firstX + 1, …` (e.g. one loss value per epoch).
    public init(name: String, ys: [Double], firstX: Double = 1, color: String? = nil, dashed: Bool = false) {
        self.init(name: name, xs: ys.indices.map { firstX + Double($0) }, ys: ys, color: color, dashed: dashed)
    }
}

/// Where a line chart puts its legend box inside the plot area.
public enum LegendCorner: Sendable, Equatable {
    /// Top left corner of the plot area.
    case topLeft
    /// Top right corner of the plot area (the default: loss curves fall away from it).
    case topRight
    /// Bottom left corner of the plot area.
    case bottomLeft
    /// Bottom right corner of the plot area.
    case bottomRight
    /// No legend.
    case hidden
}

extension Plots {
    /// A line chart of several named series with a legend, light grid, ticks and labels.
    ///
    /// Limits default to the range of the finite x values (widened by 2 %) and of the finite y values
    /// (widened by 5 %); explicit `xLimits`/`yLimits` clip anything outside them. Non-finite points are
    /// skipped (they split a curve); isolated finite points get a marker. No series or no finite value still
    /// gives a valid chart with empty axes; when there are points but none is finite, the plot area says so
    /// (``AxesRenderer/nothingToPlot``). When every x value is an integer, x ticks are integers too.
    public static func lineChart(
        series: [LineSeries], title: String, xLabel: String = "epoch", yLabel: String = "NLL (nats, data units)",
        xLimits: ClosedRange<Double>? = nil, yLimits: ClosedRange<Double>? = nil, legend: LegendCorner = .topRight,
        width: Double = 680, height: Double = 420
    ) -> String {
        var doc = SVGDocument(width: width, height: height)
        PlotTheme.drawFigureTitle(&doc, title: title, width: width)
        let outer = PixelRect(x: 0, y: PlotTheme.figureTitleHeight - 10, width: width,
                              height: height - PlotTheme.figureTitleHeight + 10)
        LineChartPanel.draw(&doc, series: series, outer: outer, title: "", xLabel: xLabel, yLabel: yLabel,
                            xLimits: xLimits, yLimits: yLimits, legend: legend)
        return doc.render()
    }

    /// Training and validation loss per epoch: `train[i]` and `validation[i]` belong to epoch `firstEpoch + i`
    /// (the arrays may differ in length; NaN/inf entries are skipped). Validation is drawn dashed.
    /// The y axis is labelled "NLL (nats, data units)", the x axis "epoch". `yLimits` (default: the range of
    /// the finite values) lets the caller zoom past a large first-epoch loss; curves are clipped to it.
    public static func lossCurves(
        train: [Double], validation: [Double], title: String, firstEpoch: Int = 1, yLimits: ClosedRange<Double>? = nil
    ) -> String {
        lineChart(
            series: [
                LineSeries(name: "train", ys: train, firstX: Double(firstEpoch), color: ColorMap.categorical[0]),
                LineSeries(name: "validation", ys: validation, firstX: Double(firstEpoch),
                           color: ColorMap.categorical[1], dashed: true),
            ],
            title: title, yLimits: yLimits)
    }
}
