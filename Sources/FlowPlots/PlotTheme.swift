/// Shared look of all figures: fonts, colours, tick length, and a text-width estimate used for layout.
enum PlotTheme {
    static let fontFamily = "DejaVu Sans, Helvetica, Arial, sans-serif"
    static let fontSize = 12.0
    static let titleSize = 15.0
    static let panelTitleSize = 13.0
    static let textColor = "#222222"
    static let tickLabelColor = "#333333"
    static let gridColor = "#e6e6e6"
    static let axisColor = "#555555"
    static let legendBorder = "#cccccc"
    static let tickLength = 4.0
    /// Height reserved at the top of a figure for its title.
    static let figureTitleHeight = 34.0

    /// Approximate rendered width of `text` at `size` px in a sans-serif font (average advance 0.6 em).
    static func textWidth(_ text: String, size: Double = fontSize) -> Double {
        Double(text.count) * size * 0.6
    }

    /// The figure title, centred at the top of a `width`-wide canvas.
    static func drawFigureTitle(_ doc: inout SVGDocument, title: String, width: Double) {
        guard !title.isEmpty else { return }
        doc.text(title, x: width / 2, y: 23, anchor: .middle, size: titleSize, weight: "bold", fill: textColor,
                 cssClass: "title")
    }
}

/// An axis-aligned rectangle in pixels (origin top left).
struct PixelRect: Sendable, Equatable {
    var x: Double
    var y: Double
    var width: Double
    var height: Double
    var maxX: Double { x + width }
    var maxY: Double { y + height }
    var midX: Double { x + width / 2 }
    var midY: Double { y + height / 2 }
}
