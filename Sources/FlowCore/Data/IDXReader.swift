#if canImport(CZlib)
import CZlib
#else
import zlib
#endif

/// Reads IDX files, the format of the MNIST family (`train-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, …),
/// plain or gzip-compressed (`.gz`, recognised by its magic bytes).
///
/// Format (LeCun et al., the MNIST page): two zero bytes, a type byte (0x08 = unsigned byte, the only type the
/// MNIST family uses and the only one read here), the number of dimensions n (1 … 4), n big-endian UInt32 sizes,
/// then exactly ∏ sizes bytes of data in row-major order. Images are `[N, H, W]` (idx3), labels `[N]` (idx1).
///
/// Errors (``FlowIOError`` naming the file): too short for a header, a non-zero magic, another data type (named),
/// 0 or more than 4 dimensions, a size of 0, sizes whose product overflows or exceeds the memory cap, truncated
/// data or trailing bytes (both counted), a corrupt or truncated gzip stream, a gzip stream that inflates beyond
/// the cap; labels that do not match their images (count) in ``readLabeledImages(images:labels:)``.
///
/// Example:
///
///     let images = try IDXReader.read(path: "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
///     // images.shape == [10000, 28, 28]; images.values.count == 7_840_000
public enum IDXReader {
    /// An IDX array: its sizes and its unsigned bytes, row-major.
    public struct IDXArray: Sendable, Equatable {
        /// The sizes, e.g. `[N, H, W]` for images, `[N]` for labels.
        public var shape: [Int]
        /// ∏ shape values, row-major.
        public var values: [UInt8]
    }

    /// The largest array read (bytes): 2³¹ − 1, far above Fashion-MNIST's 47 MB, below what a forged header or a
    /// gzip bomb could make us allocate.
    public static let maximumBytes = Int(Int32.max)

    /// Reads the IDX file at `path` (gzip-compressed or not).
    /// - Throws: ``FlowIOError`` as described on ``IDXReader``.
    public static func read(path: String, maximumBytes: Int = IDXReader.maximumBytes) throws(FlowIOError) -> IDXArray {
        try parse(bytes: try ReadOnlyFile.readAll(path: path), path: path, maximumBytes: maximumBytes)
    }

