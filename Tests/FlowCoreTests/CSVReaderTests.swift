import Foundation
import Testing

@testable import FlowCore

@Suite struct CSVReaderTests {
    @Test func readsHeaderCRLFSpacesScientificNotationAndBlankLines() throws {
        let text = "\u{FEFF} x , \"y\"\r\n1, -2.5e-3\r\n\r\n  +3.25E2 ,.5\r\n4.,0\r\n\r\n\n"
        let table = try CSVReader.parse(text: text, path: "data.csv")
        #expect(table.header == ["x", "y"])
        #expect(table.rows == 3)
        #expect(table.columns == 2)
        #expect(table.values == [1, -2.5e-3, 325, 0.5, 4, 0])
    }

    @Test func readsWithoutHeaderOrTrailingNewline() throws {
        let table = try CSVReader.parse(text: "1,2,3\n4,5,6", path: "data.csv")
        #expect(table == TabularData(rows: 2, columns: 3, values: [1, 2, 3, 4, 5, 6], header: nil))
    }

    @Test func readsOneColumn() throws {
        let table = try CSVReader.parse(text: "value\n0.1\n-7\n", path: "data.csv")
        #expect(table == TabularData(rows: 2, columns: 1, values: [0.1, -7], header: ["value"]))
    }

    @Test func parsesDoublesExactly() throws {
        let table = try CSVReader.parse(text: "0.1,2.2250738585072014e-308,-3.4028234663852886e38,4.9e-324,-0.0\n", path: "d.csv")
        #expect(table.values[0] == 0.1)
        #expect(table.values[1] == Double.leastNormalMagnitude)
        #expect(table.values[2] == -Double(Float.greatestFiniteMagnitude))
        #expect(table.values[3] == Double.leastNonzeroMagnitude)
        #expect(table.values[4].sign == .minus && table.values[4] == 0)
    }

    @Test func firstLineIsAHeaderWhenAnyFieldIsText() throws {
        let table = try CSVReader.parse(text: "1,abc\n2,3\n", path: "data.csv")
        #expect(table.header == ["1", "abc"])
        #expect(table.values == [2, 3])
        // pandas' integer column names with a named one, and names with digits beside numeric ones.
        for header in ["0,1,label", "x1,x2,3", "0,1,y2", "PC1,PC2,4", "2021,2022,Q3", "\"x1\",2"] {
            let parsed = try CSVReader.parse(text: header + "\n2,3" + (header.split(separator: ",").count == 3 ? ",4" : "") + "\n", path: "data.csv")
            #expect(parsed.header?.count == header.split(separator: ",").count, "\(header)")
        }
    }

    @Test func aFirstDataRowWithATypoIsNotTakenForAHeader() {
        expectFlowIOError("data.csv:1: column 2: expected a number, found \"2.O\" (the line's other fields are numbers, so it is read as data, not as a header; a header names every column)") {
            _ = try CSVReader.parse(text: "1.5,2.O\n3,4\n", path: "data.csv")
        }
        expectFlowIOError("data.csv:2: column 2: expected a number, found \"-4x\" (the line's other fields are numbers, so it is read as data, not as a header; a header names every column)") {
            _ = try CSVReader.parse(text: "\n3,-4x\n3,4\n", path: "data.csv")
        }
    }

