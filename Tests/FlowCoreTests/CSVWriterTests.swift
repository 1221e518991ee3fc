import CFlowSupport
import Foundation
import Testing

@testable import FlowCore

@Suite struct CSVWriterTests {
    @Test func writesExactText() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/out.csv"
            try CSVWriter.write([Float(1), 2.5, -0.125, 1e-5, 0.1, -3], rows: 3, columns: 2, header: ["a", "b"], to: path)
            #expect(String(decoding: try readFixture(path), as: UTF8.self) == "a,b\n1.0,2.5\n-0.125,1e-05\n0.1,-3.0\n")
            try CSVWriter.write([Double(0.1), 1e300], rows: 1, columns: 2, to: path)
            #expect(String(decoding: try readFixture(path), as: UTF8.self) == "0.1,1e+300\n")
        }
    }

    @Test func floatRoundTripIsBitExact() throws {
        var generator = SystemRandomNumberGenerator()
        var values: [Float] = [
            0, -0.0, 1, -1, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude,
            -.greatestFiniteMagnitude, 0.1, 1.0 / 3, 16_777_216, 3.4028235e38, 1.1754944e-38,
        ]
        while values.count < 30_000 {
            let value = Float(bitPattern: generator.next())
            if value.isFinite { values.append(value) }
        }
        try withTemporaryDirectory { directory in
            let path = directory + "/floats.csv"
            try CSVWriter.write(values, rows: values.count / 3, columns: 3, header: ["x", "y", "z"], to: path)
            let table = try CSVReader.read(path: path)
            #expect(table.rows == values.count / 3)
            #expect(table.header == ["x", "y", "z"])
            let back = table.values.map { Float($0) }
            #expect(back.map(\.bitPattern) == values.map(\.bitPattern))
        }
    }

    @Test func floatWhoseShortestTextDoubleRoundsIsWrittenWithMoreDigits() throws {
        // "-7.038531e-26" is the shortest text for this Float, but Float(Double("-7.038531e-26")) is its neighbour.
        let tricky = Float(bitPattern: 0x95AE_43FD)
        #expect(tricky.description == "-7.038531e-26")
        #expect(Float(Double(tricky.description)!) != tricky)
        try withTemporaryDirectory { directory in
            let path = directory + "/tricky.csv"
            try CSVWriter.write([tricky, 0.1], rows: 1, columns: 2, to: path)
            #expect(String(decoding: try readFixture(path), as: UTF8.self) == "-7.038530691851209e-26,0.1\n")
            let table = try CSVReader.read(path: path)
            #expect(table.values.map { Float($0).bitPattern } == [0x95AE_43FD, Float(0.1).bitPattern])
        }
    }

    @Test func doubleRoundTripIsBitExact() throws {
        var generator = SystemRandomNumberGenerator()
        // CSVReader takes values within Float32's range (the model computes in Float32).
        var values: [Double] = [0, -0.0, .leastNonzeroMagnitude, Double(Float.greatestFiniteMagnitude), .leastNormalMagnitude, 0.1]
        while values.count < 20_000 {
            let value = Double(bitPattern: generator.next())
            if TabularData.isInFloat32Range(value) { values.append(value) }
        }
        try withTemporaryDirectory { directory in
            let path = directory + "/doubles.csv"
            try CSVWriter.write(values, rows: values.count / 2, columns: 2, to: path)
            let table = try CSVReader.read(path: path)
            #expect(table.header == nil)
            #expect(table.values.map(\.bitPattern) == values.map(\.bitPattern))
        }
    }

    @Test func rejectsBadArguments() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/bad.csv"
            expectFlowIOError("\(path): values has 3 elements but shape [2, 2] needs 4") {
                try CSVWriter.write([Float(1), 2, 3], rows: 2, columns: 2, to: path)
            }
            expectFlowIOError("\(path): invalid table shape [1, 0]; need rows >= 0 and columns >= 1") {
                try CSVWriter.write([Float](), rows: 1, columns: 0, to: path)
            }
            expectFlowIOError("\(path): header [\"1\", \"2.5\"] would be read back as a data line: at least one name must be a non-empty non-number") {
                try CSVWriter.write([Float(1), 2], rows: 1, columns: 2, header: ["1", "2.5"], to: path)
            }
            expectFlowIOError("\(path): header name 2 \"b,c\" contains U+2C, which CSV output cannot hold") {
                try CSVWriter.write([Float(1), 2], rows: 1, columns: 2, header: ["a", "b,c"], to: path)
            }
            expectFlowIOError("\(path): header has 1 names but the table has 2 columns") {
                try CSVWriter.write([Float(1), 2], rows: 1, columns: 2, header: ["a"], to: path)
            }
            #expect(!FileManager.default.fileExists(atPath: path))
        }
    }
}

