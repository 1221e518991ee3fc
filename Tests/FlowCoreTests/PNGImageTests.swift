import CZlib
import Testing
@testable import FlowCore

/// ``PNGImage``: the datastream a PNG decoder reads (and ours reads back: every filter, bad files) (signature, chunk CRCs, IHDR fields, the inflated scanlines)
/// and the grid layout of `sample --out FILE.png`.
@Suite("PNG images")
struct PNGImageTests {
    /// The chunks of a PNG file: (type, data), each CRC checked.
    static func chunks(_ file: [UInt8]) throws -> [(String, [UInt8])] {
        try #require(Array(file.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var out: [(String, [UInt8])] = [], i = 8
        func u32(_ at: Int) -> UInt32 { file[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        while i < file.count {
            let n = Int(u32(i))
            let body = Array(file[(i + 4)..<(i + 8 + n)])
            let crc = body.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
            #expect(crc == u32(i + 8 + n), "CRC of \(String(decoding: body.prefix(4), as: UTF8.self))")
            out.append((String(decoding: body.prefix(4), as: UTF8.self), Array(body.dropFirst(4))))
            i += 12 + n
        }
        return out
    }

    /// zlib's inflate of an IDAT stream of known length.
    static func inflate(_ data: [UInt8], count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var length = uLongf(count)
        let status = data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { uncompress($0.baseAddress, &length, src.baseAddress, uLong(data.count)) }
        }
        #expect(status == Z_OK && Int(length) == count)
        return out
    }

    @Test("a 3×2 grey image: IHDR says 3×2, 8-bit grey; IDAT inflates to filter-0 scanlines of its bytes; IEND's CRC is the standard AE 42 60 82")
    func grey() throws {
        var image = PNGImage(width: 3, height: 2, channels: 1)
        image.pixels = [0, 128, 255, 10, 20, 30]
        let file = image.encoded()
        let chunks = try Self.chunks(file)
        #expect(chunks.map(\.0) == ["IHDR", "IDAT", "IEND"])
        #expect(chunks[0].1 == [0, 0, 0, 3, 0, 0, 0, 2, 8, 0, 0, 0, 0])
        #expect(Self.inflate(chunks[1].1, count: 8) == [0, 0, 128, 255, 0, 10, 20, 30])
        #expect(Array(file.suffix(4)) == [0xAE, 0x42, 0x60, 0x82])
    }

    @Test("RGB: colour type 2, channels interleaved per pixel")
    func rgb() throws {
        var image = PNGImage(width: 1, height: 2, channels: 3)
        image.pixels = [1, 2, 3, 4, 5, 6]
        let chunks = try Self.chunks(image.encoded())
        #expect(chunks[0].1[9] == 2)
        #expect(Self.inflate(chunks[1].1, count: 8) == [0, 1, 2, 3, 0, 4, 5, 6])
    }

    @Test("grid: 3 images of 2×2 in 2 columns with a 1-pixel gap; planar RGB input lands interleaved; the empty cell is background")
    func grid() {
        let images: [[Double]] = (0..<3).map { k in (0..<12).map { Double(k * 12 + $0) } }  // [3, 2, 2] planar
        let g = PNGImage.grid(images, channels: 3, height: 2, width: 2, columns: 2, gap: 1, background: [7, 7, 7]) { UInt8($0) }
        #expect(g.width == 1 + 2 * 3 && g.height == 1 + 2 * 3)
        func px(_ x: Int, _ y: Int) -> [UInt8] { Array(g.pixels[((y * g.width + x) * 3)..<((y * g.width + x) * 3 + 3)]) }
        #expect(px(0, 0) == [7, 7, 7])
        #expect(px(1, 1) == [0, 4, 8])        // image 0, pixel (0, 0): channels at 0, 4, 8
        #expect(px(2, 2) == [3, 7, 11])       // image 0, pixel (1, 1)
        #expect(px(4, 1) == [12, 16, 20])     // image 1 starts at x = 1 + 3
        #expect(px(1, 4) == [24, 28, 32])     // image 2 on the second row
        #expect(px(4, 4) == [7, 7, 7])        // no fourth image
    }

    @Test("read(encoded()) is the image, grey and RGB")
    func roundTrip() throws {
        for channels in [1, 3] {
            var image = PNGImage(width: 5, height: 3, channels: channels)
            image.pixels = (0..<image.pixels.count).map { UInt8(($0 * 37) % 256) }
            #expect(try PNGImage.decode(image.encoded(), path: "x.png") == image)
        }
    }

    @Test("every scanline filter (None, Sub, Up, Average, Paeth) undone, RGBA's alpha dropped")
    func filters() throws {
        let width = 4, height = 5, samples = 4, stride = width * samples
        let rgba: [UInt8] = (0..<(height * stride)).map { (i: Int) -> UInt8 in UInt8((i * 53 + (i / 7) * 11) % 256) }
        // Filter row y with type y (PNG §9.2): x − predictor(a, b, c), mod 256.
        var raw: [UInt8] = []
        for y in 0..<height {
            raw.append(UInt8(y))
            for j in 0..<stride {
                let a = j >= samples ? Int(rgba[y * stride + j - samples]) : 0
                let b = y > 0 ? Int(rgba[(y - 1) * stride + j]) : 0
                let c = y > 0 && j >= samples ? Int(rgba[(y - 1) * stride + j - samples]) : 0
                let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                let predictor = [0, a, b, (a + b) / 2, pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)][y]
                raw.append(rgba[y * stride + j] &- UInt8(truncatingIfNeeded: predictor))
            }
        }
        var file: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        PNGImage.appendChunk("IHDR", [0, 0, 0, UInt8(width), 0, 0, 0, UInt8(height), 8, 6, 0, 0, 0], to: &file)
        let deflated = PNGImage.deflate(raw)
        // Two IDAT chunks (a decoder concatenates them) and an ancillary chunk it skips.
        PNGImage.appendChunk("IDAT", Array(deflated.prefix(10)), to: &file)
        PNGImage.appendChunk("tEXt", Array("Comment\0test".utf8), to: &file)
        PNGImage.appendChunk("IDAT", Array(deflated.dropFirst(10)), to: &file)
        PNGImage.appendChunk("IEND", [], to: &file)
        let image = try PNGImage.decode(file, path: "f.png")
        #expect(image.width == width && image.height == height && image.channels == 3)
        for p in 0..<(width * height) {
            #expect(Array(image.pixels[(p * 3)..<(p * 3 + 3)]) == Array(rgba[(p * 4)..<(p * 4 + 3)]), "pixel \(p)")
        }
        #expect(image.planar[0] == Double(rgba[0]) && image.planar[width * height] == Double(rgba[1]))
    }

