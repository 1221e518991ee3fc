import ArgumentParser
import FlowCore

/// Samples in data units laid out as a PNG grid of images (`sample --out FILE.png`).
struct SampleGrid {
    /// Each row's image shape `[C, H, W]` (C = 1 or 3 is drawn; other channel counts show their first channel).
    let shape: ImageShape
    /// The data's discrete levels (values 0 … levels − 1; a dequantised sample x in [0, levels) shows level ⌊x⌋),
    /// nil for continuous data (then the samples' own range maps to black … white).
    let levels: Int?

    /// The PNG file of `count` rows `[count, C·H·W]` (data units), `columns` images per grid row; the rows come in
    /// `blocks` equal blocks (one per temperature), each starting a new grid row. A single image is written as it
    /// is, H × W pixels without a border (so that `encode --data` reads it back).
    func png(_ values: [Float], count: Int, columns: Int, blocks: Int) -> [UInt8] {
        let D = shape.count, perBlock = count / max(blocks, 1)
        let rowsPerBlock = (perBlock + columns - 1) / columns
        let channels = shape.channels == 3 ? 3 : 1
        let single = count == 1
        var images: [[Double]] = []
        for b in 0..<blocks {
            for k in 0..<(rowsPerBlock * columns) {
                // A block's last grid row may be short: blank cells (an empty image draws nothing).
                let i = b * perBlock + k
                images.append(k < perBlock ? values[(i * D)..<(i * D + channels * shape.pixels)].map(Double.init) : [])
            }
        }
        let byte = byteMap(values)
        return Self.grid(images, channels: channels, shape: shape, columns: columns, single: single, byte: byte).encoded()
    }

    /// Value → byte: the level's grey for discrete data (level ⌊x̃ + 0.001⌋: the tolerance keeps decode(encode(l)),
    /// which lands within rounding of l, on level l), the finite range for continuous data.
    func byteMap(_ values: [Float]) -> (Double) -> UInt8 {
        if let levels, levels >= 2 {
            let top = Double(levels - 1)
            return { v in UInt8((min(max((v + 0.001).rounded(.down), 0), top) * 255 / top).rounded()) }
        }
        let finite = values.filter(\.isFinite)
        let lo = Double(finite.min() ?? 0), hi = Double(finite.max() ?? 1)
        let span = hi > lo ? hi - lo : 1
        return { v in UInt8((min(max((v - lo) / span, 0), 1) * 255).rounded()) }
    }

    /// ``PNGImage/grid(_:channels:height:width:columns:rows:gap:background:byte:)``: a single image bare (H × W, its own
    /// channels); a grid in RGB with a blue border and blank cells, a colour no grey image holds.
    static func grid(_ images: [[Double]], channels: Int, shape: ImageShape, columns: Int, single: Bool,
                     byte: @escaping (Double) -> UInt8) -> PNGImage {
        if single {
            return PNGImage.grid(images, channels: channels, height: shape.height, width: shape.width, columns: 1, gap: 0, byte: byte)
        }
        let border: [UInt8] = [40, 70, 140]
        let P = shape.pixels
        // Grey images become RGB (the same byte on three channels); NaN marks a blank cell.
        let rgb = images.map { image -> [Double] in
            image.isEmpty ? [Double](repeating: .nan, count: 3 * P) : (channels == 3 ? image : image + image + image)
        }
        var png = PNGImage.grid(rgb, channels: 3, height: shape.height, width: shape.width, columns: columns,
                                rows: (images.count + columns - 1) / columns, gap: 2, background: 0) { v in v.isNaN ? 0 : byte(v) }
        // The border and blank cells: every pixel outside the drawn images.
        var drawn = [Bool](repeating: false, count: png.width * png.height)
        for (k, image) in images.enumerated() where !image.isEmpty {
            let top = 2 + (k / columns) * (shape.height + 2), left = 2 + (k % columns) * (shape.width + 2)
            for y in 0..<shape.height { for x in 0..<shape.width { drawn[(top + y) * png.width + left + x] = true } }
        }
        for p in 0..<drawn.count where !drawn[p] { for c in 0..<3 { png.pixels[p * 3 + c] = border[c] } }
        return png
    }

    /// Refuses a grid wider or taller than a PNG reader accepts (16384 pixels a side).
    static func checkSize(shape: ImageShape, count n: Int, columns: Int, blocks: Int) throws {
        let (rows, overflow) = blocks.multipliedReportingOverflow(by: (n - 1) / columns + 1)
        let width = 2 + columns * (shape.width + 2)
        let height = overflow || rows > 1 << 14 ? Int.max : 2 + rows * (shape.height + 2)
        guard width <= 1 << 14, height <= 1 << 14 else {
            throw ValidationError("a grid of \(columns) columns × \(rows) rows of \(shape.width)×\(shape.height) images is \(width)×\(height == Int.max ? "more than 16384" : String(height)) pixels; keep it within 16384 a side (fewer --columns, -n or temperatures, or write .npy)")
        }
    }
}
