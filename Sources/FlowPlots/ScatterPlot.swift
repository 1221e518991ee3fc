/// One named set of points in a scatter panel, drawn as small round dots of one colour.
public struct ScatterSeries: Sendable, Equatable {
    /// Name shown in the figure legend (a legend is drawn when some panel holds two or more series).
    public var name: String
    /// The points in data units. Non-finite points and points outside the panel limits are not drawn; a panel
    /// whose points are all non-finite shows a note instead (``AxesRenderer/nothingToPlot``).
    public var points: Points2D
    /// CSS colour of the dots, e.g. `"#1f77b4"`.
    public var color: String
    /// Opacity of one layer of dots, 0…1. Points are spread round-robin over up to
    /// ``ScatterSeries/layerCount`` overlapping paths, so dense regions build up to nearly opaque.
    public var opacity: Double
    /// Dot diameter in pixels.
    public var pointSize: Double

    /// Number of interleaved `<path>` layers a series is split into (point `i` goes to layer `i % layerCount`).
    public static let layerCount = 6

    /// Creates a series; defaults give 2.6 px dots at 35 % opacity per layer.
    public init(name: String, points: Points2D, color: String, opacity: Double = 0.35, pointSize: Double = 2.6) {
        self.name = name
        self.points = points
        self.color = color
        self.opacity = opacity
        self.pointSize = pointSize
    }
}

/// One scatter panel of a ``Plots/panelGrid(panels:columns:title:panelWidth:panelHeight:)`` figure:
/// a title, axis labels, its series (drawn in order, later on top) and optional explicit limits.
public struct ScatterPanelSpec: Sendable, Equatable {
    /// Panel title drawn above the plot area (empty for none).
    public var title: String
    /// The series of the panel, drawn in order.
    public var series: [ScatterSeries]
    /// Label under the x axis (empty for none).
    public var xLabel: String
    /// Label left of the y axis (empty for none).
    public var yLabel: String
    /// Data range of the x axis; `nil` chooses ``PlotLimits/robust(_:lowerQuantile:upperQuantile:margin:)``
    /// over the x coordinates of all series of the panel.
    public var xLimits: ClosedRange<Double>?
    /// Data range of the y axis; `nil` chooses robust limits like `xLimits`.
    public var yLimits: ClosedRange<Double>?

    /// Creates a panel description.
    public init(
        title: String, series: [ScatterSeries], xLabel: String = "", yLabel: String = "",
        xLimits: ClosedRange<Double>? = nil, yLimits: ClosedRange<Double>? = nil
    ) {
        self.title = title
        self.series = series
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.xLimits = xLimits
        self.yLimits = yLimits
    }

    /// The x and y limits the panel is drawn with (explicit ones, or robust limits of its points).
    public var resolvedLimits: (x: ClosedRange<Double>, y: ClosedRange<Double>) {
        let x = xLimits ?? PlotLimits.robust(series.flatMap(\.points.xs))
        let y = yLimits ?? PlotLimits.robust(series.flatMap(\.points.ys))
        return (x, y)
    }
}

extension Plots {
    /// The seed figure of a 2-D flow: four scatter panels in a 2 × 2 grid — "Data space X" (top left),
    /// "Latent space f(X)" (top right), "Sampled Z ~ N(0, I)" (bottom left) and "Generated g(Z)" (bottom right).
    ///
    /// Each argument is one point set (`[n, 2]`, any n, typically up to ~5000). The two data-space panels
    /// (X and g(Z)) share robust limits computed from both sets, and so do the two latent panels (f(X) and Z),
    /// so the panels of each pair can be compared by eye. X and f(X) are blue, Z and g(Z) orange.
    public static func fourPanel(
        data: Points2D, latent: Points2D, sampled: Points2D, generated: Points2D, title: String
    ) -> String {
        let dataX = PlotLimits.robust(data.xs + generated.xs)
        let dataY = PlotLimits.robust(data.ys + generated.ys)
        let latentX = PlotLimits.robust(latent.xs + sampled.xs)
        let latentY = PlotLimits.robust(latent.ys + sampled.ys)
        let blue = ColorMap.categorical[0], orange = ColorMap.categorical[1]
        func panel(_ title: String, _ points: Points2D, _ color: String, _ names: (String, String),
                   _ limits: (ClosedRange<Double>, ClosedRange<Double>)) -> ScatterPanelSpec {
            ScatterPanelSpec(
                title: title, series: [ScatterSeries(name: title, points: points, color: color)],
                xLabel: names.0, yLabel: names.1, xLimits: limits.0, yLimits: limits.1)
        }
        let panels = [
            panel("Data space X", data, blue, ("x\u{2081}", "x\u{2082}"), (dataX, dataY)),
            panel("Latent space f(X)", latent, blue, ("z\u{2081}", "z\u{2082}"), (latentX, latentY)),
            panel("Sampled Z ~ N(0, I)", sampled, orange, ("z\u{2081}", "z\u{2082}"), (latentX, latentY)),
            panel("Generated g(Z)", generated, orange, ("x\u{2081}", "x\u{2082}"), (dataX, dataY)),
        ]
        return panelGrid(panels: panels, columns: 2, title: title)
    }
}

/// Draws one scatter panel into a rectangle of a larger document.
enum ScatterPanelRenderer {
    static func draw(_ doc: inout SVGDocument, panel: ScatterPanelSpec, outer: PixelRect, leftMargin: Double) {
        let limits = panel.resolvedLimits
        let axes = AxesRenderer(outer: outer, xDomain: limits.x, yDomain: limits.y, title: panel.title,
                                xLabel: panel.xLabel, yLabel: panel.yLabel, leftMargin: leftMargin)
        axes.drawBackground(&doc)
        axes.clipped(&doc, cssClass: "points") { doc in
            for series in panel.series {
                for layer in pointLayers(series.points, xLimits: limits.x, yLimits: limits.y, axes: axes) {
                    doc.path(layer, stroke: series.color, strokeWidth: series.pointSize, opacity: series.opacity,
                             lineCap: "round")
                }
            }
        }
        let points = panel.series.map(\.points)
        if points.contains(where: { $0.count > 0 }), points.allSatisfy({ $0.finiteCount == 0 }) {
            axes.drawNote(&doc, AxesRenderer.nothingToPlot)
        }
        axes.drawFrame(&doc, title: panel.title, xLabel: panel.xLabel, yLabel: panel.yLabel)
    }

    /// Path data `"M x y h0"` per drawable point, split round-robin into up to ``ScatterSeries/layerCount``
    /// layers; empty layers are dropped.
    static func pointLayers(
        _ points: Points2D, xLimits: ClosedRange<Double>, yLimits: ClosedRange<Double>, axes: AxesRenderer
    ) -> [String] {
        var layers = [String](repeating: "", count: ScatterSeries.layerCount)
        var drawn = 0
        for index in 0..<points.count {
            let x = points.xs[index], y = points.ys[index]
            guard x.isFinite, y.isFinite, xLimits.contains(x), yLimits.contains(y) else { continue }
            let layer = drawn % ScatterSeries.layerCount
            layers[layer] += "M" + SVGFormat.number(axes.xScale(x)) + " " + SVGFormat.number(axes.yScale(y)) + "h0"
            drawn += 1
        }
        return layers.filter { !$0.isEmpty }
    }
}
