/// One grid of equally sized gray-scale images (e.g. generated 8 × 8 digits) with an optional title above it
/// and optional labels left of its rows.
public struct ImageGridSpec: Sendable, Equatable {
    /// Title drawn above the grid (empty for none).
    public var title: String
    /// The images in row-major grid order (image `r * columns + c` goes to row `r`, column `c`). Each image is
    /// a flat row-major `[imageHeight, imageWidth]` array of intensities. Images beyond `rows * columns` are
    /// ignored, missing images leave their slot empty, and missing pixels (a short image) stay black.
    public var images: [[Double]]
    /// Pixel rows per image.
    public var imageHeight: Int
    /// Pixel columns per image.
    public var imageWidth: Int
    /// Grid rows.
    public var rows: Int
    /// Grid columns.
    public var columns: Int
    /// One label per grid row (e.g. `"τ = 0.25"`), drawn right-aligned left of the row; `nil` for none.
    public var rowLabels: [String]?
    /// One label per grid column (e.g. `"class 3"`), drawn centred above the column; `nil` for none.
    public var columnLabels: [String]?
    /// Intensity range mapped to black (`lowerBound`, and below) … white (`upperBound`, and above);
    /// NaN pixels are black. This matches the usual white-on-black rendering of digits.
    public var valueRange: ClosedRange<Double>

    /// Creates a grid description.
    public init(
        title: String = "", images: [[Double]], imageHeight: Int, imageWidth: Int, rows: Int, columns: Int,
        rowLabels: [String]? = nil, columnLabels: [String]? = nil, valueRange: ClosedRange<Double> = 0...1
    ) {
        self.title = title
        self.images = images
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.rows = rows
        self.columns = columns
        self.rowLabels = rowLabels
        self.columnLabels = columnLabels
        self.valueRange = valueRange
    }
}

extension Plots {
    /// A `rows` × `columns` grid of gray-scale images under the figure `title`, each pixel a square
    /// (white = `valueRange.upperBound` on black = `valueRange.lowerBound`), with optional `rowLabels` at the
    /// left of each row. `images` holds flat row-major `[imageHeight, imageWidth]` arrays; see ``ImageGridSpec``
    /// for how missing or extra images are handled.
    public static func imageGrid(
        images: [[Double]], imageHeight: Int, imageWidth: Int, rows: Int, columns: Int, rowLabels: [String]? = nil,
        title: String, valueRange: ClosedRange<Double> = 0...1
    ) -> String {
        imageGrids(
            [ImageGridSpec(images: images, imageHeight: imageHeight, imageWidth: imageWidth, rows: rows,
                           columns: columns, rowLabels: rowLabels, valueRange: valueRange)],
            title: title)
    }

