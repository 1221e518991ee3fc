/// Reads comma-separated numeric tables into ``TabularData``.
///
/// Format accepted:
/// - Fields are separated by `,`; lines end with `\n` or `\r\n`; the last line may lack a newline. A `\r`
///   anywhere else (CR-only line endings, as classic Mac OS wrote them) is refused, naming the line.
///   A UTF-8 byte-order mark at the start of the file is ignored.
/// - Spaces and tabs around a field are ignored. Numbers are decimal with optional sign, fraction and
///   exponent (`-1.5`, `.5`, `3.`, `2e-3`, `+1E+10`); hexadecimal and other forms are rejected.
/// - Header: the first non-blank line is a header if and only if at least one of its fields is non-empty and
///   not a number; every later line must then be numeric. A first line whose fields are numbers and text that
///   starts as a number does (`1.5,2.O`: a data row with a typo) is refused, naming the field, rather than dropped
///   as a header. Header names are trimmed and one pair of surrounding
///   double quotes is removed. Quoted fields containing commas are not supported.
/// - Blank lines (empty or only spaces/tabs) are skipped anywhere in the file, including the middle; line
///   numbers in errors still count them, so they match an editor's line numbers.
/// - Every non-blank line must have as many fields as the first non-blank line. One column is allowed.
///
/// Errors (all ``FlowIOError``, with the 1-based `line` and 1-based `column` = field index where relevant):
/// ragged line, empty field, a carriage return inside a line, text in a data line, NaN or ±Inf
/// (`value is NaN; remove or impute it`), a value that overflows `Double`, a value beyond Float32's range
/// (`value 1e+39 is outside the Float32 range (±3.4e38)`: the model computes in Float32), empty file, only
/// blank lines, a header with no data rows, a line longer than `maxLineBytes`, bytes that are not UTF-8 text
/// or are NUL (a binary file), and any open/read failure.
public enum CSVReader {
    /// Reads the CSV file at `path`, streaming it in 256 KiB chunks (the whole file is never held in memory
    /// as text; only the parsed values are).
    ///
    /// - Parameters:
    ///   - path: the file to read.
    ///   - maxLineBytes: the longest line accepted, in bytes, not counting its `\n` or `\r\n`. Reading stops
    ///     with an error as soon as a line exceeds it (so a huge file without newlines fails fast). Must be > 0.
    /// - Returns: a table of shape `[rows, columns]` (`rows >= 1`, `columns >= 1`), all values within Float32's range.
    /// - Throws: ``FlowIOError`` as described on ``CSVReader``; open/read failures name the C library's error.
    public static func read(path: String, maxLineBytes: Int = 1 << 20) throws(FlowIOError) -> TabularData {
        var parser = try CSVParser(path: path, maxLineBytes: maxLineBytes)
        let file = try ReadOnlyFile(path: path)
        let chunkSize = 1 << 18
        let chunk = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: chunkSize)
        defer { chunk.deallocate() }
        while true {
            let count = try file.readSome(into: UnsafeMutableRawBufferPointer(chunk))
            if count == 0 { break }
            try parser.feed(UnsafeBufferPointer(rebasing: chunk[0..<count]))
        }
        return try parser.finish()
    }

    /// Parses CSV text held in memory; `path` is only used in error messages.
    ///
    /// - Parameters:
    ///   - bytes: the file's contents (UTF-8).
    ///   - path: the name to report in errors.
    ///   - maxLineBytes: the longest line accepted, in bytes, without its terminator. Must be > 0.
    /// - Returns: a table of shape `[rows, columns]`, all values within Float32's range.
    /// - Throws: ``FlowIOError`` as described on ``CSVReader``.
    public static func parse(bytes: [UInt8], path: String, maxLineBytes: Int = 1 << 20) throws(FlowIOError) -> TabularData {
        var parser = try CSVParser(path: path, maxLineBytes: maxLineBytes)
        var failure: FlowIOError?
        bytes.withUnsafeBufferPointer { buffer in
            do throws(FlowIOError) { try parser.feed(buffer) } catch { failure = error }
        }
        if let failure { throw failure }
        return try parser.finish()
    }

    /// Parses CSV text held in a `String`; `path` is only used in error messages.
    ///
    /// - Returns: a table of shape `[rows, columns]`, all values within Float32's range.
    /// - Throws: ``FlowIOError`` as described on ``CSVReader``.
    public static func parse(text: String, path: String, maxLineBytes: Int = 1 << 20) throws(FlowIOError) -> TabularData {
        try parse(bytes: Array(text.utf8), path: path, maxLineBytes: maxLineBytes)
    }
}