    /// Parses an IDX file held in memory (gzip-compressed or not); `path` is used in error messages only.
    /// - Throws: ``FlowIOError`` as described on ``IDXReader``.
    public static func parse(bytes: [UInt8], path: String, maximumBytes: Int = IDXReader.maximumBytes) throws(FlowIOError) -> IDXArray {
        let raw = isGzip(bytes) ? try gunzip(bytes, path: path, maximumBytes: maximumBytes) : bytes
        func fail(_ message: String) -> FlowIOError { FlowIOError(path: path, message: message) }
        guard raw.count >= 4 else { throw fail("is \(raw.count) bytes long, too short for an IDX header (4 bytes, then the sizes)") }
        guard raw[0] == 0, raw[1] == 0 else {
            throw fail("does not start with an IDX magic number (00 00 type dims); its first bytes are \(hex(raw.prefix(4)))")
        }
        guard raw[2] == 0x08 else {
            let names: [UInt8: String] = [0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double"]
            throw fail("holds IDX type 0x\(hex([raw[2]]))\(names[raw[2]].map { " (\($0))" } ?? ""); only unsigned bytes (0x08, the MNIST family's) are read")
        }
        let n = Int(raw[3])
        guard (1...4).contains(n) else { throw fail("declares \(n) dimensions; an IDX array here has 1 to 4") }
        let header = 4 + 4 * n
        guard raw.count >= header else {
            throw fail("is \(raw.count) bytes long, too short for the header of \(n) sizes (\(header) bytes)")
        }
        var shape: [Int] = []
        var total = 1
        for d in 0..<n {
            let at = 4 + 4 * d
            let size = Int(raw[at]) << 24 | Int(raw[at + 1]) << 16 | Int(raw[at + 2]) << 8 | Int(raw[at + 3])
            guard size >= 1 else { throw fail("size \(d + 1) of \(n) is 0: the array is empty") }
            let (product, overflow) = total.multipliedReportingOverflow(by: size)
            guard !overflow, product <= maximumBytes else {
                let sizes = (shape + [size]).map(String.init).joined(separator: " × ") + (d + 1 < n ? " × …" : "")
                throw fail("sizes \(sizes) give more than \(maximumBytes) values")
            }
            shape.append(size)
            total = product
        }
        let data = raw.count - header
        guard data == total else {
            throw fail(data < total
                ? "is truncated: sizes \(shape.map(String.init).joined(separator: " × ")) need \(total) bytes of data, it has \(data)"
                : "has \(data - total) bytes after the \(total) of sizes \(shape.map(String.init).joined(separator: " × "))")
        }
        return IDXArray(shape: shape, values: Array(raw[header...]))
    }

    /// Images `[N, H, W]` as rows `[N, H·W]` (pixel values 0 … 255) and their image shape `[H, W]`.
    /// - Throws: ``FlowIOError`` as ``read(path:maximumBytes:)``, and for an array that is not 3-D.
    public static func readImages(path: String) throws(FlowIOError) -> (rows: Matrix<Double>, imageShape: [Int]) {
        let a = try read(path: path)
        guard a.shape.count == 3 else {
            throw FlowIOError(path: path, message: "holds a \(a.shape.count)-D array (sizes \(a.shape)); images are 3-D [N, H, W] (idx3)")
        }
        return (Matrix(rows: a.shape[0], columns: a.shape[1] * a.shape[2], values: a.values.map(Double.init)), [a.shape[1], a.shape[2]])
    }

    /// Images and their labels, read from an idx3 and an idx1 file of the same count.
    /// - Throws: ``FlowIOError`` as ``readImages(path:)``, for labels that are not 1-D, and naming the labels file
    ///   when its count differs from the images'.
    public static func readLabeledImages(images: String, labels: String) throws(FlowIOError) -> (rows: Matrix<Double>, imageShape: [Int], labels: [Int]) {
        let (rows, shape) = try readImages(path: images)
        let l = try read(path: labels)
        guard l.shape.count == 1 else {
            throw FlowIOError(path: labels, message: "holds a \(l.shape.count)-D array (sizes \(l.shape)); labels are 1-D [N] (idx1)")
        }
        guard l.shape[0] == rows.rows else {
            throw FlowIOError(path: labels, message: "holds \(l.shape[0]) labels for the \(rows.rows) images of \(images)")
        }
        return (rows, shape, l.values.map(Int.init))
    }

    /// Whether a file name is an IDX file's: `…-idxN-ubyte`, `….idx`, either with `.gz`.
    public static func isIDXName(_ path: String) -> Bool {
        var name = path.split(separator: "/").last.map { $0.lowercased() } ?? ""
        if name.hasSuffix(".gz") { name.removeLast(3) }
        return name.hasSuffix(".idx") || (name.contains("idx") && name.hasSuffix("-ubyte"))
    }

    /// Whether `bytes` start with gzip's magic number 1f 8b.
    static func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B }

    /// The inflated bytes of a gzip stream (one member), at most `maximumBytes` of IDX header and data.
    static func gunzip(_ bytes: [UInt8], path: String, maximumBytes: Int) throws(FlowIOError) -> [UInt8] {
        func fail(_ message: String) -> FlowIOError { FlowIOError(path: path, message: message) }
        var stream = z_stream()
        // 15 + 16: a gzip header and trailer around the deflate stream, with a 32 KiB window.
        guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw fail("cannot start zlib's inflate")
        }
        defer { inflateEnd(&stream) }
        let limit = maximumBytes + 4 + 4 * 4  // the array and the largest header
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var status: Int32 = Z_OK
        var input = bytes
        try input.withUnsafeMutableBufferPointer { (src) throws(FlowIOError) in
            stream.next_in = src.baseAddress
            stream.avail_in = UInt32(src.count)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { dst in
                    stream.next_out = dst.baseAddress
                    stream.avail_out = UInt32(dst.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return dst.count - Int(stream.avail_out)
                }
                guard status == Z_OK || status == Z_STREAM_END || (status == Z_BUF_ERROR && produced > 0) else {
                    let reason = status == Z_DATA_ERROR ? "corrupt data" : status == Z_BUF_ERROR ? "the stream ends early" : "zlib status \(status)"
                    throw fail("is not a valid gzip file (\(reason) after \(out.count + produced) inflated bytes)")
                }
                guard out.count + produced <= limit else {
                    throw fail("inflates to more than \(limit) bytes, beyond any IDX array read here")
                }
                out.append(contentsOf: chunk[0..<produced])
                if status == Z_OK && produced == 0 && stream.avail_in == 0 {
                    throw fail("is not a valid gzip file (the stream ends early after \(out.count) inflated bytes)")
                }
            } while status != Z_STREAM_END
        }
        return out
    }

    static func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        bytes.map { b in let s = String(b, radix: 16); return s.count == 1 ? "0" + s : s }.joined(separator: " ")
    }
}
