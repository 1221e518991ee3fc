// libFuzzer target: NPYReader.parse(bytes:path:).
//
// Oracles: no crash or sanitizer report; every error is a well-formed FlowIOError naming the path (without a
// line/column); a table that loads has rows, columns ≥ 1, rows × columns finite values and no header; writing it
// back as a version-1.0 '<f8' file (NPYWriter's header) and parsing again gives the same values bit for bit.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    let path = "fuzz.npy"
    let table: TabularData
    do {
        table = try NPYReader.parse(bytes: bytes, path: path)
    } catch {
        report("error: \(error)")
        checkError(error, path: path, allowPosition: false)
        return 0
    }
    report("loaded")
    checkTable(table, what: "NPYReader")
    require(table.header == nil, "NPY table has a header")

    var copy = NPYWriter.header(descr: "<f8", rows: table.rows, columns: table.columns)
    require(copy.count % 64 == 0, "NPYWriter header length \(copy.count) is not a multiple of 64")
    for value in table.values {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { copy.append(contentsOf: $0) }
    }
    do {
        let again = try NPYReader.parse(bytes: copy, path: path)
        require(sameTable(table, again), "NPY round trip changed the table")
    } catch {
        fatalError("fuzz oracle failed: NPY round trip failed: \(error)")
    }
    return 0
}
