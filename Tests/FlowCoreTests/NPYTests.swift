import Foundation
import Testing

@testable import FlowCore

/// The little-endian bytes of float32 values.
func littleEndian(_ values: [Float]) -> [UInt8] {
    values.flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value.bitPattern >> (8 * UInt32($0))) } }
}

/// The little-endian bytes of float64 values.
func littleEndian(_ values: [Double]) -> [UInt8] {
    values.flatMap { value in (0..<8).map { UInt8(truncatingIfNeeded: value.bitPattern >> (8 * UInt64($0))) } }
}

/// The little-endian bytes of 64-bit words.
func littleEndian(words: [UInt64]) -> [UInt8] {
    words.flatMap { word in (0..<8).map { UInt8(truncatingIfNeeded: word >> (8 * UInt64($0))) } }
}

/// An .npy file with the given header dictionary text, padded like NumPy pads it, followed by `data`.
func npyFile(_ dictionary: String, version: UInt8 = 1, data: [UInt8]) -> [UInt8] {
    var header = utf8(dictionary)
    let prefix = version == 1 ? 10 : 12
    while (prefix + header.count + 1) % 64 != 0 { header.append(0x20) }
    header.append(0x0A)
    let length = header.count
    var bytes: [UInt8] = [0x93] + utf8("NUMPY") + [version, 0, UInt8(length & 0xFF), UInt8(length >> 8)]
    if version != 1 { bytes += [0, 0] }
    return bytes + header + data
}

@Suite struct NPYTests {
    /// `np.save` of `np.array([[1.5, -2.0, 0.25], [3.0, 1e-300, -0.0]], dtype='<f8')`, byte for byte.
    static let numpyFloat64Fixture: [UInt8] =
        [0x93] + utf8("NUMPY") + [0x01, 0x00, 0x76, 0x00]
        + utf8("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }") + [UInt8](repeating: 0x20, count: 58) + [0x0A]
        + hexBytes("000000000000f83f00000000000000c0000000000000d03f000000000000084059f3f8c21f6ea5010000000000000080")

    /// `np.lib.format.write_array(f, a.astype('<f4'), version=(3, 0))` of the same array (1e-300 becomes 0).
    static let numpyFloat32Version3Fixture: [UInt8] =
        [0x93] + utf8("NUMPY") + [0x03, 0x00, 0x74, 0x00, 0x00, 0x00]
        + utf8("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") + [UInt8](repeating: 0x20, count: 56) + [0x0A]
        + hexBytes("0000c03f000000c00000803e000040400000000000000080")

    @Test func readsHandMadeNumPyFixtures() throws {
        #expect(Self.numpyFloat64Fixture.count == 176)
        let table = try NPYReader.parse(bytes: Self.numpyFloat64Fixture, path: "a.npy")
        #expect(table == TabularData(rows: 2, columns: 3, values: [1.5, -2.0, 0.25, 3.0, 1e-300, -0.0], header: nil))
        #expect(table.values[5].sign == .minus)

        #expect(Self.numpyFloat32Version3Fixture.count == 152)
        let table32 = try NPYReader.parse(bytes: Self.numpyFloat32Version3Fixture, path: "b.npy")
        #expect(table32 == TabularData(rows: 2, columns: 3, values: [1.5, -2.0, 0.25, 3.0, 0, -0.0], header: nil))

        try withTemporaryDirectory { directory in
            try writeFixture(Self.numpyFloat64Fixture, to: directory + "/a.npy")
            #expect(try NPYReader.read(path: directory + "/a.npy") == table)
        }
    }

