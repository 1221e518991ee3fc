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
        var images: [[Double]] = []
        for b in 0..<blocks {
            for k in 0..<(rowsPerBlock * columns) {
                // A block's last grid row may be short: blank cells (an empty image draws nothing).
                let i = b * perBlock + k
                images.append(k < perBlock ? values[(i * D)..<(i * D + channels * shape.pixels)].map(Double.init) : [])
            }
        }
        let byte = byteMap(values)
        return Self.grid(images, channels: channels, shape: shape, columns: columns, gap: count == 1 ? 0 : 2, byte: byte).encoded()
    }

    /// Value → byte: the level's grey for discrete data, the finite range for continuous data.
    func byteMap(_ values: [Float]) -> (Double) -> UInt8 {
        if let levels, levels >= 2 {
            let top = Double(levels - 1)
            return { v in UInt8((min(max(v.rounded(.down), 0), top) * 255 / top).rounded()) }
        }
        let finite = values.filter(\.isFinite)
        let lo = Double(finite.min() ?? 0), hi = Double(finite.max() ?? 1)
        let span = hi > lo ? hi - lo : 1
        return { v in UInt8((min(max((v - lo) / span, 0), 1) * 255).rounded()) }
    }

    /// ``PNGImage/grid(_:channels:height:width:columns:rows:gap:background:byte:)`` leaving empty images blank.
    static func grid(_ images: [[Double]], channels: Int, shape: ImageShape, columns: Int, gap: Int, byte: @escaping (Double) -> UInt8) -> PNGImage {
        let blank = [Double](repeating: .nan, count: channels * shape.pixels)
        return PNGImage.grid(images.map { $0.isEmpty ? blank : $0 }, channels: channels, height: shape.height, width: shape.width,
                             columns: columns, rows: (images.count + columns - 1) / columns, gap: gap) { v in v.isNaN ? 64 : byte(v) }
    }
}
