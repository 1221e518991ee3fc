/// Builds a safetensors file with byte-for-byte deterministic output.
///
/// Layout of ``serialize()``: 8-byte little-endian header length `N`, then `N` bytes of compact JSON padded
/// with spaces to a multiple of 8, then the data buffer. The JSON lists `"__metadata__"` first (only when
/// ``metadata`` is non-empty, keys sorted), then the tensors in the order they were added, each as
/// `{"dtype":"F32","shape":[2,3],"data_offsets":[begin,end]}`; the tensors' bytes are laid out back to back in
/// the same order. Strings are JSON-escaped (`"`, `\`, control characters); other characters are written as
/// UTF-8. Files written here load in the Python `safetensors` library and in ``SafeTensorsFile``.
public struct SafeTensorsWriter: Sendable {
    /// Free-form string metadata stored under `"__metadata__"` (omitted from the file when empty).
    public var metadata: [String: String] = [:]

    /// A tensor's data: its little-endian bytes, or F32 values still in the caller's array (copied only by
    /// ``serialize(into:)``, so a checkpoint's millions of values are copied once, into the file's bytes).
    private enum TensorData: Sendable {
        case bytes([UInt8])
        case floats(ArraySlice<Float>)

        var byteCount: Int {
            switch self {
            case .bytes(let b): b.count
            case .floats(let f): f.count * MemoryLayout<Float>.size
            }
        }

        func append(to output: inout [UInt8]) {
            switch self {
            case .bytes(let b): output.append(contentsOf: b)
            case .floats(let f):
                #if _endian(little)
                f.withUnsafeBytes { output.append(contentsOf: $0) }  // memory holds the little-endian bit patterns
                #else
                for value in f { withUnsafeBytes(of: value.bitPattern.littleEndian) { output.append(contentsOf: $0) } }
                #endif
            }
        }
    }

    private var entries: [(name: String, dtype: SafeTensorsDType, shape: [Int], data: TensorData)] = []
    private var usedNames: Set<String> = []

    /// Creates an empty writer.
    public init() {}

    /// Adds a tensor from its raw little-endian bytes.
    ///
    /// Programmer errors stop the program (`precondition`): a duplicate name, the reserved name
    /// `__metadata__`, a negative dimension, or `bytes.count` differing from the element count (product of
    /// `shape`, 1 for `[]`) × `dtype.byteSize`.
    /// - Parameters:
    ///   - name: the tensor's key in the header.
    ///   - dtype: the element type.
    ///   - shape: the dimensions, outermost first (row-major).
    ///   - bytes: the elements, little-endian, row-major.
    public mutating func add(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) {
        add(name: name, dtype: dtype, shape: shape, data: .bytes(bytes))
    }