/// The incremental line splitter and field parser behind ``CSVReader``: feed it chunks of bytes, then call
/// ``finish()``.
struct CSVParser {
    let path: String
    let maxLineBytes: Int
    private var values: [Double] = []
    private var header: [String]?
    /// Fields per line, fixed by the first non-blank line; 0 until then.
    private var columns = 0
    /// The line that fixed `columns`.
    private var columnsLine = 0
    /// Lines completed so far (the number of the line being assembled is `lineNumber + 1`).
    private var lineNumber = 0
    private var sawBytes = false
    /// The start of a line whose end has not arrived yet.
    private var pending: [UInt8] = []

    init(path: String, maxLineBytes: Int) throws(FlowIOError) {
        guard maxLineBytes > 0 else {
            throw FlowIOError(path: path, message: "maxLineBytes must be positive, got \(maxLineBytes)")
        }
        self.path = path
        self.maxLineBytes = maxLineBytes
    }

    mutating func feed(_ bytes: UnsafeBufferPointer<UInt8>) throws(FlowIOError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        sawBytes = true
        var start = 0
        while start < bytes.count {
            var newline = start
            while newline < bytes.count && base[newline] != 0x0A { newline += 1 }
            let piece = UnsafeBufferPointer(start: base + start, count: newline - start)
            if newline == bytes.count {
                pending.append(contentsOf: piece)
                // One extra byte is allowed for the `\r` of a `\r\n` terminator.
                if pending.count - 1 > maxLineBytes { throw lineTooLong(lineNumber + 1) }
                return
            }
            if pending.isEmpty {
                try handleLine(piece)
            } else {
                pending.append(contentsOf: piece)
                try handlePending()
            }
            start = newline + 1
        }
    }

    mutating func finish() throws(FlowIOError) -> TabularData {
        if !pending.isEmpty { try handlePending() }
        guard sawBytes else { throw FlowIOError(path: path, message: "file is empty") }
        guard columns > 0 else {
            throw FlowIOError(path: path, message: "file contains only blank lines (\(lineNumber) line\(lineNumber == 1 ? "" : "s")); expected numeric data")
        }
        guard !values.isEmpty else {
            throw FlowIOError(path: path, message: "file has a header (line \(columnsLine)) but no data rows")
        }
        return TabularData(rows: values.count / columns, columns: columns, values: values, header: header)
    }

    private mutating func handlePending() throws(FlowIOError) {
        var line: [UInt8] = []
        swap(&line, &pending)
        var failure: FlowIOError?
        line.withUnsafeBufferPointer { buffer in
            do throws(FlowIOError) { try handleLine(buffer) } catch { failure = error }
        }
        line.removeAll(keepingCapacity: true)
        swap(&line, &pending)
        if let failure { throw failure }
    }

    private func lineTooLong(_ line: Int) -> FlowIOError {
        FlowIOError(
            path: path, line: line,
            message: "line is longer than \(maxLineBytes) bytes (maxLineBytes); is this really a CSV file with one sample per line?")
    }

    /// Handles one line without its `\n`.
    private mutating func handleLine(_ raw: UnsafeBufferPointer<UInt8>) throws(FlowIOError) {
        lineNumber += 1
        guard var base = raw.baseAddress else { return }
        var count = raw.count
        if count > 0 && base[count - 1] == 0x0D { count -= 1 }
        if count > maxLineBytes { throw lineTooLong(lineNumber) }
        if lineNumber == 1 && count >= 3 && base[0] == 0xEF && base[1] == 0xBB && base[2] == 0xBF {
            base += 3
            count -= 3
        }
        let line = UnsafeBufferPointer(start: base, count: count)
        if line.contains(0x0D) {
            if let problem = binaryProblem(line) { throw problem }
            throw FlowIOError(
                path: path, line: lineNumber,
                message: "carriage return (\\r) not followed by a newline: CR-only line endings (classic Mac OS) are not supported; convert them to \\n, e.g. tr '\\r' '\\n' < in.csv > out.csv")
        }
        var blank = true
        for byte in line where byte != 0x20 && byte != 0x09 {
            blank = false
            break
        }
        if blank { return }
        if columns == 0 {
            try handleFirstLine(line)
        } else {
            try handleDataLine(line)
        }
    }

