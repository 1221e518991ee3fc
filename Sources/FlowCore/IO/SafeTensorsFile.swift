import Foundation

/// One tensor's entry in a safetensors header.
public struct SafeTensorInfo: Sendable, Equatable {
    /// The tensor's name (the header key).
    public var name: String
    /// The element type.
    public var dtype: SafeTensorsDType
    /// The dimensions, outermost first (row-major); `[]` is a scalar with one element.
    public var shape: [Int]
    /// The tensor's bytes within the data buffer (which starts right after the header), i.e. the header's
    /// `data_offsets` `[begin, end]` as `begin..<end`. Its length is the element count × `dtype.byteSize`.
    public var byteRange: Range<Int>

    /// Creates an entry; `byteRange` is relative to the start of the data buffer.
    public init(name: String, dtype: SafeTensorsDType, shape: [Int], byteRange: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteRange = byteRange
    }
}

/// A safetensors file (https://github.com/huggingface/safetensors), fully validated when loaded.
///
/// Layout: an 8-byte little-endian unsigned header length `N`, `N` bytes of UTF-8 JSON, then the data buffer.
/// The JSON object maps each tensor name to `{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}`
/// (offsets relative to the start of the data buffer) plus an optional `"__metadata__"` object of strings.
/// All multi-byte elements are little-endian.
///
/// Validation at load, each failure a ``FlowIOError`` naming the path (and the tensor where there is one):
/// file shorter than 8 bytes; header length 0, beyond the file, or above 100 000 000 bytes; header not UTF-8,
/// not JSON, or not a JSON object; an entry that is not an object or lacks `dtype`/`shape`/`data_offsets`;
/// an unknown dtype; a shape entry that is not a non-negative integer; an element count or byte size that
/// overflows `Int`; `data_offsets` that are not two non-negative integers, have begin > end or end beyond the
/// data buffer; a byte length that differs from element count × dtype size; overlapping tensors; bytes of the
/// data buffer not covered by any tensor (the sorted offsets must tile the buffer exactly, as the Python
/// library requires); `__metadata__` that is not an object of strings.
public struct SafeTensorsFile: Sendable {
    /// The path given when loading (or the name given to ``init(bytes:path:)``), used in errors.
    public let path: String
    /// The header's `__metadata__` (empty when absent).
    public let metadata: [String: String]
    /// Every tensor by name (`__metadata__` excluded).
    public let tensors: [String: SafeTensorInfo]
    /// The whole file.
    private let storage: [UInt8]
    /// The offset of the data buffer in `storage` (8 + header length).
    private let dataStart: Int

    /// The largest header accepted, in bytes (the limit of the reference implementation).
    public static let maxHeaderBytes = 100_000_000

    /// The tensor names, sorted.
    public var names: [String] { tensors.keys.sorted() }

    /// Loads and validates the safetensors file at `path` (read fully into memory; its size is checked
    /// before allocating).
    /// - Throws: ``FlowIOError`` when the file cannot be read or fails validation (see ``SafeTensorsFile``).
    public init(path: String) throws(FlowIOError) {
        try self.init(bytes: ReadOnlyFile.readAll(path: path), path: path)
    }

