import Foundation
import Testing

@testable import FlowCore

/// The IDX reader (the MNIST family's format), plain and gzip-compressed: exact values, and every malformed
/// file refused with a message naming it.
@Suite("IDX reader")
struct IDXReaderTests {
    static func fixture(_ name: String) throws -> String {
        try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures")).path
    }

    /// A 2 × 3 × 2 image file: pixel k = 20·k.
    static let images: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2] + (0..<12).map { UInt8($0 * 20) }

    @Test("a plain and a gzip-compressed file give the same values; images become rows; labels pair with them")
    func goldenValues() throws {
        let plain = try IDXReader.read(path: Self.fixture("tiny-images-idx3-ubyte"))
        #expect(plain == IDXReader.IDXArray(shape: [2, 3, 2], values: (0..<12).map { UInt8($0 * 20) }))
        #expect(try IDXReader.read(path: Self.fixture("tiny-images-idx3-ubyte.gz")) == plain)
        let (rows, shape, labels) = try IDXReader.readLabeledImages(images: Self.fixture("tiny-images-idx3-ubyte.gz"),
                                                                    labels: Self.fixture("tiny-labels-idx1-ubyte.gz"))
        #expect(shape == [3, 2] && labels == [7, 1])
        #expect(rows.rows == 2 && rows.row(1) == [120, 140, 160, 180, 200, 220])
        // As a data file: rows of H·W values.
        let data = try DataSpec(dataset: nil, file: Self.fixture("tiny-images-idx3-ubyte.gz")).load()
        #expect(data.values == rows.values && data.columns == 6)
        #expect(IDXReader.isIDXName("/a/train-images-idx3-ubyte.gz") && IDXReader.isIDXName("t10k-labels-idx1-ubyte")
                && IDXReader.isIDXName("x.idx") && !IDXReader.isIDXName("idx.csv"))
    }

    @Test("malformed files: each refused, naming the file and what is wrong")
    func malformed() throws {
        var wrongMagic = Self.images; wrongMagic[0] = 1
        var float = Self.images; float[2] = 0x0D
        var noDims = Self.images; noDims[3] = 0
        var zeroSize = Self.images; zeroSize[7] = 0
        let huge: [UInt8] = [0, 0, 8, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2]
        let cases: [([UInt8], String)] = [
            ([0, 0], "f: is 2 bytes long, too short for an IDX header (4 bytes, then the sizes)"),
            (wrongMagic, "f: does not start with an IDX magic number (00 00 type dims); its first bytes are 01 00 08 03"),
            (float, "f: holds IDX type 0x0d (float); only unsigned bytes (0x08, the MNIST family's) are read"),
            (noDims, "f: declares 0 dimensions; an IDX array here has 1 to 4"),
            (Array(Self.images.prefix(10)), "f: is 10 bytes long, too short for the header of 3 sizes (16 bytes)"),
            (zeroSize, "f: size 1 of 3 is 0: the array is empty"),
            (huge, "f: sizes 4294967295 × … give more than 2147483647 values"),
            (Array(Self.images.dropLast(3)), "f: is truncated: sizes 2 × 3 × 2 need 12 bytes of data, it has 9"),
            (Self.images + [9, 9], "f: has 2 bytes after the 12 of sizes 2 × 3 × 2"),
        ]
        for (bytes, message) in cases {
            #expect(throws: FlowIOError.self) { try IDXReader.parse(bytes: bytes, path: "f") }
            do { _ = try IDXReader.parse(bytes: bytes, path: "f") } catch { #expect("\(error)" == message) }
        }
    }

    @Test("gzip: a truncated or corrupt stream and a stream inflating beyond the cap are refused")
    func badGzip() throws {
        let gz = Array(try Data(contentsOf: URL(fileURLWithPath: Self.fixture("tiny-images-idx3-ubyte.gz"))))
        func message(_ bytes: [UInt8], maximumBytes: Int = IDXReader.maximumBytes) -> String? {
            do { _ = try IDXReader.parse(bytes: bytes, path: "g", maximumBytes: maximumBytes); return nil } catch { return "\(error)" }
        }
        #expect(message(Array(gz.prefix(gz.count - 12)))?.hasPrefix("g: is not a valid gzip file (the stream ends early") == true)
        var corrupt = gz; corrupt[12] ^= 0xFF
        #expect(message(corrupt)?.hasPrefix("g: is not a valid gzip file") == true)
        #expect(message(gz, maximumBytes: 4) == "g: inflates to more than 24 bytes, beyond any IDX array read here")
        #expect(message(gz, maximumBytes: 12) == nil)
    }
}
