import Foundation
import Testing

@testable import FlowCore

/// A safetensors file made of an 8-byte little-endian header length, the header bytes as given, and `data`.
func safetensorsFile(header: [UInt8], data: [UInt8] = []) -> [UInt8] {
    let length = UInt64(header.count)
    return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + header + data
}

/// A safetensors file whose header is the JSON text `json`.
func safetensorsFile(json: String, data: [UInt8] = []) -> [UInt8] {
    safetensorsFile(header: utf8(json), data: data)
}

@Suite struct SafeTensorsTests {
    @Test func goldenBytesForATinyFile() throws {
        var writer = SafeTensorsWriter()
        writer.add(name: "a", shape: [2], floats: [1.0, -2.0])
        // {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} is 54 bytes; 2 spaces pad it to 56 = 0x38.
        let expected: [UInt8] =
            [0x38, 0, 0, 0, 0, 0, 0, 0]
            + utf8(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#) + utf8("  ")
            + [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]
        #expect(writer.serialize() == expected)
    }

    @Test("a slice of a larger array (not starting at 0) and integers: the same little-endian bytes")
    func goldenBytesForSlicesAndIntegers() throws {
        let flat: [Float] = [7, 1.0, -2.0, 7]
        var sliced = SafeTensorsWriter(), whole = SafeTensorsWriter()
        sliced.add(name: "a", shape: [2], floats: flat[1..<3])
        whole.add(name: "a", shape: [2], floats: [1.0, -2.0])
        #expect(sliced.serialize() == whole.serialize())
        var ints = SafeTensorsWriter()
        ints.add(name: "i", shape: [2], int64s: [1, -2])
        ints.add(name: "u", shape: [], uint64s: [0x0102_0304_0506_0708])
        let bytes = ints.serialize()
        let data = Array(bytes[(bytes.count - 24)...])
        #expect(data == [1, 0, 0, 0, 0, 0, 0, 0] + [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
            + [0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01])
    }

    @Test("serialize(into:): the bytes of serialize(), replacing a longer or shorter previous file; a file of the same size reuses the storage; values added are a snapshot (later changes to the caller's array do not reach the file)")
    func serializeIntoReusesStorage() throws {
        var flat: [Float] = (0..<1000).map { Float($0) * 0.5 - 7 }
        var writer = SafeTensorsWriter()
        writer.metadata = ["k": "v"]
        writer.add(name: "a", shape: [10, 50], floats: flat[500..<1000])
        writer.add(name: "i", shape: [1], int64s: [42])
        let expected = writer.serialize()
        flat[600] = .nan  // copy-on-write: the writer keeps the values it was given
        #expect(writer.serialize() == expected)
        var bytes = [UInt8](repeating: 0xAB, count: 3 * expected.count)  // a longer previous file
        writer.serialize(into: &bytes)
        #expect(bytes == expected)
        bytes = [1, 2, 3]  // a shorter one
        writer.serialize(into: &bytes)
        #expect(bytes == expected)
        let storage = bytes.withUnsafeBufferPointer { $0.baseAddress }
        writer.serialize(into: &bytes)  // the next snapshot of the same size: the same memory
        #expect(bytes == expected)
        #expect(bytes.withUnsafeBufferPointer { $0.baseAddress } == storage)
    }

    @Test func goldenBytesWithMetadataEscapesAndInsertionOrder() throws {
        var writer = SafeTensorsWriter()
        writer.metadata = ["format": "pt", "author": "a\"b\\c"]
        writer.add(name: "x", shape: [1, 2], doubles: [0.5, -1])
        writer.add(name: "é", dtype: .U8, shape: [0], bytes: [])
        // The JSON below is 162 bytes (é is 2 bytes); 6 spaces pad it to 168 = 0xA8.
        let json =
            #"{"__metadata__":{"author":"a\"b\\c","format":"pt"},"x":{"dtype":"F64","shape":[1,2],"data_offsets":[0,16]},"é":{"dtype":"U8","shape":[0],"data_offsets":[16,16]}}"#
        #expect(json.utf8.count == 162)
        let expected: [UInt8] =
            [0xA8, 0, 0, 0, 0, 0, 0, 0] + utf8(json) + utf8("      ")
            + [0, 0, 0, 0, 0, 0, 0xE0, 0x3F] + [0, 0, 0, 0, 0, 0, 0xF0, 0xBF]
        #expect(writer.serialize() == expected)
    }

    @Test func emptyWriterIsAValidFile() throws {
        let bytes = SafeTensorsWriter().serialize()
        #expect(bytes == [8, 0, 0, 0, 0, 0, 0, 0] + utf8("{}      "))
        let file = try SafeTensorsFile(bytes: bytes, path: "e.safetensors")
        #expect(file.tensors.isEmpty && file.metadata.isEmpty && file.names.isEmpty)
    }