    @Test func writerProducesNumPysExactBytes() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/w.npy"
            try NPYWriter.write([1.5, -2.0, 0.25, 3.0, 0, -0.0], rows: 2, columns: 3, to: path)
            // Same header as NumPy's float32 file (version 1.0 variant of the fixture), data as float32.
            let expected =
                [0x93] + utf8("NUMPY") + [0x01, 0x00, 0x76, 0x00]
                + utf8("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") + [UInt8](repeating: 0x20, count: 58) + [0x0A]
                + hexBytes("0000c03f000000c00000803e000040400000000000000080")
            #expect(try readFixture(path) == expected)
        }
    }

    @Test func headerIsAlignedTo64BytesForManyShapes() {
        for (rows, columns) in [(1, 1), (7, 3), (123_456_789, 2), (1, 1_000_000_000_000), (Int.max, 1)] {
            let header = NPYWriter.header(descr: "<f4", rows: rows, columns: columns)
            #expect(header.count % 64 == 0)
            #expect(header.last == 0x0A)
            #expect(Int(header[8]) | Int(header[9]) << 8 == header.count - 10)
        }
    }

    @Test func writerReaderRoundTripIsBitExact() throws {
        var generator = SystemRandomNumberGenerator()
        var values: [Float] = []
        while values.count < 3 * 1000 {
            let value = Float(bitPattern: generator.next())
            if value.isFinite { values.append(value) }
        }
        try withTemporaryDirectory { directory in
            let path = directory + "/r.npy"
            try NPYWriter.write(values, rows: 1000, columns: 3, to: path)
            let table = try NPYReader.read(path: path)
            #expect(table.rows == 1000 && table.columns == 3 && table.header == nil)
            #expect(table.values.map { Float($0).bitPattern } == values.map(\.bitPattern))
            expectFlowIOError("\(path): values has 2 elements but shape [1, 3] needs 3") {
                try NPYWriter.write([1, 2], rows: 1, columns: 3, to: path)
            }
        }
    }

    @Test(.enabled(if: Python.hasSafetensors, "python3 with numpy is not installed"))
    func readsFilesWrittenByNumPy() throws {
        try withTemporaryDirectory { directory in
            let script = """
                import sys, numpy as np
                rng = np.random.default_rng(7)
                a = rng.standard_normal((5, 4)) * 1e3
                for name, dtype, version in [('f8v1', '<f8', (1, 0)), ('f4v2', '<f4', (2, 0)), ('f4v3', '<f4', (3, 0))]:
                    b = a.astype(dtype)
                    with open(sys.argv[1] + '/' + name + '.npy', 'wb') as f:
                        np.lib.format.write_array(f, b, version=version)
                    print(name, ' '.join('%016x' % v for v in b.astype('<f8').view('<u8').ravel()))
                """
            let output = try Python.check(script, [directory])
            let lines = output.split(separator: "\n")
            #expect(lines.count == 3)
            for line in lines {
                let parts = line.split(separator: " ")
                let name = String(parts[0])
                let expected = parts.dropFirst().map { UInt64($0, radix: 16) ?? 0 }
                let table = try NPYReader.read(path: "\(directory)/\(name).npy")
                #expect(table.rows == 5 && table.columns == 4, "\(name)")
                #expect(table.values.map(\.bitPattern) == expected, "\(name)")
            }
        }
    }

    @Test(.enabled(if: Python.hasSafetensors, "python3 with numpy is not installed"))
    func numpyReadsOurFileAndWritesTheSameBytes() throws {
        try withTemporaryDirectory { directory in
            let values: [Float] = [0.1, -2.5, 3e38, Float(bitPattern: 0x0001_16C2), 7, -0.0, 123.456, 1.0 / 3]
            try NPYWriter.write(values, rows: 4, columns: 2, to: directory + "/ours.npy")
            let script = """
                import sys, numpy as np
                a = np.load(sys.argv[1] + '/ours.npy')
                np.save(sys.argv[1] + '/theirs.npy', a)
                print(a.dtype.str, a.shape, ' '.join('%08x' % v for v in a.view('<u4').ravel()))
                """
            let output = try Python.check(script, [directory])
            let expected = "<f4 (4, 2) " + values.map { String(format: "%08x", $0.bitPattern) }.joined(separator: " ") + "\n"
            #expect(output == expected)
            #expect(try readFixture(directory + "/theirs.npy") == readFixture(directory + "/ours.npy"))
        }
    }

    @Test(.enabled(if: Python.hasSafetensors, "python3 with numpy is not installed"))
    func writerMatchesNumPySaveForSeveralShapes() throws {
        try withTemporaryDirectory { directory in
            let shapes = [(1, 1), (3, 17), (1000, 2), (12, 123_456)]
            for (rows, columns) in shapes {
                let values = (0..<(rows * columns)).map { Float($0 % 97) * 0.25 - 3 }
                try NPYWriter.write(values, rows: rows, columns: columns, to: "\(directory)/ours-\(rows)x\(columns).npy")
            }
            let script = """
                import sys, numpy as np
                for rows, columns in [(1, 1), (3, 17), (1000, 2), (12, 123456)]:
                    a = (np.arange(rows * columns) % 97).astype('<f4').reshape(rows, columns) * np.float32(0.25) - np.float32(3)
                    np.save('%s/theirs-%dx%d.npy' % (sys.argv[1], rows, columns), a)
                """
            _ = try Python.check(script, [directory])
            for (rows, columns) in shapes {
                let ours = try readFixture("\(directory)/ours-\(rows)x\(columns).npy")
                let theirs = try readFixture("\(directory)/theirs-\(rows)x\(columns).npy")
                #expect(ours == theirs, "shape (\(rows), \(columns))")
            }
        }
    }

    @Test func acceptsPython2StyleIntegers() throws {
        let bytes = npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }", data: littleEndian([Float(1), 2]))
        #expect(try NPYReader.parse(bytes: bytes, path: "x.npy").values == [1, 2])
    }

    @Test func badInputs() {
        let f8x6 = littleEndian([Double](repeating: 1, count: 6))
        func header(_ descr: String = "'<f8'", fortran: String = "False", shape: String = "(3, 2)") -> String {
            "{'descr': \(descr), 'fortran_order': \(fortran), 'shape': \(shape), }"
        }
        let cases: [(String, [UInt8])] = [
            ("x.npy: not a NumPy .npy file: expected magic \\x93NUMPY, found 0x68 0x65 0x6C 0x6C 0x6F 0x20", utf8("hello world!")),
            (
                "x.npy: not a NumPy .npy file: expected magic \\x93NUMPY, found 0x50 0x4B 0x03 0x04 0x14 0x00 (this is a zip archive, perhaps an .npz; extract the array first)",
                [0x50, 0x4B, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
            ),
            ("x.npy: file is 0 bytes, too short for a .npy header (at least 10 bytes)", []),
            ("x.npy: file is 7 bytes, too short for a .npy header (at least 10 bytes)", [0x93] + utf8("NUMPY") + [1]),
            ("x.npy: unsupported .npy format version 4.0 (supported: 1.0, 2.0, 3.0)", [0x93] + utf8("NUMPY") + [4, 0, 0, 0, 0, 0]),
            ("x.npy: unsupported .npy format version 1.1 (supported: 1.0, 2.0, 3.0)", [0x93] + utf8("NUMPY") + [1, 1, 0, 0]),
            ("x.npy: header length 1000 exceeds the file size (30 bytes)", [0x93] + utf8("NUMPY") + [1, 0, 0xE8, 0x03] + [UInt8](repeating: 0x20, count: 20)),
            ("x.npy: header length 4294967295 exceeds the file size (40 bytes)", [0x93] + utf8("NUMPY") + [2, 0, 0xFF, 0xFF, 0xFF, 0xFF] + [UInt8](repeating: 0x20, count: 28)),
            ("x.npy: big-endian dtype '>f4' is not supported; save with arr.astype('<f4')", npyFile(header("'>f4'"), data: [])),
            (
                "x.npy: Fortran-ordered (column-major) arrays are not supported; save np.ascontiguousarray(arr) instead",
                npyFile(header(fortran: "True"), data: f8x6)
            ),
            ("x.npy: expected a 2-D array [rows, columns], found shape (2, 3, 4) (3-D)", npyFile(header(shape: "(2, 3, 4)"), data: [])),
            (
                "x.npy: expected a 2-D array [rows, columns], found shape (5,) (1-D); use arr.reshape(1, -1) for one row of features (arr.reshape(-1, 1) makes a single column)",
                npyFile(header(shape: "(5,)"), data: [])
            ),
            ("x.npy: expected a 2-D array [rows, columns], found shape () (0-D)", npyFile(header(shape: "()"), data: [])),
            (
                "x.npy: unsupported dtype '|O' (Python objects, a pickled array); expected '<f4' (float32) or '<f8' (float64)",
                npyFile(header("'|O'"), data: [])
            ),
            ("x.npy: unsupported dtype '<i8'; expected '<f4' (float32) or '<f8' (float64)", npyFile(header("'<i8'"), data: f8x6)),
            (
                "x.npy: dtype '=f4' does not state its byte order; expected '<f4' (float32) or '<f8' (float64)",
                npyFile(header("'=f4'"), data: [])
            ),
            (
                "x.npy: unsupported dtype [('a', '<f4'), ('b', '<f4')]: structured dtypes are not supported; expected '<f4' (float32) or '<f8' (float64)",
                npyFile(header("[('a', '<f4'), ('b', '<f4')]"), data: [])
            ),
            (
                "x.npy: data is truncated: shape (3, 2) of '<f8' needs 48 bytes after the header, the file has 40",
                npyFile(header(), data: Array(f8x6.prefix(40)))
            ),
            (
                "x.npy: file has 8 unexpected trailing bytes after the 48 bytes of data for shape (3, 2) of '<f8'",
                npyFile(header(), data: f8x6 + littleEndian([2.0]))
            ),
            (
                "x.npy: shape (9223372036854775807, 2) has too many elements: the byte count overflows Int",
                npyFile(header(shape: "(9223372036854775807, 2)"), data: [])
            ),
            (
                "x.npy: shape (4611686018427387904, 1) has too many elements: the byte count overflows Int",
                npyFile(header(shape: "(4611686018427387904, 1)"), data: [])
            ),
            (
                "x.npy: invalid shape (99999999999999999999, 1): dimensions must be non-negative integers that fit in Int",
                npyFile(header(shape: "(99999999999999999999, 1)"), data: [])
            ),
            ("x.npy: array of shape (0, 3) is empty; expected at least one row and one column", npyFile(header(shape: "(0, 3)"), data: [])),
            (
                "x.npy: malformed header dictionary: expected ':' after key 'descr' at byte 10 of the header {'descr' '<f4'}",
                npyFile("{'descr' '<f4'}", data: [])
            ),
            (
                "x.npy: malformed header dictionary: unexpected end of header, expected ',' or '}' at byte 119 of the header {'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)",
                npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)", data: [])
            ),
            (
                "x.npy: header dictionary has no 'fortran_order' key: {'descr': '<f8', 'shape': (3, 2), }",
                npyFile("{'descr': '<f8', 'shape': (3, 2), }", data: f8x6)
            ),
            (
                "x.npy: header dictionary has unexpected key 'extra' (expected only 'descr', 'fortran_order', 'shape')",
                npyFile("{'descr': '<f8', 'extra': 1, 'fortran_order': False, 'shape': (3, 2), }", data: f8x6)
            ),
            (
                "x.npy: malformed header dictionary: 'shape' is [3, 2], expected a tuple of integers",
                npyFile(header(shape: "[3, 2]"), data: f8x6)
            ),
            (
                "x.npy: malformed header dictionary: 'fortran_order' is 0, expected True or False",
                npyFile(header(fortran: "0"), data: f8x6)
            ),
            (
                "x.npy: malformed header: expected a dictionary, found ('<f8', False, (3, 2))",
                npyFile("('<f8', False, (3, 2))", data: f8x6)
            ),
            (
                "x.npy: row 2, column 2: value is NaN; remove or impute it",
                npyFile(header("'<f4'", shape: "(2, 3)"), data: littleEndian([Float(1), 2, 3, 4, .nan, .infinity]))
            ),
            (
                "x.npy: row 3, column 1: value is -Inf; remove or impute it",
                npyFile(header(), data: littleEndian([1, 2, 3, 4, -Double.infinity, 6]))
            ),
        ]
        for (expected, bytes) in cases {
            expectFlowIOError(expected) { try NPYReader.parse(bytes: bytes, path: "x.npy") }
        }
    }

    @Test func float64ValuesBeyondFloat32RangeAreRefused() throws {
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }"
        expectFlowIOError("x.npy: row 3, column 2: value 1e+39 is outside the Float32 range (±3.4e38)") {
            try NPYReader.parse(bytes: npyFile(header, data: littleEndian([1, 2, 3, 4, 5, 1e39])), path: "x.npy")
        }
        let limit: Double = 0x1p128 - 0x1p103  // the smallest magnitude that rounds to Float's Inf
        expectFlowIOError("x.npy: row 1, column 1: value -3.4028235677973366e+38 is outside the Float32 range (±3.4e38)") {
            try NPYReader.parse(bytes: npyFile(header, data: littleEndian([-limit, 2, 3, 4, 5, 6])), path: "x.npy")
        }
        let largest = Double(Float.greatestFiniteMagnitude)
        let table = try NPYReader.parse(bytes: npyFile(header, data: littleEndian([limit.nextDown, -largest, 0, 1, 2, 3])), path: "x.npy")
        #expect(table.values.prefix(2) == [limit.nextDown, -largest])
    }

    @Test func badFilesOnDisk() throws {
        try withTemporaryDirectory { directory in
            expectFlowIOError("\(directory)/none.npy: cannot open file: No such file or directory") {
                try NPYReader.read(path: directory + "/none.npy")
            }
            let path = directory + "/trunc.npy"
            try writeFixture(Array(Self.numpyFloat64Fixture.dropLast(3)), to: path)
            expectFlowIOError("\(path): data is truncated: shape (2, 3) of '<f8' needs 48 bytes after the header, the file has 45") {
                try NPYReader.read(path: path)
            }
        }
    }
}
