/// How points are drawn on top of a coloured background (e.g. data over a heat map): dark dots, each with a
/// thin light outline, so that they stand out on dark and on bright parts of any colour map.
public struct OverlayPointStyle: Sendable, Equatable {
    /// CSS colour of the dots (default: near-black `#111111`).
    public var color: String
    /// Opacity of one layer of dots, 0…1. Points are spread round-robin over up to
    /// ``ScatterSeries/layerCount`` paths, so dense regions build up to nearly opaque.
    public var opacity: Double
    /// Dot diameter in pixels.
    public var diameter: Double
    /// CSS colour of the outline ring around each dot (default white); `nil` draws no outline.
    public var outline: String?
    /// Opacity of the outlines, 0…1. They are drawn as one layer under every dot, so overlapping outlines do
    /// not build up beyond this opacity.
    public var outlineOpacity: Double
    /// Width of the outline ring in pixels (each outline is a dot of `diameter + 2 · outlineWidth`).
    public var outlineWidth: Double
    /// Legend text for the points (e.g. `"training data"`); `nil` draws no legend.
    public var label: String?

    /// Creates a style; the defaults give 2.4 px near-black dots at 45 % opacity per layer with a 0.9 px white
    /// outline at 60 % opacity, and no legend.
    public init(
        color: String = "#111111", opacity: Double = 0.45, diameter: Double = 2.4, outline: String? = "#ffffff",
        outlineOpacity: Double = 0.6, outlineWidth: Double = 0.9, label: String? = nil
    ) {
        self.color = color
        self.opacity = opacity
        self.diameter = diameter
        self.outline = outline
        self.outlineOpacity = outlineOpacity
        self.outlineWidth = outlineWidth
        self.label = label
    }
}

/// Draws overlay points (outlines first, then the dots, both clipped to the plot area) and their legend.
enum PointOverlayRenderer {
    /// Draws `points` inside the plot area of `axes`: a `class="point-outlines"` group with one path of outline
    /// dots (when the style has an outline), then a `class="points"` group with the dots in layers.
    static func draw(_ doc: inout SVGDocument, points: Points2D, style: OverlayPointStyle, axes: AxesRenderer) {
        let layers = ScatterPanelRenderer.pointLayers(points, xLimits: axes.xScale.domain, yLimits: axes.yScale.domain,
                                                      axes: axes)
        guard !layers.isEmpty else { return }
        if let outline = style.outline {
            axes.clipped(&doc, cssClass: "point-outlines") { doc in
                doc.path(layers.joined(), stroke: outline, strokeWidth: style.diameter + 2 * style.outlineWidth,
                         opacity: style.outlineOpacity, lineCap: "round")
            }
        }
        axes.clipped(&doc, cssClass: "points") { doc in
            for layer in layers {
                doc.path(layer, stroke: style.color, strokeWidth: style.diameter, opacity: style.opacity, lineCap: "round")
            }
        }
    }

    /// A legend box with the style's label in the top-left corner of the plot area (nothing without a label).
    static func drawLegend(_ doc: inout SVGDocument, style: OverlayPointStyle, axes: AxesRenderer) {
        guard let label = style.label else { return }
        let entry = LegendEntry(name: label, color: style.color, marker: .dot, outline: style.outline)
        Legend.drawBox(&doc, entries: [entry], x: axes.area.x + 10, y: axes.area.y + 10)
    }
}