    @Test func roundTripThroughAFile() throws {
        var writer = SafeTensorsWriter()
        writer.metadata = ["epoch": "12", "note": "line\nbreak\t\u{1}\"quoted\" ünïcödé 🌊"]
        let floats: [Float] = [0.1, -2.5, .greatestFiniteMagnitude, .leastNonzeroMagnitude, -0.0, 3]
        let doubles: [Double] = [0.1, -1e-300, .pi]
        let int64s: [Int64] = [.min, -1, 0, .max]
        let uint64s: [UInt64] = [0, 1, .max]
        writer.add(name: "flow.0.weight", shape: [2, 3], floats: floats)
        writer.add(name: "b \"odd\" \\ name\n", shape: [3], doubles: doubles)
        writer.add(name: "step", shape: [4], int64s: int64s)
        writer.add(name: "seed", shape: [3], uint64s: uint64s)
        writer.add(name: "flags", dtype: .BOOL, shape: [2], bytes: [1, 0])
        writer.add(name: "half", dtype: .F16, shape: [1, 1], bytes: [0x00, 0x3C])
        writer.add(name: "small", dtype: .I16, shape: [2], bytes: [0xFE, 0xFF, 0x02, 0x00])
        writer.add(name: "empty", dtype: .F32, shape: [0, 5], bytes: [])
        writer.add(name: "scalar", shape: [], floats: [42])
        try withTemporaryDirectory { directory in
            let path = directory + "/model.safetensors"
            try writer.write(to: path)
            #expect(try readFixture(path) == writer.serialize())
            let file = try SafeTensorsFile(path: path)
            #expect(file.path == path)
            #expect(file.metadata == writer.metadata)
            #expect(file.names == ["b \"odd\" \\ name\n", "empty", "flags", "flow.0.weight", "half", "scalar", "seed", "small", "step"])
            #expect(try file.floats("flow.0.weight").map(\.bitPattern) == floats.map(\.bitPattern))
            #expect(try file.doubles("flow.0.weight") == floats.map(Double.init))
            #expect(try file.doubles("b \"odd\" \\ name\n") == doubles)
            #expect(try file.int64s("step") == int64s)
            #expect(try file.uint64s("seed") == uint64s)
            #expect(try file.int64s("small") == [-2, 2])
            #expect(try file.rawBytes("flags") == [1, 0])
            #expect(try file.rawBytes("half") == [0x00, 0x3C])
            #expect(try file.floats("empty") == [])
            #expect(try file.floats("scalar") == [42])
            #expect(try file.info("scalar").shape == [])
            let weight = try file.info("flow.0.weight")
            #expect(weight == SafeTensorInfo(name: "flow.0.weight", dtype: .F32, shape: [2, 3], byteRange: 0..<24))
            #expect(try file.info("b \"odd\" \\ name\n").byteRange == 24..<48)
            #expect(try file.info("scalar").byteRange == 112..<116)
            #expect(try SafeTensorsFile(bytes: writer.serialize(), path: "m").tensors == file.tensors)
        }
    }

