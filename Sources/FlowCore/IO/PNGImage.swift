import CZlib

/// An 8-bit PNG image in memory: grey (1 channel) or RGB (3 channels), written by ``encoded()`` with zlib's deflate.
///
/// The file is the signature, IHDR (width, height, bit depth 8, colour type 0 or 2), one IDAT (every scanline with
/// filter type 0, deflated at level 9) and IEND; each chunk's CRC-32 is zlib's. That is all a viewer needs for
/// sample grids (no palette, gamma or interlacing).
///
/// References: PNG (Third Edition), W3C Recommendation 2025, §5 (datastream), §11.2 (IHDR, IDAT, IEND), §9 (filter 0).
///
/// Example:
///
///     var image = PNGImage(width: 2, height: 1, channels: 1)
///     image.pixels = [0, 255]                            // row-major, channels interleaved
///     try AtomicFile.write(image.encoded(), to: "two.png")
public struct PNGImage: Sendable, Equatable {
    /// Columns and rows of pixels.
    public let width: Int, height: Int
    /// 1 (grey) or 3 (RGB).
    public let channels: Int
    /// `[height, width, channels]` row-major bytes.
    public var pixels: [UInt8]

    /// A black image of `width` × `height` pixels of `channels` (1 or 3) bytes.
    public init(width: Int, height: Int, channels: Int) {
        precondition(width >= 1 && height >= 1 && (channels == 1 || channels == 3), "PNGImage: \(width)×\(height)×\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        pixels = [UInt8](repeating: 0, count: width * height * channels)
    }

    /// The PNG file's bytes.
    public func encoded() -> [UInt8] {
        let stride = width * channels
        var raw = [UInt8](repeating: 0, count: height * (stride + 1))
        for y in 0..<height {
            // Each scanline: filter type 0 (None), then its bytes.
            for j in 0..<stride { raw[y * (stride + 1) + 1 + j] = pixels[y * stride + j] }
        }
        var file: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header: [UInt8] = []
        Self.appendBigEndian(UInt32(width), to: &header)
        Self.appendBigEndian(UInt32(height), to: &header)
        header += [8, channels == 1 ? 0 : 2, 0, 0, 0]  // depth 8, colour type, deflate, filter method 0, no interlace
        Self.appendChunk("IHDR", header, to: &file)
        Self.appendChunk("IDAT", Self.deflate(raw), to: &file)
        Self.appendChunk("IEND", [], to: &file)
        return file
    }

    /// zlib's compress2 at level 9 (a zlib stream, as IDAT holds).
    static func deflate(_ data: [UInt8]) -> [UInt8] {
        var length = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(length))
        let status = data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                compress2(dst.baseAddress, &length, src.baseAddress, uLong(data.count), 9)
            }
        }
        precondition(status == Z_OK, "PNGImage: zlib compress2 failed (\(status))")
        return Array(out[0..<Int(length)])
    }

    /// Length, type, data, CRC-32 of type + data.
    static func appendChunk(_ type: String, _ data: [UInt8], to file: inout [UInt8]) {
        let body = Array(type.utf8) + data
        appendBigEndian(UInt32(data.count), to: &file)
        file += body
        let crc = body.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        appendBigEndian(UInt32(crc), to: &file)
    }

    static func appendBigEndian(_ v: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }
}

extension PNGImage {
    /// A grid of images `[count, C, H, W]` (C = `channels`, 1 or 3; planar as the flow's rows hold them), `columns`
    /// per row, `gap` pixels of `background` (one byte per channel) between them and around the edge. Values are
    /// mapped to bytes by `byte(v)`; an empty image leaves its cell as background.
    public static func grid(_ images: [[Double]], channels: Int, height: Int, width: Int, columns: Int,
                            gap: Int = 2, background: [UInt8], byte: (Double) -> UInt8) -> PNGImage {
        precondition(columns >= 1 && background.count == channels, "PNGImage.grid: \(columns) columns, background \(background)")
        let rowCount = max(1, (images.count + columns - 1) / columns)
        var image = PNGImage(width: gap + columns * (width + gap), height: gap + rowCount * (height + gap), channels: channels)
        for p in 0..<(image.width * image.height) { for c in 0..<channels { image.pixels[p * channels + c] = background[c] } }
        for (k, values) in images.enumerated() where !values.isEmpty {
            let top = gap + (k / columns) * (height + gap), left = gap + (k % columns) * (width + gap)
            for c in 0..<channels {
                for y in 0..<height {
                    for x in 0..<width {
                        let v = values[(c * height + y) * width + x]
                        image.pixels[((top + y) * image.width + left + x) * channels + c] = byte(v)
                    }
                }
            }
        }
        return image
    }
}

extension PNGImage {
    /// Reads an 8-bit PNG file: grey or RGB, with or without alpha (dropped), any of the five scanline filters,
    /// not interlaced (what image tools write by default).
    /// - Throws: ``FlowIOError`` naming the file when it is not a PNG, is truncated, has a bad chunk CRC, another
    ///   bit depth, a palette, interlacing, or more than 2²⁶ pixels.
    public static func read(path: String) throws(FlowIOError) -> PNGImage {
        try decode(try ReadOnlyFile.readAll(path: path), path: path)
    }