    /// Splits a line into trimmed field ranges.
    private func fieldRanges(_ line: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0
        for i in 0...line.count where i == line.count || line[i] == 0x2C {
            ranges.append(trimmed(line, start..<i))
            start = i + 1
        }
        return ranges
    }

    private func trimmed(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper && (line[lower] == 0x20 || line[lower] == 0x09) { lower += 1 }
        while upper > lower && (line[upper - 1] == 0x20 || line[upper - 1] == 0x09) { upper -= 1 }
        return lower..<upper
    }

    private mutating func handleFirstLine(_ line: UnsafeBufferPointer<UInt8>) throws(FlowIOError) {
        let ranges = fieldRanges(line)
        let fields = ranges.map { CSVParser.parseField(UnsafeBufferPointer(rebasing: line[$0])) }
        let isHeader = fields.contains { $0 == .notANumber }
        columns = ranges.count
        columnsLine = lineNumber
        // A line of numbers whose other fields all start as numbers do ("1.5,2.O", "3,-4x") is a data row with a
        // typo, not a header: read as a header it would silently drop that row. Header names start otherwise
        // ("x,y", "0,1,label", "x1,x2,3", "2021,2022,Q3").
        if isHeader, fields.contains(where: { if case .number = $0 { return true } else { return false } }) {
            let texts = zip(ranges, fields).filter { $0.1 == .notANumber }.map { Array(line[$0.0]) }
            let startsAsNumber: ([UInt8]) -> Bool = { t in
                guard let first = t.first else { return false }
                return (0x30...0x39).contains(first) || first == 0x2B || first == 0x2D || first == 0x2E  // 0-9 + - .
            }
            if texts.allSatisfy(startsAsNumber), let column = fields.firstIndex(of: .notANumber) {
                if let problem = binaryProblem(line) { throw problem }
                let text = String(decoding: line[ranges[column]], as: UTF8.self)
                throw FlowIOError(path: path, line: lineNumber, column: column + 1, message: "expected a number, found \"\(text.count > 40 ? String(text.prefix(40)) + "…" : text)\" "
                    + "(the line's other fields are numbers, so it is read as data, not as a header; a header names every column)")
            }
        }
        guard isHeader else {
            try handleDataLine(line)
            return
        }
        if let problem = binaryProblem(line) { throw problem }
        header = ranges.map { range in
            var field = UnsafeBufferPointer(rebasing: line[range])
            if field.count >= 2 && field[0] == 0x22 && field[field.count - 1] == 0x22 {
                field = UnsafeBufferPointer(rebasing: field[1..<(field.count - 1)])
            }
            return String(decoding: field, as: UTF8.self)
        }
    }