    /// Several image grids side by side in one SVG, left to right, under the figure `title` — e.g.
    /// `[generated, real]` with grid titles "Generated" and "Real". `pixelSize` is the side of one image pixel
    /// in SVG pixels; by default about 72 px per image side (9 for 8 × 8 images, 3 for 28 × 28),
    /// decided by the largest image of all grids so that every grid uses the same scale.
    ///
    /// The grids' tops line up (under a band for the grid titles and one for the column labels, when any grid
    /// has them) and the figure is as tall as the tallest grid plus a 16 px margin: grids with equal row counts
    /// (e.g. ``ImageGridSpec/byClass(title:images:labels:rows:imageHeight:imageWidth:valueRange:)`` with as many
    /// rows as the generated grid) leave no empty band.
    public static func imageGrids(_ grids: [ImageGridSpec], title: String, pixelSize: Double? = nil) -> String {
        let largestSide = grids.map { max($0.imageHeight, $0.imageWidth, 1) }.max() ?? 1
        let pixel = max(pixelSize ?? max((72 / Double(largestSide)).rounded(), 1), 0.1)
        let gap = 4.0, padding = 16.0, gridGap = 32.0
        let top = title.isEmpty ? 10 : PlotTheme.figureTitleHeight
        let hasGridTitles = grids.contains { !$0.title.isEmpty }
        let gridTitleHeight = hasGridTitles ? 24.0 : 0
        let columnLabelHeight = grids.contains { !($0.columnLabels ?? []).isEmpty } ? 18.0 : 0

        struct Block {
            let labelWidth: Double
            let width: Double
            let height: Double
            let imageSize: (width: Double, height: Double)
        }
        let blocks = grids.map { grid -> Block in
            let labels = grid.rowLabels ?? []
            let labelWidth = labels.isEmpty ? 0 : (labels.map { PlotTheme.textWidth($0) }.max() ?? 0) + 12
            let imageW = Double(max(grid.imageWidth, 0)) * pixel, imageH = Double(max(grid.imageHeight, 0)) * pixel
            let columns = Double(max(grid.columns, 0)), rows = Double(max(grid.rows, 0))
            return Block(labelWidth: labelWidth, width: labelWidth + columns * imageW + max(columns - 1, 0) * gap,
                         height: rows * imageH + max(rows - 1, 0) * gap, imageSize: (imageW, imageH))
        }
        let contentWidth = blocks.map(\.width).reduce(0, +) + gridGap * Double(max(blocks.count - 1, 0))
        let width = max(contentWidth + 2 * padding, PlotTheme.textWidth(title, size: PlotTheme.titleSize) + 2 * padding)
        let height = top + gridTitleHeight + columnLabelHeight + (blocks.map(\.height).max() ?? 0) + padding
        var doc = SVGDocument(width: width, height: height)
        PlotTheme.drawFigureTitle(&doc, title: title, width: width)

        var x = (width - contentWidth) / 2
        for (grid, block) in zip(grids, blocks) {
            let originX = (x + block.labelWidth).rounded(), originY = (top + gridTitleHeight + columnLabelHeight).rounded()
            if !grid.title.isEmpty {
                doc.text(grid.title, x: originX + (block.width - block.labelWidth) / 2, y: top + 14, anchor: .middle,
                         size: PlotTheme.panelTitleSize, weight: "bold", fill: PlotTheme.textColor, cssClass: "grid-title")
            }
            for (row, label) in (grid.rowLabels ?? []).prefix(max(grid.rows, 0)).enumerated() {
                let centerY = originY + Double(row) * (block.imageSize.height + gap) + block.imageSize.height / 2
                doc.text(label, x: originX - 10, y: centerY + 4, anchor: .end, fill: PlotTheme.textColor,
                         cssClass: "row-label")
            }
            for (column, label) in (grid.columnLabels ?? []).prefix(max(grid.columns, 0)).enumerated() {
                let centerX = originX + Double(column) * (block.imageSize.width + gap) + block.imageSize.width / 2
                doc.text(label, x: centerX, y: originY - 6, anchor: .middle, fill: PlotTheme.textColor,
                         cssClass: "column-label")
            }
            let slots = max(grid.rows, 0) * max(grid.columns, 0)
            for (index, image) in grid.images.prefix(slots).enumerated() {
                let imageX = originX + Double(index % grid.columns) * (block.imageSize.width + gap)
                let imageY = originY + Double(index / grid.columns) * (block.imageSize.height + gap)
                drawImage(&doc, image: image, grid: grid, x: imageX, y: imageY, pixel: pixel)
            }
            x += block.width + gridGap
        }
        return doc.render()
    }

    /// One image: a black square, then one `<rect>` per horizontal run of equal non-black gray level.
    private static func drawImage(
        _ doc: inout SVGDocument, image: [Double], grid: ImageGridSpec, x: Double, y: Double, pixel: Double
    ) {
        let height = max(grid.imageHeight, 0), width = max(grid.imageWidth, 0)
        let low = grid.valueRange.lowerBound, span = grid.valueRange.upperBound - grid.valueRange.lowerBound
        func level(_ row: Int, _ column: Int) -> Int {
            let index = row * width + column
            guard index < image.count else { return 0 }
            let value = image[index]
            let t = (value - low) / span
            guard !t.isNaN, span > 0 else { return 0 }
            return Int((min(max(t, 0), 1) * 255).rounded())
        }
        doc.group(attributes: [("class", "image"), ("shape-rendering", "crispEdges")]) { doc in
            doc.rect(x: x, y: y, width: Double(width) * pixel, height: Double(height) * pixel, fill: "#000000",
                     cssClass: "image-background")
            for row in 0..<height {
                var column = 0
                while column < width {
                    let value = level(row, column)
                    var end = column + 1
                    while end < width, level(row, end) == value { end += 1 }
                    if value > 0 {
                        let gray = UInt8(value)
                        doc.rect(x: x + Double(column) * pixel, y: y + Double(row) * pixel,
                                 width: Double(end - column) * pixel, height: pixel,
                                 fill: RGBColor(red: gray, green: gray, blue: gray).hex)
                    }
                    column = end
                }
            }
        }
    }
}