    @Test func serializationIsDeterministic() {
        func build() -> [UInt8] {
            var writer = SafeTensorsWriter()
            for key in ["z", "a", "m", "q", "b"] { writer.metadata[key] = key + "!" }
            for name in ["w3", "w1", "w2"] { writer.add(name: name, shape: [2], floats: [1, 2]) }
            return writer.serialize()
        }
        let first = build()
        for _ in 0..<20 { #expect(build() == first) }
        let header = String(decoding: first[8..<Int(first[0]) + 8], as: UTF8.self)
        #expect(header.hasPrefix(#"{"__metadata__":{"a":"a!","b":"b!","m":"m!","q":"q!","z":"z!"},"w3":"#))
        #expect(header.contains(#""w1":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}"#))
    }

    /// A valid file with F32 tensor 'a' (2 elements) and F64 tensor 'd' (1 element).
    static let validFile = safetensorsFile(
        json: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}}"#,
        data: littleEndian([Float(1), 2]) + littleEndian([3.0]))

    @Test func accessorErrors() throws {
        let file = try SafeTensorsFile(bytes: Self.validFile, path: "m.safetensors")
        #expect(try file.floats("a") == [1, 2])
        #expect(try file.doubles("d") == [3])
        expectFlowIOError("m.safetensors: tensor 'nope' is missing (the file has 'a', 'd')") { try file.floats("nope") }
        expectFlowIOError("m.safetensors: tensor 'nope' is missing (the file has 'a', 'd')") { try file.info("nope") }
        expectFlowIOError("m.safetensors: tensor 'd' has dtype F64, expected F32") { try file.floats("d") }
        expectFlowIOError("m.safetensors: tensor 'a' has dtype F32, expected I64 (or I32, I16, I8, U32, U16, U8)") { try file.int64s("a") }
        expectFlowIOError("m.safetensors: tensor 'a' has dtype F32, expected U64 (or U32, U16, U8)") { try file.uint64s("a") }
        let empty = try SafeTensorsFile(bytes: SafeTensorsWriter().serialize(), path: "e.safetensors")
        expectFlowIOError("e.safetensors: tensor 'x' is missing (the file has no tensors)") { try empty.rawBytes("x") }
    }

    @Test func missingFile() throws {
        try withTemporaryDirectory { directory in
            expectFlowIOError("\(directory)/none.safetensors: cannot open file: No such file or directory") {
                try SafeTensorsFile(path: directory + "/none.safetensors")
            }
        }
    }

    @Test func badHeaders() {
        let f32x2 = littleEndian([Float(1), 2])
        func entry(_ fields: String) -> String { #"{"a":{"# + fields + "}}" }
        let supported = "F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL"
        let cases: [(String, [UInt8])] = [
            ("file is 3 bytes, too short for a safetensors header (at least 8 bytes)", [1, 2, 3]),
            ("file is 0 bytes, too short for a safetensors header (at least 8 bytes)", []),
            ("header length is 0; expected a JSON header", [UInt8](repeating: 0, count: 8)),
            ("header length 1234567 exceeds the file size (120 bytes)", [0x87, 0xD6, 0x12, 0, 0, 0, 0, 0] + [UInt8](repeating: 0x20, count: 112)),
            ("header length 18446744073709551615 exceeds the file size (12 bytes); is this really a safetensors file?", [UInt8](repeating: 0xFF, count: 8) + utf8("{}  ")),
            ("header is not valid UTF-8: byte 0xFF at header offset 1", safetensorsFile(header: [0x7B, 0xFF, 0x7D])),
            ("header JSON is not an object (found [1, 2])", safetensorsFile(json: "[1,2]")),
            ("header JSON is not an object (found \"text\")", safetensorsFile(json: #""text""#)),
            ("tensor 'a': entry is not a JSON object (found 5)", safetensorsFile(json: #"{"a":5}"#)),
            ("tensor 'a': entry has no \"dtype\"", safetensorsFile(json: entry(#""shape":[2],"data_offsets":[0,8]"#), data: f32x2)),
            ("tensor 'a': entry has no \"shape\"", safetensorsFile(json: entry(#""dtype":"F32","data_offsets":[0,8]"#), data: f32x2)),
            ("tensor 'a': entry has no \"data_offsets\"", safetensorsFile(json: entry(#""dtype":"F32","shape":[2]"#), data: f32x2)),
            ("tensor 'a': \"dtype\" is not a string (found 32)", safetensorsFile(json: entry(#""dtype":32,"shape":[2],"data_offsets":[0,8]"#))),
            (
                "tensor 'a': unknown dtype 'F8_E4M3' (supported: \(supported))",
                safetensorsFile(json: entry(#""dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]"#), data: [0, 0])
            ),
            ("tensor 'a': \"shape\" is not an array (found 2)", safetensorsFile(json: entry(#""dtype":"F32","shape":2,"data_offsets":[0,8]"#))),
            (
                "tensor 'a': shape [-1] contains -1; expected non-negative integers",
                safetensorsFile(json: entry(#""dtype":"F32","shape":[-1],"data_offsets":[0,0]"#))
            ),
            (
                "tensor 'a': shape [2.5] contains 2.5; expected non-negative integers",
                safetensorsFile(json: entry(#""dtype":"F32","shape":[2.5],"data_offsets":[0,8]"#), data: f32x2)
            ),
            (
                "tensor 'a': shape [1, true] contains true; expected non-negative integers",
                safetensorsFile(json: entry(#""dtype":"F32","shape":[1,true],"data_offsets":[0,4]"#), data: [0, 0, 0, 0])
            ),
            (
                "tensor 'a': shape [\"2\"] contains \"2\"; expected non-negative integers",
                safetensorsFile(json: entry(#""dtype":"F32","shape":["2"],"data_offsets":[0,8]"#), data: f32x2)
            ),
            (
                "tensor 'a': shape [4294967296, 4294967296] of F32 is too large: its byte size overflows Int",
                safetensorsFile(json: entry(#""dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]"#), data: f32x2)
            ),
            (
                "tensor 'a': shape [2305843009213693952, 2] of F32 is too large: its byte size overflows Int",
                safetensorsFile(json: entry(#""dtype":"F32","shape":[2305843009213693952,2],"data_offsets":[0,8]"#), data: f32x2)
            ),
            (
                "tensor 'a': data_offsets must be two non-negative integers [begin, end], found [0]",
                safetensorsFile(json: entry(#""dtype":"F32","shape":[2],"data_offsets":[0]"#), data: f32x2)
            ),
            (
                "tensor 'a': data_offsets must be two non-negative integers [begin, end], found [0, 8.5]",
                safetensorsFile(json: entry(#""dtype":"F32","shape":[2],"data_offsets":[0,8.5]"#), data: f32x2)
            ),
            (
                "tensor 'a': data_offsets must be two non-negative integers [begin, end], found [-8, 0]",
                safetensorsFile(json: entry(#""dtype":"F32","shape":[2],"data_offsets":[-8,0]"#), data: f32x2)
            ),
            (
                "tensor 'a': data_offsets [8, 0] have begin > end",
                safetensorsFile(json: entry(#""dtype":"F32","shape":[2],"data_offsets":[8,0]"#), data: f32x2)
            ),
            (
                "tensor 'a': data_offsets [0, 400] end beyond the data buffer (8 bytes)",
                safetensorsFile(json: entry(#""dtype":"F32","shape":[100],"data_offsets":[0,400]"#), data: f32x2)
            ),
            (
                "tensor 'a': data_offsets [0, 4] span 4 bytes but shape [2] of F32 needs 8 bytes",
                safetensorsFile(json: entry(#""dtype":"F32","shape":[2],"data_offsets":[0,4]"#), data: [0, 0, 0, 0])
            ),
            (
                "tensors 'a' (bytes 0..<8) and 'b' (bytes 4..<12) overlap",
                safetensorsFile(
                    json: #"{"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                    data: [UInt8](repeating: 0, count: 12))
            ),
            (
                "tensors 'a' (bytes 0..<8) and 'z' (bytes 4..<4) overlap",
                safetensorsFile(
                    json: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#,
                    data: f32x2)
            ),
            (
                "data buffer bytes 4..<8 are not covered by any tensor (after 'a', before 'b')",
                safetensorsFile(
                    json: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
                    data: [UInt8](repeating: 0, count: 12))
            ),
            (
                "data buffer bytes 0..<4 are not covered by any tensor (before 'a')",
                safetensorsFile(json: entry(#""dtype":"F32","shape":[1],"data_offsets":[4,8]"#), data: f32x2)
            ),
            (
                "data buffer bytes 4..<8 at its end are not covered by any tensor",
                safetensorsFile(json: entry(#""dtype":"F32","shape":[1],"data_offsets":[0,4]"#), data: f32x2)
            ),
            ("data buffer bytes 0..<3 at its end are not covered by any tensor", safetensorsFile(json: "{}", data: [1, 2, 3])),
            ("__metadata__ value for key 'k' is not a string (found 1)", safetensorsFile(json: #"{"__metadata__":{"k":1}}"#)),
            ("__metadata__ is not a JSON object (found [\"k\"])", safetensorsFile(json: #"{"__metadata__":["k"]}"#)),
        ]
        for (expected, bytes) in cases {
            expectFlowIOError("m.safetensors: " + expected) { try SafeTensorsFile(bytes: bytes, path: "m.safetensors") }
        }
    }

    @Test func headerThatIsNotJSON() throws {
        let error = try #require(captureFlowIOError { try SafeTensorsFile(bytes: safetensorsFile(json: "{not json}  "), path: "m.safetensors") })
        #expect(error.message.hasPrefix("header is not valid JSON"))
        #expect(error.path == "m.safetensors" && error.line == nil && error.column == nil)
        let truncated = try #require(captureFlowIOError { try SafeTensorsFile(bytes: safetensorsFile(json: #"{"a":{"dtype""#), path: "m") })
        #expect(truncated.message.hasPrefix("header is not valid JSON"))
    }

    @Test func headerAboveTheSizeLimit() {
        let length = SafeTensorsFile.maxHeaderBytes + 1
        var bytes = [UInt8](repeating: 0x20, count: 8 + length)
        for k in 0..<8 { bytes[k] = UInt8(truncatingIfNeeded: length >> (8 * k)) }
        expectFlowIOError("m.safetensors: header length 100000001 exceeds the limit of 100000000 bytes") {
            try SafeTensorsFile(bytes: bytes, path: "m.safetensors")
        }
    }
}
