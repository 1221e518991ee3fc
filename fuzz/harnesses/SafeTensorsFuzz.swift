// libFuzzer target: SafeTensorsFile(bytes:path:), then every accessor on every tensor, then a write/read
// round trip through SafeTensorsWriter.
//
// Oracles: no crash or sanitizer report; every error is a well-formed FlowIOError naming the path; for a file
// that loads, each tensor's byte range matches shape × dtype size, lies in the data buffer and the ranges tile
// it; rawBytes are the file's bytes; floats/doubles/int64s/uint64s succeed exactly for the dtypes they
// document, return one element per shape element, and throw the documented error otherwise; re-writing the
// tensors and metadata with SafeTensorsWriter and loading again gives the same tensors and metadata.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    let path = "fuzz.safetensors"
    let file: SafeTensorsFile
    do {
        file = try SafeTensorsFile(bytes: bytes, path: path)
    } catch {
        report("error: \(error)")
        checkError(error, path: path, allowPosition: false)
        return 0
    }
    var headerLength = 0
    for k in 0..<8 { headerLength |= Int(bytes[k]) << (8 * k) }
    let dataStart = 8 + headerLength
    report("loaded")
    touchEveryTensor(file, bytes: bytes, dataStart: dataStart)

    // Round trip: the same tensors (in offset order) and metadata, written by our writer, load back equal.
    var writer = SafeTensorsWriter()
    writer.metadata = file.metadata
    let ordered = file.tensors.values.sorted {
        ($0.byteRange.lowerBound, $0.byteRange.upperBound, $0.name) < ($1.byteRange.lowerBound, $1.byteRange.upperBound, $1.name)
    }
    for info in ordered {
        writer.add(name: info.name, dtype: info.dtype, shape: info.shape, bytes: try! file.rawBytes(info.name))
    }
    let again: SafeTensorsFile
    do {
        again = try SafeTensorsFile(bytes: writer.serialize(), path: path)
    } catch {
        fatalError("fuzz oracle failed: a file written by SafeTensorsWriter does not load: \(error)")
    }
    require(again.metadata == file.metadata, "metadata changed in the round trip: \(file.metadata) → \(again.metadata)")
    require(again.names == file.names, "names changed in the round trip: \(file.names) → \(again.names)")
    for name in file.names {
        let a = try! file.info(name), b = try! again.info(name)
        require(a.dtype == b.dtype && a.shape == b.shape, "tensor '\(name)' changed in the round trip: \(a) → \(b)")
        require(try! file.rawBytes(name) == again.rawBytes(name), "tensor '\(name)' bytes changed in the round trip")
    }
    return 0
}

