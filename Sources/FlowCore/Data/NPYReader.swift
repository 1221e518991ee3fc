/// Reads NumPy `.npy` files (format versions 1.0, 2.0 and 3.0) holding a 2-D little-endian float array.
///
/// Accepted: magic `\x93NUMPY`, version 1.0 (2-byte header length), 2.0 or 3.0 (4-byte header length),
/// a header dictionary with exactly the keys `'descr'`, `'fortran_order'`, `'shape'`, where `descr` is
/// `'<f4'` (float32) or `'<f8'` (float64), `fortran_order` is `False` and `shape` is `(rows, columns)` with
/// both at least 1; followed by exactly `rows * columns * itemsize` bytes of data.
///
/// Errors (all ``FlowIOError`` naming the path; none has a `line`/`column`, element positions are in the
/// message as 1-based `row r, column c`): wrong magic (an `.npz` zip archive is recognised), unsupported
/// version, header length beyond the file, malformed header dictionary, missing or unexpected keys,
/// big-endian or native-order dtype, any other dtype (named), Fortran order, not 2-D (shape named),
/// empty array, element count overflow, truncated data (expected vs actual bytes), trailing bytes after the
/// data, NaN or ±Inf values (`row 3, column 2: value is NaN; remove or impute it`), `'<f8'` values beyond
/// Float32's range (`row 3, column 2: value 1e+39 is outside the Float32 range (±3.4e38)`), open/read failures.
public enum NPYReader {
    /// Reads the `.npy` file at `path`. The header is checked against the file size before anything is
    /// allocated; the data is read in 1 MiB chunks and converted to `Double`.
    ///
    /// - Returns: a table of shape `[rows, columns]` (row-major, `header == nil`), all values within Float32's range.
    /// - Throws: ``FlowIOError`` as described on ``NPYReader``.
    public static func read(path: String) throws(FlowIOError) -> TabularData {
        let file = try ReadOnlyFile(path: path)
        let size = try file.size()
        return try decode(path: path, fileSize: size) { (offset, count) throws(FlowIOError) in
            try file.readBytes(count: count, at: offset)
        }
    }

    /// Parses the bytes of an `.npy` file held in memory; `path` is only used in error messages.
    ///
    /// - Returns: a table of shape `[rows, columns]` (row-major, `header == nil`), all values within Float32's range.
    /// - Throws: ``FlowIOError`` as described on ``NPYReader``.
    public static func parse(bytes: [UInt8], path: String) throws(FlowIOError) -> TabularData {
        try decode(path: path, fileSize: bytes.count) { (offset, count) throws(FlowIOError) in
            Array(bytes[offset..<(offset + count)])
        }
    }

    /// The format's magic string, `\x93NUMPY`.
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
    /// The largest header accepted, in bytes (NumPy itself refuses headers above 10 000 bytes by default).
    static let maxHeaderBytes = 1 << 20

