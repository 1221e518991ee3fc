// libFuzzer target: CSVReader.parse(bytes:path:maxLineBytes:) with maxLineBytes = 4096.
//
// Oracles: no crash or sanitizer report; every error is a well-formed FlowIOError naming the path, with a
// line number inside the input; the incremental parser (CSVParser, as CSVReader.read(path:) uses it on
// 256 KiB chunks) fed the same bytes in small pieces gives exactly the same table or error; a parse with a
// smaller maxLineBytes agrees with it (same table, same error, or a "line is longer" error no later than the
// first difference); a table that loads has rows, columns ≥ 1 and finite values, and writing its values back
// (CSVWriter's number format) and parsing again gives the same values bit for bit.

let csvMaxLineBytes = 4096

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    let path = "fuzz.csv"
    let lineCount = bytes.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
    let whole = parseWhole(bytes, path: path, maxLineBytes: csvMaxLineBytes)

    // The same bytes fed in pieces of 1...13 bytes (chosen from the input size, so runs are reproducible).
    let chunked = parseChunked(bytes, path: path, maxLineBytes: csvMaxLineBytes, piece: 1 + size % 13)
    switch (whole, chunked) {
    case (.success(let a), .success(let b)):
        require(sameTable(a, b), "chunked parse gave a different table")
    case (.failure(let a), .failure(let b)):
        require(a == b, "chunked parse gave a different error: \(a) vs \(b)")
    default:
        fatalError("fuzz oracle failed: whole parse \(whole) but chunked parse \(chunked)")
    }

    // A smaller line limit: the same outcome, unless a line exceeds it first.
    let smallLimit = 1 + size % 64
    let small = parseWhole(bytes, path: path, maxLineBytes: smallLimit)
    switch (small, whole) {
    case (.success(let a), .success(let b)):
        require(sameTable(a, b), "maxLineBytes \(smallLimit) gave a different table")
    case (.success, .failure(let e)):
        fatalError("fuzz oracle failed: maxLineBytes \(smallLimit) succeeded but \(csvMaxLineBytes) failed: \(e)")
    case (.failure(let e), _) where e.message.hasPrefix("line is longer than \(smallLimit) bytes"):
        if case .failure(let other) = whole, let line = other.line, let tooLong = e.line {
            require(line >= tooLong, "maxLineBytes \(smallLimit) failed at line \(tooLong) but the full parse failed earlier: \(other)")
        }
    case (.failure(let a), .failure(let b)):
        require(a == b, "maxLineBytes \(smallLimit) gave a different error: \(a) vs \(b)")
    case (.failure(let a), .success):
        fatalError("fuzz oracle failed: maxLineBytes \(smallLimit) failed with \(a) but \(csvMaxLineBytes) succeeded")
    }

    switch whole {
    case .failure(let error):
        report("error: \(error)")
        checkError(error, path: path, allowPosition: true, maxLine: lineCount)
    case .success(let table):
        report("loaded \(table.rows)x\(table.columns)")
        checkTable(table, what: "CSVReader")
        // Round trip through CSVWriter's number format (no header).
        var text: [UInt8] = []
        for r in 0..<table.rows {
            for c in 0..<table.columns {
                if c > 0 { text.append(0x2C) }
                text.append(contentsOf: CSVWriter.roundTripText(table.values[r * table.columns + c]).utf8)
            }
            text.append(0x0A)
        }
        switch parseWhole(text, path: path, maxLineBytes: 1 << 20) {
        case .success(let again): require(sameTable(table, again, compareHeader: false), "CSV round trip changed the values")
        case .failure(let error): fatalError("fuzz oracle failed: CSV round trip failed: \(error)")
        }
    }
    return 0
}

private func parseWhole(_ bytes: [UInt8], path: String, maxLineBytes: Int) -> Result<TabularData, FlowIOError> {
    Result { () throws(FlowIOError) in try CSVReader.parse(bytes: bytes, path: path, maxLineBytes: maxLineBytes) }
}

private func parseChunked(_ bytes: [UInt8], path: String, maxLineBytes: Int, piece: Int) -> Result<TabularData, FlowIOError> {
    Result { () throws(FlowIOError) in
        var parser = try CSVParser(path: path, maxLineBytes: maxLineBytes)
        var failure: FlowIOError?
        bytes.withUnsafeBufferPointer { buffer in
            var start = 0
            while start < buffer.count && failure == nil {
                let end = min(buffer.count, start + piece)
                do throws(FlowIOError) { try parser.feed(UnsafeBufferPointer(rebasing: buffer[start..<end])) } catch { failure = error }
                start = end
            }
        }
        if let failure { throw failure }
        return try parser.finish()
    }
}
