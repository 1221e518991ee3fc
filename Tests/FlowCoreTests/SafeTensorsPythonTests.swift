import Foundation
import Testing

@testable import FlowCore

/// Compatibility with the reference implementation (`pip install safetensors`), run through `python3`.
@Suite(.enabled(if: Python.hasSafetensors, "python3 with numpy and safetensors is not installed; skipping compatibility tests"))
struct SafeTensorsPythonTests {
    /// Prints `{"metadata": {...}, "tensors": {name: [numpy dtype, shape, little-endian bytes as hex]}}` for a file.
    static let dumpScript = """
        import sys, json
        import numpy as np
        from safetensors import safe_open
        from safetensors.numpy import load_file
        tensors = load_file(sys.argv[1])
        with safe_open(sys.argv[1], framework="np") as f:
            metadata = f.metadata() or {}
        out = {}
        for name, a in tensors.items():
            out[name] = [str(a.dtype), list(a.shape), a.astype(a.dtype.newbyteorder('<')).tobytes().hex()]
        print(json.dumps({"metadata": metadata, "tensors": out}, ensure_ascii=False))
        """

    @Test func pythonReadsWhatSwiftWrites() throws {
        var writer = SafeTensorsWriter()
        writer.metadata = ["format": "np", "note": "quote \" backslash \\ newline \n tab \t ünï 🌊", "empty": ""]
        let tensors: [(String, SafeTensorsDType, [Int], [UInt8], String)] = [
            ("flow.0.scale", .F32, [2, 3], littleEndian([Float(0.1), -2.5, 3e38, .leastNonzeroMagnitude, -0.0, 7]), "float32"),
            ("weird \"name\" \\ é\n", .F64, [3], littleEndian([0.1, -1e-300, Double.pi]), "float64"),
            ("step", .I64, [2], littleEndian(words: [UInt64(bitPattern: -5), 1 << 62]), "int64"),
            ("seed", .U64, [1], littleEndian(words: [.max]), "uint64"),
            ("i32", .I32, [1, 1], [0xFF, 0xFF, 0xFF, 0x7F], "int32"),
            ("u8", .U8, [0], [], "uint8"),
            ("flags", .BOOL, [3], [1, 0, 1], "bool"),
            ("half", .F16, [2], [0x00, 0x3C, 0x00, 0xC0], "float16"),
            ("scalar", .F32, [], littleEndian([Float(42)]), "float32"),
        ]
        for (name, dtype, shape, bytes, _) in tensors { writer.add(name: name, dtype: dtype, shape: shape, bytes: bytes) }
        try withTemporaryDirectory { directory in
            let path = directory + "/swift.safetensors"
            try writer.write(to: path)
            let output = try Python.check(Self.dumpScript, [path])
            let json = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
            #expect(json["metadata"] as? [String: String] == writer.metadata)
            let dumped = try #require(json["tensors"] as? [String: [Any]])
            #expect(dumped.keys.sorted() == tensors.map(\.0).sorted())
            for (name, _, shape, bytes, numpyType) in tensors {
                let entry = try #require(dumped[name], "\(name)")
                #expect(entry[0] as? String == numpyType, "\(name)")
                #expect((entry[1] as? [Any])?.compactMap { SafeTensorsFile.jsonInteger($0) } == shape, "\(name)")
                #expect(entry[2] as? String == bytes.map { String(format: "%02x", $0) }.joined(), "\(name)")
            }
        }
    }

    @Test func swiftReadsWhatPythonWrites() throws {
        let script = """
            import sys
            import numpy as np
            from safetensors.numpy import save_file
            save_file({
                "layer.weight": np.array([[0.1, -2.5, 3e38], [1e-45, -0.0, 7]], dtype=np.float32),
                "layer.bias": np.array([0.1, -1e-300, np.pi], dtype=np.float64),
                "step": np.array([-5, 2**62], dtype=np.int64),
                "seed": np.array([2**64 - 1], dtype=np.uint64),
                "small": np.array([-3, 300], dtype=np.int16),
                "mask": np.array([True, False]),
                "empty": np.zeros((0, 4), dtype=np.float32),
                "scalar": np.array(42.0, dtype=np.float32),
            }, sys.argv[1], metadata={"format": "np", "note": "h\\u00e9llo \\"q\\""})
            """
        try withTemporaryDirectory { directory in
            let path = directory + "/python.safetensors"
            _ = try Python.check(script, [path])
            let file = try SafeTensorsFile(path: path)
            #expect(file.metadata == ["format": "np", "note": "héllo \"q\""])
            #expect(file.names == ["empty", "layer.bias", "layer.weight", "mask", "scalar", "seed", "small", "step"])
            let expectedWeights: [Float] = [0.1, -2.5, 3e38, .leastNonzeroMagnitude, -0.0, 7]
            #expect(try file.floats("layer.weight").map(\.bitPattern) == expectedWeights.map(\.bitPattern))
            #expect(try file.info("layer.weight").shape == [2, 3])
            #expect(try file.doubles("layer.bias") == [0.1, -1e-300, Double.pi])
            #expect(try file.int64s("step") == [-5, 1 << 62])
            #expect(try file.uint64s("seed") == [.max])
            #expect(try file.int64s("small") == [-3, 300])
            #expect(try file.info("mask").dtype == .BOOL)
            #expect(try file.rawBytes("mask") == [1, 0])
            #expect(try file.info("empty").shape == [0, 4])
            #expect(try file.floats("empty") == [])
            #expect(try file.info("scalar").shape == [])
            #expect(try file.floats("scalar") == [42])
        }
    }

    @Test func pythonRejectsWhatSwiftRejects() throws {
        // A gap in the data buffer: both implementations refuse the file.
        let bytes = safetensorsFile(
            json: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
            data: [UInt8](repeating: 0, count: 12))
        try withTemporaryDirectory { directory in
            let path = directory + "/gap.safetensors"
            try writeFixture(bytes, to: path)
            expectFlowIOError("\(path): data buffer bytes 4..<8 are not covered by any tensor (after 'a', before 'b')") {
                try SafeTensorsFile(path: path)
            }
            let result = try Python.run("import sys\nfrom safetensors.numpy import load_file\nload_file(sys.argv[1])", [path])
            #expect(result.status != 0)
        }
    }
}