    @Test func readsFromAFileInSmallChunksAcrossLineBoundaries() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/big.csv"
            var text = "a,b,c\n"
            var expected: [Double] = []
            for row in 0..<100_000 {
                let values = [Double(row), Double(row) * 0.5, -Double(row) / 3]
                expected += values
                text += values.map(\.description).joined(separator: ",") + (row % 2 == 0 ? "\n" : "\r\n")
            }
            try writeFixture(utf8(text), to: path)
            let table = try CSVReader.read(path: path)
            #expect(table.rows == 100_000)
            #expect(table.header == ["a", "b", "c"])
            #expect(table.values == expected)
        }
    }

    @Test func raggedLine() {
        let error = expectFlowIOError("data.csv:3: line has 3 fields, expected 2 (from the header on line 1)") {
            try CSVReader.parse(text: "a,b\n1,2\n3,4,5\n", path: "data.csv")
        }
        #expect(error?.line == 3)
        #expect(error?.column == nil)
        expectFlowIOError("data.csv:4: line has 1 field, expected 2 (from line 2)") {
            try CSVReader.parse(text: "\n1,2\n3,4\n5\n", path: "data.csv")
        }
    }

    @Test func textInANumericColumn() {
        let error = expectFlowIOError("data.csv:7: column 3: expected a number, found \"abc\"") {
            try CSVReader.parse(text: "a,b,c\n1,2,3\n\n\n\n1,2,3\n4,5, abc \n", path: "data.csv")
        }
        #expect(error?.line == 7)
        #expect(error?.column == 3)
        expectFlowIOError("data.csv:2: column 1: expected a number, found \"0x10\"") {
            try CSVReader.parse(text: "1,2\n0x10,2\n", path: "data.csv")
        }
        expectFlowIOError("data.csv:1: column 2: empty field; expected a number") {
            try CSVReader.parse(text: "1,,2\n", path: "data.csv")
        }
    }

    @Test func nanAndInfinity() {
        expectFlowIOError("data.csv:4: column 2: value is NaN; remove or impute it") {
            try CSVReader.parse(text: "x,y\n1,2\n3,4\n5,NaN\n", path: "data.csv")
        }
        expectFlowIOError("data.csv:1: column 1: value is NaN; remove or impute it") {
            try CSVReader.parse(text: "nan,1\n", path: "data.csv")
        }
        expectFlowIOError("data.csv:2: column 1: value is -Inf; remove or impute it") {
            try CSVReader.parse(text: "1,2\n-inf,2\n", path: "data.csv")
        }
        expectFlowIOError("data.csv:2: column 2: value is +Inf; remove or impute it") {
            try CSVReader.parse(text: "1,2\n1,Infinity\n", path: "data.csv")
        }
        expectFlowIOError("data.csv:2: column 2: value 1e400 is too large for a 64-bit float (it would be Inf); remove or rescale it") {
            try CSVReader.parse(text: "1,2\n1,1e400\n", path: "data.csv")
        }
    }

    @Test func valuesBeyondFloat32RangeAreRefused() throws {
        expectFlowIOError("d.csv:3: column 2: value 1e+39 is outside the Float32 range (±3.4e38)") {
            try CSVReader.parse(text: "x,y\n1,2\n3,1e39\n", path: "d.csv")
        }
        expectFlowIOError("d.csv:1: column 1: value -1.7976931348623157e+308 is outside the Float32 range (±3.4e38)") {
            try CSVReader.parse(text: "-1.7976931348623157e308,1\n", path: "d.csv")
        }
        // 2¹²⁸ − 2¹⁰³ rounds to Float's Inf and is refused; the Double below it rounds to
        // Float.greatestFiniteMagnitude, and so does that Float's shortest text (what CSVWriter writes).
        expectFlowIOError("d.csv:2: column 1: value 3.4028235677973366e+38 is outside the Float32 range (±3.4e38)") {
            try CSVReader.parse(text: "1\n3.4028235677973366e38\n", path: "d.csv")
        }
        #expect(try CSVReader.parse(text: "3.4028235677973362e38,-3.4028235e+38\n", path: "d.csv").values.map { Float($0) }
                == [.greatestFiniteMagnitude, -.greatestFiniteMagnitude])
    }

    @Test func crOnlyLineEndingsAreRefused() {
        let message = "carriage return (\\r) not followed by a newline: CR-only line endings (classic Mac OS) are not supported; convert them to \\n, e.g. tr '\\r' '\\n' < in.csv > out.csv"
        expectFlowIOError("d.csv:1: \(message)") { try CSVReader.parse(text: "1,2\r3,4\r", path: "d.csv") }
        expectFlowIOError("d.csv:1: \(message)") { try CSVReader.parse(text: "x,y\r1,2\r3,4", path: "d.csv") }
        expectFlowIOError("d.csv:3: \(message)") { try CSVReader.parse(text: "1,2\r\n3,4\r\n5,6\r\r\n", path: "d.csv") }
        // A last line ending in \r without its \n (a \r\n file cut short) still loads.
        #expect(throws: Never.self) { try CSVReader.parse(text: "1,2\r\n3,4\r", path: "d.csv") }
    }

    @Test func emptyBlankAndHeaderOnlyFiles() {
        expectFlowIOError("data.csv: file is empty") { try CSVReader.parse(text: "", path: "data.csv") }
        expectFlowIOError("data.csv: file contains only blank lines (3 lines); expected numeric data") {
            try CSVReader.parse(text: "\n  \r\n\t", path: "data.csv")
        }
        expectFlowIOError("data.csv: file contains only blank lines (1 line); expected numeric data") {
            try CSVReader.parse(text: "\u{FEFF}  ", path: "data.csv")
        }
        expectFlowIOError("data.csv: file has a header (line 2) but no data rows") {
            try CSVReader.parse(text: "\na,b\n\n", path: "data.csv")
        }
    }

    @Test func overLongLine() throws {
        let message = "line is longer than 10 bytes (maxLineBytes); is this really a CSV file with one sample per line?"
        expectFlowIOError("data.csv:2: \(message)") {
            try CSVReader.parse(text: "1,2\n12345678,11\n3,4\n", path: "data.csv", maxLineBytes: 10)
        }
        // Exactly 10 bytes is fine, also with a \r\n terminator.
        #expect(throws: Never.self) { try CSVReader.parse(text: "1234567,89\r\n1,2\n", path: "data.csv", maxLineBytes: 10) }
        #expect(try CSVReader.parse(text: "1,2\n3,4", path: "data.csv", maxLineBytes: .max).rows == 2)
        expectFlowIOError("data.csv: maxLineBytes must be positive, got 0") {
            try CSVReader.parse(text: "1\n", path: "data.csv", maxLineBytes: 0)
        }
    }

    @Test func overLongLineWhileStreamingAFile() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/long.csv"
            try writeFixture(utf8("1,2\n3,4\n" + String(repeating: "5", count: 100) + "\n"), to: path)
            expectFlowIOError("\(path):3: line is longer than 50 bytes (maxLineBytes); is this really a CSV file with one sample per line?") {
                try CSVReader.read(path: path, maxLineBytes: 50)
            }
        }
    }

    @Test func threeMegabyteLineFailsWithTheDefaultLimit() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/oneline.csv"
            let line = [UInt8](repeating: 0x31, count: 3 << 20)
            try writeFixture(line, to: path)
            expectFlowIOError("\(path):1: line is longer than 1048576 bytes (maxLineBytes); is this really a CSV file with one sample per line?") {
                try CSVReader.read(path: path)
            }
        }
    }

    @Test func binaryJunk() throws {
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D]
        expectFlowIOError("image.png:1: byte 0x89 at byte 1 of the line is not valid UTF-8; this is a binary file, not CSV text") {
            try CSVReader.parse(bytes: png, path: "image.png")
        }
        expectFlowIOError("data.csv:2: NUL byte (0x00) at byte 3 of the line; this is a binary file, not CSV text") {
            try CSVReader.parse(bytes: utf8("1,2\n3,") + [0, 0xFF, 0x2C] + utf8("\n"), path: "data.csv")
        }
        expectFlowIOError("data.csv:2: byte 0xC3 at byte 3 of the line is not valid UTF-8; this is a binary file, not CSV text") {
            try CSVReader.parse(bytes: utf8("1,2\n3,") + [0xC3, 0x28] + utf8("\n"), path: "data.csv")
        }
    }

    @Test func missingFileAndDirectory() throws {
        try withTemporaryDirectory { directory in
            expectFlowIOError("\(directory)/nope.csv: cannot open file: No such file or directory") {
                try CSVReader.read(path: directory + "/nope.csv")
            }
            expectFlowIOError("\(directory): cannot read file: it is a directory") {
                try CSVReader.read(path: directory)
            }
        }
    }

    @Test func parsesAMillionNumbers() throws {
        var text = ""
        text.reserveCapacity(12_000_000)
        for row in 0..<100_000 {
            for column in 0..<10 {
                if column > 0 { text += "," }
                text += String(Double(row * 10 + column) * 0.001 - 3.5)
            }
            text += "\n"
        }
        let table = try CSVReader.parse(text: text, path: "million.csv")
        #expect(table.rows == 100_000 && table.columns == 10)
        #expect(table.values[123_457] == Double(123_457) * 0.001 - 3.5)
    }
}
