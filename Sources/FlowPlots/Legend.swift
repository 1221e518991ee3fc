/// One legend entry: a coloured marker (dot or line sample) and a name.
struct LegendEntry: Sendable, Equatable {
    enum Marker: Sendable, Equatable { case dot, line }
    var name: String
    var color: String
    var marker: Marker
    var dashed = false
    /// A ring of this colour around a `.dot` marker (as overlay points are drawn); `nil` for none.
    var outline: String? = nil
}

/// Draws legends either as a framed vertical box or as a single centred row.
enum Legend {
    static let rowHeight = 18.0
    static let sampleWidth = 22.0

    /// Size of the framed box drawn by ``drawBox``.
    static func boxSize(_ entries: [LegendEntry]) -> (width: Double, height: Double) {
        let widest = entries.map { PlotTheme.textWidth($0.name) }.max() ?? 0
        return (widest + sampleWidth + 22, Double(entries.count) * rowHeight + 8)
    }

    /// A framed box with one entry per line, top-left corner at (`x`, `y`).
    static func drawBox(_ doc: inout SVGDocument, entries: [LegendEntry], x: Double, y: Double) {
        guard !entries.isEmpty else { return }
        let size = boxSize(entries)
        doc.group(attributes: [("class", "legend")]) { doc in
            doc.rect(x: x, y: y, width: size.width, height: size.height, fill: "#ffffff", stroke: PlotTheme.legendBorder,
                     strokeWidth: 1, opacity: 0.9)
            for (index, entry) in entries.enumerated() {
                let centerY = y + 4 + rowHeight * (Double(index) + 0.5)
                drawMarker(&doc, entry: entry, x: x + 8, centerY: centerY)
                doc.text(entry.name, x: x + 14 + sampleWidth, y: centerY + 4, fill: PlotTheme.textColor,
                         cssClass: "legend-label")
            }
        }
    }

    /// All entries on one line, centred horizontally on `centerX`, vertically on `centerY`.
    static func drawRow(_ doc: inout SVGDocument, entries: [LegendEntry], centerX: Double, centerY: Double) {
        guard !entries.isEmpty else { return }
        let widths = entries.map { sampleWidth + 6 + PlotTheme.textWidth($0.name) }
        let gap = 24.0
        let total = widths.reduce(0, +) + gap * Double(entries.count - 1)
        var x = centerX - total / 2
        doc.group(attributes: [("class", "legend")]) { doc in
            for (index, entry) in entries.enumerated() {
                drawMarker(&doc, entry: entry, x: x, centerY: centerY)
                doc.text(entry.name, x: x + sampleWidth + 6, y: centerY + 4, fill: PlotTheme.textColor,
                         cssClass: "legend-label")
                x += widths[index] + gap
            }
        }
    }

    private static func drawMarker(_ doc: inout SVGDocument, entry: LegendEntry, x: Double, centerY: Double) {
        switch entry.marker {
        case .line:
            doc.line(x1: x, y1: centerY, x2: x + sampleWidth, y2: centerY, stroke: entry.color, strokeWidth: 2.5,
                     dash: entry.dashed ? "6 4" : nil)
        case .dot:
            if let outline = entry.outline {
                doc.circle(cx: x + sampleWidth / 2, cy: centerY, r: 4.5, fill: entry.color, stroke: outline,
                           strokeWidth: 1.5, cssClass: "legend-marker")
            } else {
                doc.circle(cx: x + sampleWidth / 2, cy: centerY, r: 4.5, fill: entry.color)
            }
        }
    }
}