private func touchEveryTensor(_ file: SafeTensorsFile, bytes: [UInt8], dataStart: Int) {
    let bufferSize = bytes.count - dataStart
    var coveredBytes = 0
    for name in file.names {
        let info: SafeTensorInfo
        do { info = try file.info(name) } catch { fatalError("fuzz oracle failed: info('\(name)') of a listed tensor threw \(error)") }
        require(info.name == name, "info('\(name)').name is '\(info.name)'")
        var elements = 1
        for dimension in info.shape {
            require(dimension >= 0, "negative dimension in \(info)")
            elements *= dimension  // validated: cannot overflow
        }
        let size = info.dtype.byteSize
        require(info.byteRange.lowerBound >= 0 && info.byteRange.upperBound <= bufferSize, "\(info) outside the \(bufferSize)-byte buffer")
        require(info.byteRange.count == elements * size, "\(info): \(info.byteRange.count) bytes for \(elements) elements")
        coveredBytes += info.byteRange.count

        let raw: [UInt8]
        do { raw = try file.rawBytes(name) } catch { fatalError("fuzz oracle failed: rawBytes('\(name)') threw \(error)") }
        require(raw[...] == bytes[(dataStart + info.byteRange.lowerBound)..<(dataStart + info.byteRange.upperBound)],
                "rawBytes('\(name)') differ from the file's bytes")

        func expectDTypeError<T>(_ accessor: String, _ expected: String, _ body: () throws(FlowIOError) -> T) {
            do {
                _ = try body()
                fatalError("fuzz oracle failed: \(accessor)('\(name)') accepted dtype \(info.dtype)")
            } catch {
                require(error == FlowIOError(path: file.path, message: "tensor '\(name)' has dtype \(info.dtype.rawValue), expected \(expected)"),
                        "\(accessor)('\(name)') threw an unexpected error: \(error)")
            }
        }
        func littleEndian(_ k: Int, _ width: Int) -> UInt64 {
            var value: UInt64 = 0
            for b in 0..<width { value |= UInt64(raw[k * width + b]) << (8 * UInt64(b)) }
            return value
        }

        // floats: F32 only.
        if info.dtype == .F32 {
            let values = try! file.floats(name)
            require(values.count == elements, "floats('\(name)') returned \(values.count) of \(elements)")
            for k in values.indices { require(values[k].bitPattern == UInt32(littleEndian(k, 4)), "floats('\(name)')[\(k)] wrong") }
        } else {
            expectDTypeError("floats", "F32") { () throws(FlowIOError) in try file.floats(name) }
        }
        // doubles: F64, or F32 widened.
        if info.dtype == .F64 || info.dtype == .F32 {
            let values = try! file.doubles(name)
            require(values.count == elements, "doubles('\(name)') returned \(values.count) of \(elements)")
            for k in values.indices {
                let expected = info.dtype == .F64
                    ? Double(bitPattern: littleEndian(k, 8)) : Double(Float(bitPattern: UInt32(littleEndian(k, 4))))
                require(values[k].bitPattern == expected.bitPattern || (values[k].isNaN && expected.isNaN), "doubles('\(name)')[\(k)] wrong")
            }
        } else {
            expectDTypeError("doubles", "F64 or F32") { () throws(FlowIOError) in try file.doubles(name) }
        }
        // int64s: signed and narrower unsigned integers.
        let signed: Set<SafeTensorsDType> = [.I64, .I32, .I16, .I8], unsigned: Set<SafeTensorsDType> = [.U32, .U16, .U8]
        if signed.contains(info.dtype) || unsigned.contains(info.dtype) {
            let values = try! file.int64s(name)
            require(values.count == elements, "int64s('\(name)') returned \(values.count) of \(elements)")
            for k in values.indices {
                let bits = littleEndian(k, size)
                let shift = UInt64(64 - 8 * size)
                let expected = signed.contains(info.dtype) ? Int64(bitPattern: bits << shift) >> Int64(shift) : Int64(bits)
                require(values[k] == expected, "int64s('\(name)')[\(k)] = \(values[k]), expected \(expected)")
            }
        } else {
            expectDTypeError("int64s", "I64 (or I32, I16, I8, U32, U16, U8)") { () throws(FlowIOError) in try file.int64s(name) }
        }
        // uint64s: unsigned integers.
        if info.dtype == .U64 || unsigned.contains(info.dtype) {
            let values = try! file.uint64s(name)
            require(values.count == elements, "uint64s('\(name)') returned \(values.count) of \(elements)")
            for k in values.indices { require(values[k] == littleEndian(k, size), "uint64s('\(name)')[\(k)] wrong") }
        } else {
            expectDTypeError("uint64s", "U64 (or U32, U16, U8)") { () throws(FlowIOError) in try file.uint64s(name) }
        }
    }
    require(coveredBytes == bufferSize, "tensors cover \(coveredBytes) of \(bufferSize) data bytes")
    // A name that is not in the file: the documented "missing" error.
    let absent = "\u{1}absent"
    do {
        _ = try file.info(absent)
        fatalError("fuzz oracle failed: info of an absent tensor succeeded")
    } catch {
        checkError(error, path: file.path, allowPosition: false)
        require(error.message.hasPrefix("tensor '\(absent)' is missing (the file has "), "unexpected missing-tensor error \(error)")
    }
}