@Suite struct AtomicFileTests {
    @Test func writesAndReplacesWithoutLeavingTemporaryFiles() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/model.safetensors"
            try AtomicFile.write([1, 2, 3], to: path)
            #expect(try readFixture(path) == [1, 2, 3])
            try AtomicFile.write([9], to: path)
            #expect(try readFixture(path) == [9])
            try AtomicFile.write([], to: path)
            #expect(try readFixture(path) == [])
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.safetensors"])
        }
    }

    @Test func relativePathWritesInTheCurrentDirectory() throws {
        try withTemporaryDirectory { directory in
            let previous = FileManager.default.currentDirectoryPath
            #expect(FileManager.default.changeCurrentDirectoryPath(directory))
            defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
            try AtomicFile.write([7, 7], to: "relative.bin")
            #expect(try readFixture(directory + "/relative.bin") == [7, 7])
        }
    }

    @Test func missingDirectoryIsAnError() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/missing/x.npy"
            let error = captureFlowIOError { try AtomicFile.write([1], to: path) }
            let message = try #require(error?.message)
            #expect(error?.path == path)
            #expect(message == "cannot write: the directory \(directory)/missing does not exist")
        }
    }

    @Test func pathsThatDoNotNameAFile() throws {
        try withTemporaryDirectory { directory in
            expectFlowIOError("\(directory)/: the path does not name a file (it is empty or ends with '/')") {
                try AtomicFile.write([1], to: directory + "/")
            }
            expectFlowIOError(": the path does not name a file (it is empty or ends with '/')") { try AtomicFile.write([1], to: "") }
            expectFlowIOError("\(directory)/..: the path does not name a file") { try AtomicFile.write([1], to: directory + "/..") }
        }
    }

    @Test func renameFailureRemovesTheTemporaryFile() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/target"
            try FileManager.default.createDirectory(atPath: path + "/occupied", withIntermediateDirectories: true)
            let error = captureFlowIOError { try AtomicFile.write([1, 2], to: path) }
            let message = try #require(error?.message)
            #expect(message.hasPrefix("cannot rename \(directory)/.target.tmp-"))
            #expect(message.hasSuffix(" over the file: Is a directory"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["target"])
        }
    }

    @Test("a chunked prepare asks between chunks (never before the first, never after the last); abandoned, it leaves nothing on disk and the destination untouched; never abandoned, it writes every byte")
    func preparedFileCanBeAbandonedBetweenChunks() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/model.safetensors"
            try AtomicFile.write([9], to: path)
            let chunk = AtomicFile.chunkBytes
            // 2.5 chunks: bytes i % 251, so that a chunk written twice or skipped changes the file.
            let bytes = (0 ..< 5 * chunk / 2).map { UInt8($0 % 251) }
            var asked = 0
            let abandoned = try AtomicFile.prepare(bytes, for: path, abandoningWhen: {
                asked += 1
                // The first chunk is on disk under the temporary name when first asked.
                let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                let temporary = names.filter { $0.hasPrefix(".model.safetensors.tmp-") }
                #expect(temporary.count == 1)
                let size = temporary.first.flatMap { try? FileManager.default.attributesOfItem(atPath: directory + "/" + $0)[.size] as? Int }
                #expect(size == chunk)
                return true
            })
            #expect(abandoned == nil)
            #expect(asked == 1)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.safetensors"])
            #expect(try readFixture(path) == [9])

            asked = 0
            let prepared = try #require(try AtomicFile.prepare(bytes, for: path, abandoningWhen: { asked += 1; return false }))
            #expect(asked == 2)
            #expect(try readFixture(path) == [9])
            try prepared.commit()
            #expect(try readFixture(path) == bytes)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.safetensors"])

            // One chunk or less: never asked.
            asked = 0
            _ = try #require(try AtomicFile.prepare(Array(bytes.prefix(chunk)), for: path, abandoningWhen: { asked += 1; return true })).commit()
            #expect(asked == 0)
            #expect(try readFixture(path) == Array(bytes.prefix(chunk)))
        }
    }

    @Test("a temporary file is registered for removal at a second SIGINT's exit from its creation until its rename or removal: removing the registered files mid-write or before the commit removes it; a committed, abandoned or failed file is registered no longer")
    func temporaryFileIsRegisteredWhileWritten() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/model.safetensors"
            func names() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() }
            var removed: Int32 = -1
            let abandoned = try AtomicFile.prepare([UInt8](repeating: 3, count: 2 * AtomicFile.chunkBytes), for: path, abandoningWhen: {
                removed = flow_temporary_files_remove(directory + "/")  // as the signal handler does, for this directory
                return true
            })
            #expect(abandoned == nil)
            #expect(removed == 1)
            #expect(names() == [])
            #expect(flow_temporary_files_remove(directory + "/") == 0)
            try AtomicFile.write([1], to: path)
            #expect(flow_temporary_files_remove(directory + "/") == 0)
            let prepared = try AtomicFile.prepare([2], for: path)
            #expect(names().count == 2)
            #expect(flow_temporary_files_remove(directory + "/") == 1)
            #expect(names() == ["model.safetensors"])
            #expect(throws: FlowIOError.self) { try prepared.commit() }  // its temporary file is gone
            #expect(try readFixture(path) == [1])
            #expect(flow_temporary_files_remove(directory + "/") == 0)
        }
    }
}