    private mutating func add(name: String, dtype: SafeTensorsDType, shape: [Int], data: TensorData) {
        let byteCount = data.byteCount
        precondition(name != "__metadata__", "SafeTensorsWriter: the tensor name '__metadata__' is reserved")
        precondition(!usedNames.contains(name), "SafeTensorsWriter: tensor '\(name)' was added twice")
        var elements = 1
        for dimension in shape {
            precondition(dimension >= 0, "SafeTensorsWriter: tensor '\(name)' has a negative dimension in shape \(shape)")
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            precondition(!overflow, "SafeTensorsWriter: tensor '\(name)' shape \(shape) overflows Int")
            elements = product
        }
        let (needed, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        precondition(
            !overflow && needed == byteCount,
            "SafeTensorsWriter: tensor '\(name)' shape \(shape) of \(dtype.rawValue) needs \(elements) × \(dtype.byteSize) bytes, got \(byteCount)")
        usedNames.insert(name)
        entries.append((name, dtype, shape, data))
    }

    /// Adds an `F32` tensor; `floats` holds the product of `shape` elements, row-major.
    public mutating func add(name: String, shape: [Int], floats: [Float]) {
        add(name: name, shape: shape, floats: floats[...])
    }

    /// Adds an `F32` tensor from a slice (e.g. one tensor of a flat parameter vector) without copying it: the
    /// writer keeps a reference to the array (copy-on-write: the caller's later changes do not reach it) and copies
    /// the values once, when it serialises.
    public mutating func add(name: String, shape: [Int], floats: ArraySlice<Float>) {
        add(name: name, dtype: .F32, shape: shape, data: .floats(floats))
    }

    /// Adds an `F64` tensor; `doubles` holds the product of `shape` elements, row-major.
    public mutating func add(name: String, shape: [Int], doubles: [Double]) {
        add(name: name, dtype: .F64, shape: shape, bytes: littleEndianBytes(doubles.map(\.bitPattern)))
    }

    /// Adds an `I64` tensor; `int64s` holds the product of `shape` elements, row-major.
    public mutating func add(name: String, shape: [Int], int64s: [Int64]) {
        add(name: name, dtype: .I64, shape: shape, bytes: littleEndianBytes(int64s.map { UInt64(bitPattern: $0) }))
    }

    /// Adds a `U64` tensor; `uint64s` holds the product of `shape` elements, row-major.
    public mutating func add(name: String, shape: [Int], uint64s: [UInt64]) {
        add(name: name, dtype: .U64, shape: shape, bytes: littleEndianBytes(uint64s))
    }

    /// The complete file: header length, padded JSON header, data buffer. Deterministic for a given sequence
    /// of ``add(name:dtype:shape:bytes:)`` calls and ``metadata``.
    public func serialize() -> [UInt8] {
        var output: [UInt8] = []
        serialize(into: &output)
        return output
    }

    /// ``serialize()`` into `output`, replacing its contents and reusing its storage: when `output` holds a
    /// previous file of the same size (and no one else holds it), no memory is allocated for the data, and each
    /// tensor's values are copied once, straight from the array they were added from.
    public func serialize(into output: inout [UInt8]) {
        var json: [UInt8] = [0x7B]  // {
        var first = true
        func separator() {
            if !first { json.append(0x2C) }
            first = false
        }
        if !metadata.isEmpty {
            separator()
            SafeTensorsWriter.appendJSONString("__metadata__", to: &json)
            json.append(contentsOf: Array(":{".utf8))
            for (index, key) in metadata.keys.sorted().enumerated() {
                if index > 0 { json.append(0x2C) }
                SafeTensorsWriter.appendJSONString(key, to: &json)
                json.append(0x3A)
                SafeTensorsWriter.appendJSONString(metadata[key] ?? "", to: &json)
            }
            json.append(0x7D)
        }
        var offset = 0
        for entry in entries {
            separator()
            SafeTensorsWriter.appendJSONString(entry.name, to: &json)
            let shape = entry.shape.map(String.init).joined(separator: ",")
            let end = offset + entry.data.byteCount
            json.append(contentsOf: Array(":{\"dtype\":\"\(entry.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}".utf8))
            offset = end
        }
        json.append(0x7D)
        while json.count % 8 != 0 { json.append(0x20) }

        output.removeAll(keepingCapacity: true)
        output.reserveCapacity(8 + json.count + offset)
        output.append(contentsOf: littleEndianBytes([UInt64(json.count)]))
        output.append(contentsOf: json)
        for entry in entries { entry.data.append(to: &output) }
    }

    /// Writes ``serialize()`` to `path` atomically (see ``AtomicFile``).
    /// - Throws: ``FlowIOError`` naming `path` and the failing step when writing fails.
    public func write(to path: String) throws(FlowIOError) {
        try AtomicFile.write(serialize(), to: path)
    }
}

/// The little-endian bytes of each value in turn.
private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.withUnsafeBufferPointer { littleEndianBytes($0) }
}

/// The little-endian bytes of each integer in turn.
private func littleEndianBytes<T: FixedWidthInteger>(_ values: UnsafeBufferPointer<T>) -> [UInt8] {
    #if _endian(little)
    return Array(UnsafeRawBufferPointer(values))
    #else
    var bytes: [UInt8] = []
    bytes.reserveCapacity(values.count * MemoryLayout<T>.size)
    for value in values {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
    return bytes
    #endif
}

extension SafeTensorsWriter {
    /// Appends `text` as a JSON string literal: `"` and `\` escaped, control characters as `\n`, `\t`, ... or
    /// `\u00XX`, everything else as UTF-8.
    static func appendJSONString(_ text: String, to output: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        output.append(0x22)
        for byte in text.utf8 {
            switch byte {
            case 0x22: output.append(contentsOf: [0x5C, 0x22])
            case 0x5C: output.append(contentsOf: [0x5C, 0x5C])
            case 0x08: output.append(contentsOf: [0x5C, 0x62])
            case 0x0C: output.append(contentsOf: [0x5C, 0x66])
            case 0x0A: output.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: output.append(contentsOf: [0x5C, 0x72])
            case 0x09: output.append(contentsOf: [0x5C, 0x74])
            case 0..<0x20: output.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: output.append(byte)
            }
        }
        output.append(0x22)
    }
}
