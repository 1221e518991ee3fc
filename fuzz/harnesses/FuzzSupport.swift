// Shared helpers for the libFuzzer harnesses in this directory. Each harness is compiled together with the
// FlowCore parser sources into one module (see fuzz/build.sh), so it can use FlowCore's internal API.
//
// A harness reports a bug by stopping the process (fatalError / a Swift runtime trap / an AddressSanitizer
// report); libFuzzer then saves the input under fuzz/crashes/. Besides crashes, the harnesses check the
// readers' documented contracts (the "oracles" below).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// With FUZZ_VERBOSE set (e.g. `FUZZ_VERBOSE=1 fuzz/.bin/npy fuzz/corpus/npy/*`), each input's outcome is printed.
let fuzzVerbose = getenv("FUZZ_VERBOSE") != nil

/// Prints what the reader made of an input when FUZZ_VERBOSE is set.
func report(_ outcome: @autoclosure () -> String) {
    if fuzzVerbose { print("fuzz: \(outcome())") }
}

/// The fuzzer's input as an array (libFuzzer may pass a null pointer with size 0).
func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Stops the process with `message` when `condition` is false: a contract violation counts as a crash.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
             file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("fuzz oracle failed: \(message())", file: file, line: line) }
}

/// The documented shape of every reader error: it names the path it was given, has a non-empty message, and
/// 1-based line/column numbers (only where `allowPosition`). (Messages may end with a period when they quote
/// the input, so "never ends with a period" is not checked.)
func checkError(_ error: FlowIOError, path: String, allowPosition: Bool, maxLine: Int = .max) {
    require(error.path == path, "error names path \(error.path), expected \(path): \(error)")
    require(!error.message.isEmpty, "empty error message: \(error)")
    if allowPosition {
        if let line = error.line { require(line >= 1 && line <= maxLine, "line \(line) out of 1...\(maxLine): \(error)") }
        if let column = error.column { require(column >= 1 && error.line != nil, "bad column: \(error)") }
    } else {
        require(error.line == nil && error.column == nil, "unexpected line/column in \(error)")
    }
}

/// Whether two tables are identical, comparing values bit for bit (so -0.0 ≠ 0.0, NaN never appears).
func sameTable(_ a: TabularData, _ b: TabularData, compareHeader: Bool = true) -> Bool {
    guard a.rows == b.rows, a.columns == b.columns, a.values.count == b.values.count else { return false }
    if compareHeader && a.header != b.header { return false }
    for k in a.values.indices where a.values[k].bitPattern != b.values[k].bitPattern { return false }
    return true
}

/// The reader contract for a table: at least one row and column, rows × columns values, all finite.
func checkTable(_ table: TabularData, what: String) {
    require(table.rows >= 1 && table.columns >= 1, "\(what): empty table \(table.rows)x\(table.columns)")
    require(table.values.count == table.rows * table.columns,
            "\(what): \(table.values.count) values for \(table.rows)x\(table.columns)")
    require(table.values.allSatisfy(\.isFinite), "\(what): non-finite value")
    if let header = table.header { require(header.count == table.columns, "\(what): header has \(header.count) names") }
}