    /// ``read(path:)`` on bytes in memory; `path` names them in errors.
    public static func decode(_ bytes: [UInt8], path: String) throws(FlowIOError) -> PNGImage {
        func fail(_ message: String) -> FlowIOError { FlowIOError(path: path, message: message) }
        guard bytes.count >= 8, Array(bytes[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else {
            throw fail("is not a PNG file (its first 8 bytes are not the PNG signature)")
        }
        func u32(_ at: Int) -> Int { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        var at = 8, header: [UInt8]? = nil, data: [UInt8] = [], ended = false
        while !ended {
            guard at + 12 <= bytes.count else { throw fail("is truncated at byte \(at) (no IEND chunk)") }
            let length = u32(at)
            guard length <= bytes.count - at - 12 else { throw fail("is truncated: a chunk at byte \(at) claims \(length) bytes") }
            let type = String(decoding: bytes[(at + 4)..<(at + 8)], as: UTF8.self)
            let crc = bytes.withUnsafeBufferPointer { crc32(0, $0.baseAddress! + at + 4, uInt(length + 4)) }
            guard Int(crc) == u32(at + 8 + length) else { throw fail("chunk \(type) at byte \(at) has a bad CRC (the file is damaged)") }
            let body = Array(bytes[(at + 8)..<(at + 8 + length)])
            switch type {
            case "IHDR":
                guard header == nil else { throw fail("has a second IHDR chunk at byte \(at)") }
                header = body
            case "IDAT":
                guard header != nil else { throw fail("has image data (IDAT) before its header (IHDR)") }
                data += body
            case "IEND": ended = true
            default:
                // Ancillary chunks (lower-case first letter) may be skipped; an unknown critical one may not.
                if let first = type.utf8.first, first < 0x61, type != "PLTE" {
                    throw fail("has an unknown critical chunk \(type)")
                }
            }
            at += 12 + length
        }
        guard let h = header, h.count == 13 else { throw fail("has no valid IHDR chunk") }
        let width = h[0..<4].reduce(0) { $0 << 8 | Int($1) }, height = h[4..<8].reduce(0) { $0 << 8 | Int($1) }
        let depth = h[8], colour = h[9]
        guard depth == 8 else { throw fail("has \(depth)-bit samples; only 8-bit PNGs are read") }
        let samples: Int
        switch colour {
        case 0: samples = 1
        case 2: samples = 3
        case 4: samples = 2
        case 6: samples = 4
        case 3: throw fail("has colour type 3 (a palette); only grey or RGB PNGs, with or without alpha, are read")
        default: throw fail("has colour type \(colour), which PNG does not define (0, 2, 3, 4, 6)")
        }
        guard h[10] == 0, h[11] == 0 else { throw fail("has compression method \(h[10]) and filter method \(h[11]); PNG defines 0 for both") }
        guard h[12] == 0 else { throw fail(h[12] == 1 ? "is interlaced (Adam7); save it without interlacing" : "has interlace method \(h[12]), which PNG does not define") }
        guard !data.isEmpty else { throw fail("has no image data (no IDAT chunk)") }
        guard width >= 1, height >= 1, width <= 1 << 14, height <= 1 << 14, width * height <= 1 << 26 else {
            throw fail("is \(width)×\(height) pixels; need 1 … 16384 a side and at most 2^26 pixels")
        }
        let stride = width * samples, expected = height * (stride + 1)
        var raw = [UInt8](repeating: 0, count: expected)
        var length = uLongf(expected)
        let status = data.withUnsafeBufferPointer { src in
            raw.withUnsafeMutableBufferPointer { uncompress($0.baseAddress, &length, src.baseAddress, uLong(src.count)) }
        }
        guard status == Z_OK, Int(length) == expected else { throw fail("has image data that does not inflate to \(width)×\(height) pixels (zlib status \(status))") }
        // Undo the scanline filters (PNG §9.2): each byte predicted from a (left), b (up), c (up-left).
        var pixels = [UInt8](repeating: 0, count: height * stride)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            guard filter <= 4 else { throw fail("row \(y + 1) has filter type \(filter); PNG defines 0 … 4") }
            for j in 0..<stride {
                let x = raw[y * (stride + 1) + 1 + j]
                let a = j >= samples ? Int(pixels[y * stride + j - samples]) : 0
                let b = y > 0 ? Int(pixels[(y - 1) * stride + j]) : 0
                let c = y > 0 && j >= samples ? Int(pixels[(y - 1) * stride + j - samples]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                default:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                }
                pixels[y * stride + j] = x &+ UInt8(truncatingIfNeeded: predictor)
            }
        }
        // Drop alpha: grey + alpha → grey, RGBA → RGB.
        let channels = samples >= 3 ? 3 : 1
        var image = PNGImage(width: width, height: height, channels: channels)
        for p in 0..<(width * height) { for k in 0..<channels { image.pixels[p * channels + k] = pixels[p * samples + k] } }
        return image
    }

    /// The image as one flow row `[C, H, W]` (planar, as the flows' rows hold images).
    public var planar: [Double] {
        var row = [Double](repeating: 0, count: pixels.count)
        for p in 0..<(width * height) { for k in 0..<channels { row[k * width * height + p] = Double(pixels[p * channels + k]) } }
        return row
    }
}