    /// `read(offset, count)` returns `count` bytes at `offset`; it is only called with ranges inside `fileSize`.
    private static func decode(
        path: String, fileSize: Int, read: (_ offset: Int, _ count: Int) throws(FlowIOError) -> [UInt8]
    ) throws(FlowIOError) -> TabularData {
        func failure(_ message: String) -> FlowIOError { FlowIOError(path: path, message: message) }

        let prefix = try read(0, min(fileSize, 12))
        let magicSeen = Array(prefix.prefix(magic.count))
        guard magicSeen == Array(magic.prefix(magicSeen.count)) else {
            let shown = magicSeen.map { "0x" + FlowIOBytes.hex($0) }.joined(separator: " ")
            let hint = magicSeen.starts(with: [0x50, 0x4B, 0x03, 0x04]) ? " (this is a zip archive, perhaps an .npz; extract the array first)" : ""
            throw failure("not a NumPy .npy file: expected magic \\x93NUMPY, found \(shown)\(hint)")
        }
        guard prefix.count >= 10 else {
            throw failure("file is \(fileSize) bytes, too short for a .npy header (at least 10 bytes)")
        }
        let major = prefix[6]
        let minor = prefix[7]
        let headerStart: Int
        let headerLength: Int
        switch (major, minor) {
        case (1, 0):
            headerStart = 10
            headerLength = Int(prefix[8]) | Int(prefix[9]) << 8
        case (2, 0), (3, 0):
            guard prefix.count >= 12 else {
                throw failure("file is \(fileSize) bytes, too short for a version \(major).0 .npy header (at least 12 bytes)")
            }
            headerStart = 12
            headerLength = Int(prefix[8]) | Int(prefix[9]) << 8 | Int(prefix[10]) << 16 | Int(prefix[11]) << 24
        default:
            throw failure("unsupported .npy format version \(major).\(minor) (supported: 1.0, 2.0, 3.0)")
        }
        guard headerLength <= fileSize - headerStart else {
            throw failure("header length \(headerLength) exceeds the file size (\(fileSize) bytes)")
        }
        guard headerLength <= maxHeaderBytes else {
            throw failure("header length \(headerLength) is implausibly large (limit \(maxHeaderBytes) bytes)")
        }
        let headerBytes = try read(headerStart, headerLength)
        if major == 3, let bad = FlowIOBytes.firstInvalidUTF8Offset(headerBytes[...]) {
            throw failure("header byte \(bad + 1) (0x\(FlowIOBytes.hex(headerBytes[bad]))) is not valid UTF-8")
        }
        let format = try parseHeader(headerBytes, path: path)
        let dataStart = headerStart + headerLength

        let (count, countOverflow) = format.rows.multipliedReportingOverflow(by: format.columns)
        let (byteCount, bytesOverflow) = count.multipliedReportingOverflow(by: format.itemSize)
        guard !countOverflow, !bytesOverflow else {
            throw failure("shape \(format.shapeText) has too many elements: the byte count overflows Int")
        }
        let available = fileSize - dataStart
        guard byteCount <= available else {
            throw failure(
                "data is truncated: shape \(format.shapeText) of '\(format.descr)' needs \(byteCount) bytes after the header, the file has \(available)")
        }
        guard byteCount == available else {
            throw failure(
                "file has \(available - byteCount) unexpected trailing bytes after the \(byteCount) bytes of data for shape \(format.shapeText) of '\(format.descr)'")
        }

        var values: [Double] = []
        values.reserveCapacity(count)
        let chunkElements = (1 << 20) / format.itemSize
        var element = 0
        while element < count {
            let elements = min(chunkElements, count - element)
            let chunk = try read(dataStart + element * format.itemSize, elements * format.itemSize)
            chunk.withUnsafeBytes { raw in
                if format.itemSize == 4 {
                    for k in 0..<elements {
                        let bits = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: k * 4, as: UInt32.self))
                        values.append(Double(Float(bitPattern: bits)))
                    }
                } else {
                    for k in 0..<elements {
                        let bits = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: k * 8, as: UInt64.self))
                        values.append(Double(bitPattern: bits))
                    }
                }
            }
            if let bad = values[element...].firstIndex(where: { !TabularData.isInFloat32Range($0) }),
               let problem = TabularData.float32RangeProblem(values[bad]) {
                throw failure("row \(bad / format.columns + 1), column \(bad % format.columns + 1): \(problem)")
            }
            element += elements
        }
        return TabularData(rows: format.rows, columns: format.columns, values: values, header: nil)
    }

    /// The validated content of an `.npy` header dictionary.
    private struct Format {
        var descr: String
        var itemSize: Int
        var rows: Int
        var columns: Int
        var shapeText: String
    }

    private static func parseHeader(_ bytes: [UInt8], path: String) throws(FlowIOError) -> Format {
        func failure(_ message: String) -> FlowIOError { FlowIOError(path: path, message: message) }
        let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
        let shownText = text.count > 200 ? String(text.prefix(200)) + "…" : text

        let literal: PythonLiteral
        do throws(PythonLiteralError) {
            literal = try PythonLiteralParser.parse(bytes)
        } catch {
            throw failure("malformed header dictionary: \(error.message) at byte \(error.offset + 1) of the header \(shownText)")
        }
        guard case .dictionary(let pairs) = literal else {
            throw failure("malformed header: expected a dictionary, found \(shownText)")
        }
        var entries: [String: PythonLiteral] = [:]
        for (key, value) in pairs {
            guard case .string(let name) = key else { throw failure("malformed header dictionary: key \(key.repr) is not a string") }
            guard ["descr", "fortran_order", "shape"].contains(name) else {
                throw failure("header dictionary has unexpected key '\(name)' (expected only 'descr', 'fortran_order', 'shape')")
            }
            entries[name] = value
        }
        for key in ["descr", "fortran_order", "shape"] where entries[key] == nil {
            throw failure("header dictionary has no '\(key)' key: \(shownText)")
        }

        guard case .string(let descr)? = entries["descr"] else {
            throw failure("unsupported dtype \(entries["descr"]?.repr ?? ""): structured dtypes are not supported; expected '<f4' (float32) or '<f8' (float64)")
        }
        let itemSize: Int
        switch descr {
        case "<f4": itemSize = 4
        case "<f8": itemSize = 8
        case ">f4", ">f8":
            throw failure("big-endian dtype '\(descr)' is not supported; save with arr.astype('<\(descr.dropFirst())')")
        case "=f4", "=f8", "f4", "f8":
            throw failure("dtype '\(descr)' does not state its byte order; expected '<f4' (float32) or '<f8' (float64)")
        case "|O":
            throw failure("unsupported dtype '|O' (Python objects, a pickled array); expected '<f4' (float32) or '<f8' (float64)")
        default:
            throw failure("unsupported dtype '\(descr)'; expected '<f4' (float32) or '<f8' (float64)")
        }

        guard case .boolean(let fortranOrder)? = entries["fortran_order"] else {
            throw failure("malformed header dictionary: 'fortran_order' is \(entries["fortran_order"]?.repr ?? ""), expected True or False")
        }
        guard case .tuple(let dimensions)? = entries["shape"] else {
            throw failure("malformed header dictionary: 'shape' is \(entries["shape"]?.repr ?? ""), expected a tuple of integers")
        }
        let shapeText = PythonLiteral.tuple(dimensions).repr
        var shape: [Int] = []
        for dimension in dimensions {
            guard case .integer(let value, _) = dimension else {
                throw failure("malformed header dictionary: 'shape' \(shapeText) contains \(dimension.repr), expected integers")
            }
            guard let value, value >= 0 else {
                throw failure("invalid shape \(shapeText): dimensions must be non-negative integers that fit in Int")
            }
            shape.append(value)
        }
        if fortranOrder {
            throw failure("Fortran-ordered (column-major) arrays are not supported; save np.ascontiguousarray(arr) instead")
        }
        guard shape.count == 2 else {
            let hint = shape.count == 1 ? "; use arr.reshape(1, -1) for one row of features (arr.reshape(-1, 1) makes a single column)" : ""
            throw failure("expected a 2-D array [rows, columns], found shape \(shapeText) (\(shape.count)-D)\(hint)")
        }
        guard shape[0] >= 1, shape[1] >= 1 else {
            throw failure("array of shape \(shapeText) is empty; expected at least one row and one column")
        }
        return Format(descr: descr, itemSize: itemSize, rows: shape[0], columns: shape[1], shapeText: shapeText)
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines.
    fileprivate func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