    private mutating func handleDataLine(_ line: UnsafeBufferPointer<UInt8>) throws(FlowIOError) {
        var fieldCount = 1
        for byte in line where byte == 0x2C { fieldCount += 1 }
        if fieldCount != columns {
            if let problem = binaryProblem(line) { throw problem }
            let origin = header == nil ? "line \(columnsLine)" : "the header on line \(columnsLine)"
            throw FlowIOError(
                path: path, line: lineNumber,
                message: "line has \(fieldCount) field\(fieldCount == 1 ? "" : "s"), expected \(columns) (from \(origin))")
        }
        var start = 0
        var column = 1
        for i in 0...line.count where i == line.count || line[i] == 0x2C {
            let range = trimmed(line, start..<i)
            let field = UnsafeBufferPointer(rebasing: line[range])
            switch CSVParser.parseField(field) {
            case .number(let value):
                guard TabularData.isInFloat32Range(value) else {
                    throw FlowIOError(path: path, line: lineNumber, column: column, message: TabularData.float32RangeProblem(value)!)
                }
                values.append(value)
            case .notANumber:
                if let problem = binaryProblem(line) { throw problem }
                let text = String(decoding: field, as: UTF8.self)
                let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
                throw FlowIOError(path: path, line: lineNumber, column: column, message: "expected a number, found \"\(shown)\"")
            case .empty:
                throw FlowIOError(path: path, line: lineNumber, column: column, message: "empty field; expected a number")
            case .nan:
                throw FlowIOError(path: path, line: lineNumber, column: column, message: "value is NaN; remove or impute it")
            case .infinity(let positive):
                throw FlowIOError(
                    path: path, line: lineNumber, column: column, message: "value is \(positive ? "+" : "-")Inf; remove or impute it")
            case .overflow:
                let text = String(decoding: field, as: UTF8.self)
                throw FlowIOError(
                    path: path, line: lineNumber, column: column,
                    message: "value \(text) is too large for a 64-bit float (it would be Inf); remove or rescale it")
            }
            start = i + 1
            column += 1
        }
    }

    /// An error if `line` holds a NUL byte or is not valid UTF-8, which means the file is not CSV text.
    private func binaryProblem(_ line: UnsafeBufferPointer<UInt8>) -> FlowIOError? {
        if let nul = line.firstIndex(of: 0) {
            return FlowIOError(
                path: path, line: lineNumber,
                message: "NUL byte (0x00) at byte \(nul + 1) of the line; this is a binary file, not CSV text")
        }
        if let bad = FlowIOBytes.firstInvalidUTF8Offset(line) {
            return FlowIOError(
                path: path, line: lineNumber,
                message: "byte 0x\(FlowIOBytes.hex(line[bad])) at byte \(bad + 1) of the line is not valid UTF-8; this is a binary file, not CSV text")
        }
        return nil
    }
}

extension CSVParser {
    /// The result of reading one trimmed CSV field.
    enum Field: Equatable {
        case number(Double)
        case empty
        case nan
        case infinity(positive: Bool)
        /// A well-formed decimal number whose magnitude exceeds `Double.greatestFiniteMagnitude`.
        case overflow
        case notANumber
    }

    /// Parses a trimmed field: decimal numbers with optional sign, fraction and exponent; recognises
    /// `nan`, `inf` and `infinity` (any case, optional sign) so they can be reported precisely.
    static func parseField(_ field: UnsafeBufferPointer<UInt8>) -> CSVParser.Field {
        let count = field.count
        if count == 0 { return .empty }
        var i = 0
        var negative = false
        if field[0] == 0x2B || field[0] == 0x2D {
            negative = field[0] == 0x2D
            i = 1
        }
        if matchesWord(field, from: i, "nan") { return .nan }
        if matchesWord(field, from: i, "inf") || matchesWord(field, from: i, "infinity") { return .infinity(positive: !negative) }
        var digits = 0
        while i < count && field[i] &- 0x30 < 10 { i += 1; digits += 1 }
        if i < count && field[i] == 0x2E {
            i += 1
            while i < count && field[i] &- 0x30 < 10 { i += 1; digits += 1 }
        }
        if digits == 0 { return .notANumber }
        if i < count && (field[i] == 0x65 || field[i] == 0x45) {
            i += 1
            if i < count && (field[i] == 0x2B || field[i] == 0x2D) { i += 1 }
            var exponentDigits = 0
            while i < count && field[i] &- 0x30 < 10 { i += 1; exponentDigits += 1 }
            if exponentDigits == 0 { return .notANumber }
        }
        if i != count { return .notANumber }
        guard let value = Double(String(decoding: field, as: UTF8.self)) else { return .notANumber }
        return value.isFinite ? .number(value) : .overflow
    }
}

/// Whether `field[from...]` equals the lowercase ASCII `word`, ignoring case.
private func matchesWord(_ field: UnsafeBufferPointer<UInt8>, from start: Int, _ word: StaticString) -> Bool {
    guard field.count - start == word.utf8CodeUnitCount else { return false }
    let letters = word.utf8Start
    for k in 0..<word.utf8CodeUnitCount where field[start + k] | 0x20 != letters[k] {
        return false
    }
    return true
}
