import ArgumentParser
import FlowCore

/// Samples in data units laid out as a PNG grid of images (`sample --out FILE.png`).
struct SampleGrid {
    /// Each row's image shape `[C, H, W]` (C = 1 or 3 is drawn; other channel counts show their first channel).
    let shape: ImageShape
    /// The data's discrete levels (values 0 … levels − 1; see ``byteMap(_:)``), nil for continuous data (then the
    /// samples' own range maps to black … white).
    let levels: Int?

    /// The PNG file of `count` rows `[count, C·H·W]` (data units), `columns` images per grid row; the rows come in
    /// `blocks` equal blocks (one per temperature), each starting a new grid row. A single image is written as it
    /// is, H × W pixels without a border (so that `encode --data` reads it back).
    func png(_ values: [Float], count: Int, columns: Int, blocks: Int) -> [UInt8] {
        let D = shape.count, P = shape.pixels, perBlock = count / max(blocks, 1)
        let channels = shape.channels == 3 ? 3 : 1
        let byte = byteMap(values)
        func image(_ i: Int) -> [Double] { values[(i * D)..<(i * D + channels * P)].map(Double.init) }
        if count == 1 {
            return PNGImage.grid([image(0)], channels: channels, height: shape.height, width: shape.width, columns: 1, gap: 0,
                                 background: [UInt8](repeating: 0, count: channels), byte: byte).encoded()
        }
        // A grid in RGB (grey images on all three channels) with a border no grey image holds; a block's last grid
        // row may be short: empty cells stay border-coloured.
        let rowsPerBlock = (perBlock + columns - 1) / columns
        var images: [[Double]] = []
        for b in 0..<blocks {
            for k in 0..<(rowsPerBlock * columns) {
                guard k < perBlock else { images.append([]); continue }
                let x = image(b * perBlock + k)
                images.append(channels == 3 ? x : x + x + x)
            }
        }
        return PNGImage.grid(images, channels: 3, height: shape.height, width: shape.width, columns: columns, gap: 2,
                             background: Self.border, byte: byte).encoded()
    }

    /// The grid's border and empty cells.
    static let border: [UInt8] = [40, 70, 140]

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