    @Test("bad files: not a PNG, a damaged chunk, truncated, 16-bit, a palette, interlaced, other methods, a second header, an unknown critical chunk, no data: each named", arguments: [
        ("signature", "is not a PNG file"), ("crc", "has a bad CRC"), ("truncated", "is truncated"),
        ("depth16", "16-bit samples"), ("palette", "colour type 3"), ("interlaced", "is interlaced"),
        ("compression", "compression method 1"), ("secondHeader", "a second IHDR"), ("critical", "unknown critical chunk ABCD"),
        ("noData", "no image data"),
    ])
    func badFiles(kind: String, message: String) {
        var good = PNGImage(width: 2, height: 2, channels: 1)
        good.pixels = [1, 2, 3, 4]
        var file = good.encoded()
        switch kind {
        case "signature": file[1] = 0x51
        case "crc": file[20] ^= 1
        case "truncated": file = Array(file.prefix(file.count - 6))
        case "secondHeader", "critical", "noData":
            // After IHDR (bytes 8 ..< 33): another IHDR, an unknown critical chunk, or IEND straight away.
            var chunk: [UInt8] = []
            if kind == "secondHeader" { PNGImage.appendChunk("IHDR", Array(file[16..<29]), to: &chunk) }
            if kind == "critical" { PNGImage.appendChunk("ABCD", [1], to: &chunk) }
            if kind == "noData" { file = Array(file[0..<33]); PNGImage.appendChunk("IEND", [], to: &file) }
            file.insert(contentsOf: chunk, at: 33)
        default:
            // Rewrite IHDR (bytes 16 ..< 29) and its CRC.
            var header = Array(file[16..<29])
            if kind == "depth16" { header[8] = 16 }
            if kind == "palette" { header[9] = 3 }
            if kind == "interlaced" { header[12] = 1 }
            if kind == "compression" { header[10] = 1 }
            var chunk: [UInt8] = []
            PNGImage.appendChunk("IHDR", header, to: &chunk)
            file.replaceSubrange(8..<33, with: chunk)
        }
        #expect {
            try PNGImage.decode(file, path: "bad.png")
        } throws: { error in
            "\(error)".contains("bad.png") && "\(error)".contains(message)
        }
    }
}