    /// Validates the bytes of a safetensors file held in memory; `path` is only used in error messages.
    /// - Throws: ``FlowIOError`` when the bytes fail validation (see ``SafeTensorsFile``).
    public init(bytes: [UInt8], path: String) throws(FlowIOError) {
        func failure(_ message: String) -> FlowIOError { FlowIOError(path: path, message: message) }

        guard bytes.count >= 8 else {
            throw failure("file is \(bytes.count) bytes, too short for a safetensors header (at least 8 bytes)")
        }
        var declared: UInt64 = 0
        for k in 0..<8 { declared |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        guard declared > 0 else { throw failure("header length is 0; expected a JSON header") }
        guard declared <= UInt64(bytes.count - 8) else {
            throw failure("header length \(declared) exceeds the file size (\(bytes.count) bytes)\(declared > UInt64(Self.maxHeaderBytes) ? "; is this really a safetensors file?" : "")")
        }
        let headerLength = Int(declared)
        guard headerLength <= Self.maxHeaderBytes else {
            throw failure("header length \(headerLength) exceeds the limit of \(Self.maxHeaderBytes) bytes")
        }
        let headerBytes = bytes[8..<(8 + headerLength)]
        if let bad = FlowIOBytes.firstInvalidUTF8Offset(headerBytes) {
            throw failure("header is not valid UTF-8: byte 0x\(FlowIOBytes.hex(headerBytes[8 + bad])) at header offset \(bad)")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes), options: [.fragmentsAllowed])
        } catch {
            var reason = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String) ?? ""
            while reason.hasSuffix(".") { reason.removeLast() }
            throw failure("header is not valid JSON" + (reason.isEmpty ? "" : ": \(reason)"))
        }
        guard let object = json as? [String: Any] else {
            throw failure("header JSON is not an object (found \(SafeTensorsFile.jsonText(json)))")
        }

        let bufferSize = bytes.count - 8 - headerLength
        var metadata: [String: String] = [:]
        var tensors: [String: SafeTensorInfo] = [:]
        for name in object.keys.sorted() {
            let entry = object[name] as Any
            if name == "__metadata__" {
                guard let dictionary = entry as? [String: Any] else {
                    throw failure("__metadata__ is not a JSON object (found \(SafeTensorsFile.jsonText(entry)))")
                }
                for (key, value) in dictionary {
                    guard let text = value as? String else {
                        throw failure("__metadata__ value for key '\(key)' is not a string (found \(SafeTensorsFile.jsonText(value)))")
                    }
                    metadata[key] = text
                }
                continue
            }
            tensors[name] = try Self.parseEntry(name: name, entry: entry, bufferSize: bufferSize, path: path)
        }
        try Self.checkTiling(tensors: Array(tensors.values), bufferSize: bufferSize, path: path)

        self.path = path
        self.metadata = metadata
        self.tensors = tensors
        self.storage = bytes
        self.dataStart = 8 + headerLength
    }

    private static func parseEntry(name: String, entry: Any, bufferSize: Int, path: String) throws(FlowIOError) -> SafeTensorInfo {
        func failure(_ message: String) -> FlowIOError { FlowIOError(path: path, message: "tensor '\(name)': \(message)") }
        guard let fields = entry as? [String: Any] else {
            throw failure("entry is not a JSON object (found \(SafeTensorsFile.jsonText(entry)))")
        }
        for key in ["dtype", "shape", "data_offsets"] where fields[key] == nil {
            throw failure("entry has no \"\(key)\"")
        }
        guard let dtypeName = fields["dtype"] as? String else {
            throw failure("\"dtype\" is not a string (found \(SafeTensorsFile.jsonText(fields["dtype"] as Any)))")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            let supported = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw failure("unknown dtype '\(dtypeName)' (supported: \(supported))")
        }
        guard let shapeItems = fields["shape"] as? [Any] else {
            throw failure("\"shape\" is not an array (found \(SafeTensorsFile.jsonText(fields["shape"] as Any)))")
        }
        var shape: [Int] = []
        for item in shapeItems {
            guard let dimension = SafeTensorsFile.jsonInteger(item), dimension >= 0 else {
                throw failure("shape \(SafeTensorsFile.jsonText(shapeItems)) contains \(SafeTensorsFile.jsonText(item)); expected non-negative integers")
            }
            shape.append(dimension)
        }
        var elements = 1
        var overflow = false
        for dimension in shape {
            let (product, o) = elements.multipliedReportingOverflow(by: dimension)
            overflow = overflow || o
            elements = product
        }
        let (byteCount, o) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, !o else {
            throw failure("shape \(shape) of \(dtype.rawValue) is too large: its byte size overflows Int")
        }
        guard let offsetItems = fields["data_offsets"] as? [Any], offsetItems.count == 2,
            let begin = SafeTensorsFile.jsonInteger(offsetItems[0]), let end = SafeTensorsFile.jsonInteger(offsetItems[1]), begin >= 0, end >= 0
        else {
            throw failure("data_offsets must be two non-negative integers [begin, end], found \(SafeTensorsFile.jsonText(fields["data_offsets"] as Any))")
        }
        guard begin <= end else { throw failure("data_offsets [\(begin), \(end)] have begin > end") }
        guard end <= bufferSize else {
            throw failure("data_offsets [\(begin), \(end)] end beyond the data buffer (\(bufferSize) bytes)")
        }
        guard end - begin == byteCount else {
            throw failure(
                "data_offsets [\(begin), \(end)] span \(end - begin) bytes but shape \(shape) of \(dtype.rawValue) needs \(byteCount) bytes")
        }
        return SafeTensorInfo(name: name, dtype: dtype, shape: shape, byteRange: begin..<end)
    }

    /// Checks that the tensors, sorted by offsets, cover `0..<bufferSize` exactly with no overlap or gap.
    private static func checkTiling(tensors: [SafeTensorInfo], bufferSize: Int, path: String) throws(FlowIOError) {
        let sorted = tensors.sorted {
            ($0.byteRange.lowerBound, $0.byteRange.upperBound, $0.name) < ($1.byteRange.lowerBound, $1.byteRange.upperBound, $1.name)
        }
        var covered = 0
        var previous: SafeTensorInfo?
        for tensor in sorted {
            let range = tensor.byteRange
            if range.lowerBound < covered, let previous {
                throw FlowIOError(
                    path: path,
                    message: "tensors '\(previous.name)' (bytes \(previous.byteRange)) and '\(tensor.name)' (bytes \(range)) overlap")
            }
            if range.lowerBound > covered {
                let after = previous.map { "after '\($0.name)', " } ?? ""
                throw FlowIOError(
                    path: path,
                    message: "data buffer bytes \(covered)..<\(range.lowerBound) are not covered by any tensor (\(after)before '\(tensor.name)')")
            }
            covered = range.upperBound
            previous = tensor
        }
        if covered != bufferSize {
            throw FlowIOError(
                path: path,
                message: "data buffer bytes \(covered)..<\(bufferSize) at its end are not covered by any tensor")
        }
    }

    /// The header entry of tensor `name`.
    /// - Throws: ``FlowIOError`` `tensor 'x' is missing` (listing the names the file has) when there is none.
    public func info(_ name: String) throws(FlowIOError) -> SafeTensorInfo {
        guard let info = tensors[name] else {
            let all = names
            let listed = all.prefix(20).map { "'\($0)'" }.joined(separator: ", ") + (all.count > 20 ? ", …" : "")
            throw FlowIOError(path: path, message: "tensor '\(name)' is missing (the file has \(all.isEmpty ? "no tensors" : listed))")
        }
        return info
    }

    /// The raw little-endian bytes of tensor `name`, `elementCount × dtype.byteSize` bytes, any dtype.
    /// - Throws: ``FlowIOError`` when the tensor is missing.
    public func rawBytes(_ name: String) throws(FlowIOError) -> [UInt8] {
        let info = try info(name)
        return Array(storage[(dataStart + info.byteRange.lowerBound)..<(dataStart + info.byteRange.upperBound)])
    }

    /// The elements of an `F32` tensor, row-major (`shape` gives the dimensions).
    /// - Throws: ``FlowIOError`` when the tensor is missing or its dtype is not `F32` (the message names both).
    public func floats(_ name: String) throws(FlowIOError) -> [Float] {
        let info = try checkedInfo(name, accepting: [.F32], expected: "F32")
        return decode(info) { raw, offset in Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))) }
    }

    /// The elements of an `F64` tensor, or of an `F32` tensor converted exactly to `Double`, row-major.
    /// - Throws: ``FlowIOError`` when the tensor is missing or its dtype is neither `F64` nor `F32`.
    public func doubles(_ name: String) throws(FlowIOError) -> [Double] {
        let info = try checkedInfo(name, accepting: [.F64, .F32], expected: "F64 or F32")
        if info.dtype == .F32 {
            return decode(info) { raw, offset in
                Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))))
            }
        }
        return decode(info) { raw, offset in Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))) }
    }

    /// The elements of an `I64` tensor, or of a narrower integer tensor (`I32`, `I16`, `I8`, `U32`, `U16`, `U8`)
    /// widened exactly, row-major.
    /// - Throws: ``FlowIOError`` when the tensor is missing or has another dtype (floats, `U64`, `BOOL`).
    public func int64s(_ name: String) throws(FlowIOError) -> [Int64] {
        let info = try checkedInfo(
            name, accepting: [.I64, .I32, .I16, .I8, .U32, .U16, .U8], expected: "I64 (or I32, I16, I8, U32, U16, U8)")
        return decode(info) { raw, offset in
            switch info.dtype {
            case .I64: return Int64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int64.self))
            case .I32: return Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
            case .I16: return Int64(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int16.self)))
            case .I8: return Int64(raw.load(fromByteOffset: offset, as: Int8.self))
            case .U32: return Int64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            case .U16: return Int64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
            default: return Int64(raw.load(fromByteOffset: offset, as: UInt8.self))
            }
        }
    }

    /// The elements of a `U64` tensor, or of a narrower unsigned tensor (`U32`, `U16`, `U8`) widened, row-major.
    /// - Throws: ``FlowIOError`` when the tensor is missing or has another dtype.
    public func uint64s(_ name: String) throws(FlowIOError) -> [UInt64] {
        let info = try checkedInfo(name, accepting: [.U64, .U32, .U16, .U8], expected: "U64 (or U32, U16, U8)")
        return decode(info) { raw, offset in
            switch info.dtype {
            case .U64: return UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            case .U32: return UInt64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            case .U16: return UInt64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
            default: return UInt64(raw.load(fromByteOffset: offset, as: UInt8.self))
            }
        }
    }

    private func checkedInfo(_ name: String, accepting dtypes: [SafeTensorsDType], expected: String) throws(FlowIOError) -> SafeTensorInfo {
        let info = try info(name)
        guard dtypes.contains(info.dtype) else {
            throw FlowIOError(path: path, message: "tensor '\(name)' has dtype \(info.dtype.rawValue), expected \(expected)")
        }
        return info
    }

    /// Decodes every element of a validated tensor; `element(raw, offset)` reads one at a byte offset of `raw`.
    private func decode<Element>(_ info: SafeTensorInfo, _ element: (UnsafeRawBufferPointer, Int) -> Element) -> [Element] {
        let size = info.dtype.byteSize
        let count = info.byteRange.count / size
        let start = dataStart + info.byteRange.lowerBound
        return storage.withUnsafeBytes { raw in
            let tensorBytes = UnsafeRawBufferPointer(rebasing: raw[start..<(start + info.byteRange.count)])
            var result: [Element] = []
            result.reserveCapacity(count)
            for k in 0..<count { result.append(element(tensorBytes, k * size)) }
            return result
        }
    }
}

