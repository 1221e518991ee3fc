/// Paints the cells of a heat map: crisp runs of equal colour, optionally drawn again through a blur so that
/// the grid reads as a smooth field.
enum HeatMapCells {
    /// Standard deviation of the smoothing blur in cells. A bilinear reconstruction of a sampled field (a
    /// triangle filter one cell wide on each side) has σ ≈ 0.41 cell; a little more hides the quantisation
    /// steps of the colour levels too.
    static let smoothingSigma = 0.45

    /// Draws the `[rows, columns]` grid `values` (row 0 at the bottom) over `area`, coloured with viridis on
    /// `domain`: one `<rect>` per horizontal run of equal colour in a `class="cells"` group, in grid units
    /// (one cell = 1 × 1) under a transform, so that cell coordinates are small integers. With `smooth`, the
    /// group is drawn again on top (`<use>`) through a Gaussian blur of ``smoothingSigma`` cells, clipped to
    /// `area` (`class="smoothing"`).
    static func draw(
        _ doc: inout SVGDocument, values: [Double], columns: Int, rows: Int, domain: ClosedRange<Double>,
        area: PixelRect, smooth: Bool
    ) {
        let palette = (0...255).map { ColorMap.viridis(Double($0) / 255).hex }
        let cellWidth = area.width / Double(max(columns, 1)), cellHeight = area.height / Double(max(rows, 1))
        let transform = "translate(\(SVGFormat.number(area.x)) \(SVGFormat.number(area.y))) "
            + "scale(\(SVGFormat.number(cellWidth, decimals: 6)) \(SVGFormat.number(cellHeight, decimals: 6)))"
        let id = doc.makeID("cells")
        doc.group(attributes: [("class", "cells"), ("id", id), ("shape-rendering", "crispEdges"),
                               ("transform", transform)]) { doc in
            for row in 0..<rows {
                let y = String(rows - 1 - row)
                var column = 0
                while column < columns {
                    guard let level = colorLevel(values, row * columns + column, domain: domain) else {
                        column += 1
                        continue
                    }
                    var end = column + 1
                    while end < columns, colorLevel(values, row * columns + end, domain: domain) == level { end += 1 }
                    doc.raw("<rect x=\"\(column)\" y=\"\(y)\" width=\"\(end - column)\" height=\"1\" fill=\"\(palette[level])\"/>\n")
                    column = end
                }
            }
        }
        guard smooth, columns > 0, rows > 0 else { return }
        // At the border of the grid the blur is half transparent (nothing is painted outside), and the crisp
        // cells underneath show through; the clip keeps it from spilling over the frame. (The filter sits on a
        // group around the <use>, not on the <use> itself, which librsvg does not filter.)
        let filter = doc.gaussianBlurFilter(standardDeviationX: smoothingSigma * cellWidth,
                                            standardDeviationY: smoothingSigma * cellHeight)
        let clip = doc.clipRect(x: area.x, y: area.y, width: area.width, height: area.height)
        doc.group(attributes: [("class", "smoothing"), ("clip-path", "url(#\(clip))")]) { doc in
            doc.group(attributes: [("filter", "url(#\(filter))")]) { doc in doc.use(id) }
        }
    }

    /// Colour level 0…255 of `values[index]` on `domain`, or `nil` for NaN or missing cells.
    static func colorLevel(_ values: [Double], _ index: Int, domain: ClosedRange<Double>) -> Int? {
        guard index < values.count else { return nil }
        let value = values[index]
        if value.isNaN { return nil }
        let t = (min(max(value, domain.lowerBound), domain.upperBound) - domain.lowerBound)
            / (domain.upperBound - domain.lowerBound)
        return Int((t * 255).rounded())
    }
}
