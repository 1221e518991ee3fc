// libFuzzer target: IDXReader.parse(bytes:path:maximumBytes:), plain and gzip-compressed IDX.
//
// Oracles: no crash or sanitizer report; every error is a well-formed FlowIOError naming the path (without a
// line/column); an array that loads has 1 to 4 sizes, each ≥ 1, and exactly their product of values within the
// cap; writing it back as a plain IDX file (header + values) parses again to the same array.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    let path = "fuzz-idx3-ubyte"
    // A cap far below the default keeps libFuzzer's memory limit out of reach of small gzip bombs.
    let cap = 1 << 24
    let array: IDXReader.IDXArray
    do {
        array = try IDXReader.parse(bytes: bytes, path: path, maximumBytes: cap)
    } catch {
        report("error: \(error)")
        checkError(error, path: path, allowPosition: false)
        return 0
    }
    report("loaded \(array.shape)")
    require((1...4).contains(array.shape.count), "IDX array with \(array.shape.count) sizes")
    require(array.shape.allSatisfy { $0 >= 1 }, "IDX array with an empty size: \(array.shape)")
    require(array.values.count == array.shape.reduce(1, *) && array.values.count <= cap,
            "IDX array of \(array.values.count) values for sizes \(array.shape)")
    var plain: [UInt8] = [0, 0, 8, UInt8(array.shape.count)]
    for s in array.shape { plain += [UInt8(s >> 24 & 0xFF), UInt8(s >> 16 & 0xFF), UInt8(s >> 8 & 0xFF), UInt8(s & 0xFF)] }
    plain += array.values
    do {
        let again = try IDXReader.parse(bytes: plain, path: path, maximumBytes: cap)
        require(again == array, "IDX round trip changed the array")
    } catch {
        fatalError("fuzz oracle failed: IDX round trip failed: \(error)")
    }
    return 0
}
