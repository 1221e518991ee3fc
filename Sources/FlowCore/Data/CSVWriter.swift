/// Writes numeric tables as CSV text that ``CSVReader`` reads back exactly.
public enum CSVWriter {
    /// Writes `values` (shape `[rows, columns]`, row-major) to `path` as CSV, atomically (see ``AtomicFile``).
    ///
    /// Output: an optional header line, then one line per row with the values separated by `,`, each line
    /// ending in `\n`. Each value is written with its `description`, the shortest text that parses back to the
    /// identical value (e.g. `0.1`, `1e-05`, `-3.0`), except for the rare `Float`s whose shortest text, parsed
    /// as a `Double` (as ``CSVReader`` does) and rounded to `Float`, would give a neighbouring value; those are
    /// written with the digits of `Double(value)`. Reading back and converting to `Value` is therefore
    /// bit-exact for `Float` and `Double` (`-0.0` included). Non-finite values
    /// are written as `nan` / `inf` / `-inf`; ``CSVReader`` rejects those. With `rows == 0` the file holds only
    /// the header (or nothing), which ``CSVReader`` also rejects.
    ///
    /// - Parameters:
    ///   - values: `rows * columns` numbers, row-major.
    ///   - rows: number of lines of data, `>= 0`.
    ///   - columns: values per line, `>= 1`.
    ///   - header: `columns` column names, or `nil` for no header. Names must not contain commas, double quotes
    ///     or control characters, must not start or end with spaces or tabs, and at least one must be a non-empty
    ///     non-number (otherwise ``CSVReader`` would take the header for a data line).
    ///   - path: the destination file.
    /// - Throws: ``FlowIOError`` for an inconsistent shape, an invalid header, or a failed write.
    public static func write<Value: BinaryFloatingPoint & LosslessStringConvertible>(
        _ values: [Value], rows: Int, columns: Int, header: [String]? = nil, to path: String
    ) throws(FlowIOError) {
        try TabularData.checkShape(count: values.count, rows: rows, columns: columns, path: path)
        var output: [UInt8] = []
        output.reserveCapacity(values.count * 12 + 64)
        if let header {
            try checkHeader(header, columns: columns, path: path)
            for (index, name) in header.enumerated() {
                if index > 0 { output.append(0x2C) }
                output.append(contentsOf: name.utf8)
            }
            output.append(0x0A)
        }
        var index = 0
        for _ in 0..<rows {
            for column in 0..<columns {
                if column > 0 { output.append(0x2C) }
                output.append(contentsOf: roundTripText(values[index]).utf8)
                index += 1
            }
            output.append(0x0A)
        }
        try AtomicFile.write(output, to: path)
    }

    /// `value.description`, unless reading that text as a `Double` (as ``CSVReader`` does) and converting back
    /// to `Value` gives a different value: parsing through `Double` rounds twice, which changes a few `Float`s
    /// (e.g. `-7.038531e-26`, bit pattern `0x95AE43FD`). Those are written as `Double(value).description`,
    /// which `Double` parses exactly.
    static func roundTripText<Value: BinaryFloatingPoint & LosslessStringConvertible>(_ value: Value) -> String {
        let text = value.description
        guard value.isFinite, let parsed = Double(text), Value(parsed) != value else { return text }
        return Double(value).description
    }

    private static func checkHeader(_ header: [String], columns: Int, path: String) throws(FlowIOError) {
        guard header.count == columns else {
            throw FlowIOError(path: path, message: "header has \(header.count) names but the table has \(columns) columns")
        }
        for (index, name) in header.enumerated() {
            if let bad = name.unicodeScalars.first(where: { $0 == "," || $0 == "\"" || $0.value < 0x20 || $0.value == 0x7F }) {
                throw FlowIOError(
                    path: path,
                    message: "header name \(index + 1) \"\(name)\" contains U+\(String(bad.value, radix: 16, uppercase: true)), which CSV output cannot hold")
            }
            if name.hasPrefix(" ") || name.hasSuffix(" ") {
                throw FlowIOError(path: path, message: "header name \(index + 1) \"\(name)\" starts or ends with a space, which CSVReader would trim")
            }
        }
        let readsAsHeader = header.contains { name in
            let bytes = Array(name.utf8)
            return !bytes.isEmpty && bytes.withUnsafeBufferPointer { CSVParser.parseField($0) } == .notANumber
        }
        guard readsAsHeader else {
            throw FlowIOError(
                path: path,
                message: "header \(header) would be read back as a data line: at least one name must be a non-empty non-number")
        }
    }
}