extension SafeTensorsFile {
    /// An integer from a JSONSerialization value, or `nil` for anything else (booleans, non-integral or
    /// fractional-notation numbers like `2.0`, strings, integers beyond `Int`).
    static func jsonInteger(_ value: Any) -> Int? {
        guard let number = value as? NSNumber, !(value is NSDecimalNumber) else { return nil }
        switch String(cString: number.objCType) {
        case "c", "C", "B", "d", "f": return nil  // booleans and floating point
        case "Q", "L", "I", "S":
            let unsigned = number.uint64Value
            return unsigned <= UInt64(Int.max) ? Int(unsigned) : nil
        default:
            return Int(exactly: number.int64Value)
        }
    }

    /// A short JSON-like rendering of a JSONSerialization value for error messages.
    static func jsonText(_ value: Any) -> String {
        switch value {
        case let text as String: return "\"\(text)\""
        case is NSNull: return "null"
        case let items as [Any]: return "[" + items.map(SafeTensorsFile.jsonText).joined(separator: ", ") + "]"
        case is [String: Any]: return "an object"
        case let number as NSNumber:
            let type = String(cString: number.objCType)
            if type == "c" || type == "B" { return number.boolValue ? "true" : "false" }
            return "\(number)"
        default: return "\(value)"
        }
    }
}
