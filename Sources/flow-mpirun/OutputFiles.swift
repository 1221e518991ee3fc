import ArgumentParser
import FlowCore
import FlowDistributed
import Foundation

/// Writes `[rows, columns]` values as CSV or `.npy`, chosen by the extension of `path`.
enum OutputFile {
    /// - Parameter allowPNG: the command also writes a .png grid for an image model (named in the message).
    static func check(_ path: String, flag: String = "--out", allowPNG: Bool = false) throws {
        let ext = (path as NSString).pathExtension.lowercased()
        guard ext == "csv" || ext == "npy" else {
            throw ValidationError("invalid \(flag) \(path): the file name must end in .csv or .npy\(allowPNG ? " (or .png for an image model)" : "")")
        }
    }

    /// - Parameter prefix: the CSV header's column prefix: `x` for data (`x0,x1,…`), `z` for latents (`z0,z1,…`).
    static func write(_ values: [Float], rows: Int, columns: Int, to path: String, prefix: String = "x") throws {
        if (path as NSString).pathExtension.lowercased() == "npy" {
            try NPYWriter.write(values, rows: rows, columns: columns, to: path)
        } else {
            try CSVWriter.write(values, rows: rows, columns: columns, header: (0..<columns).map { "\(prefix)\($0)" }, to: path)
        }
    }
}

/// The rows of a row-major `[rows, columns]` result that hold a NaN or ±∞.
struct NonFiniteRows {
    /// How many rows hold a non-finite value.
    let count: Int
    /// The first such row, 0-based.
    let first: Int

    /// nil when every value is finite.
    init?<T: BinaryFloatingPoint>(_ values: [T], columns: Int) {
        var count = 0, first = 0
        for r in 0..<(values.count / max(columns, 1)) where values[(r * columns)..<((r + 1) * columns)].contains(where: { !$0.isFinite }) {
            if count == 0 { first = r }
            count += 1
        }
        guard count > 0 else { return nil }
        self.count = count
        self.first = first
    }
}


extension NonFiniteRows {
    /// Where data row `row` (0-based) of `source` is, counted as its reader counts: `file.csv:LINE` for a CSV
    /// file (blank lines and the header included, as in the reader's errors and an editor), `file.npy: row N`
    /// for an `.npy` file, `source: row N` for generated or bundled data.
    static func location(of row: Int, in source: String, isFile: Bool) -> String {
        guard isFile, ["csv", "txt", "tsv", ""].contains((source as NSString).pathExtension.lowercased()),
              let bytes = FileManager.default.contents(atPath: source) else { return "\(source): row \(row + 1)" }
        var skip = (try? CSVReader.read(path: source))?.header != nil ? row + 1 : row
        var line = 0
        for text in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
            line += 1
            let blank = text.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || (line == 1 && [0xEF, 0xBB, 0xBF].contains($0)) }
            if blank { continue }
            if skip == 0 { return "\(source):\(line)" }
            skip -= 1
        }
        return "\(source): row \(row + 1)"
    }
}

/// A result that holds NaN or ±∞: the job ends with status 1 and nothing written (a plain message naming the
/// file or data, the row and the likely cause).
struct NonFiniteResult: Error, CustomStringConvertible {
    let description: String

    /// Ends the job with `error`'s message on every rank (they all computed the same gathered values, so they
    /// all get here together).
    static func refuse(_ error: NonFiniteResult, _ ctx: RunContext) -> Never {
        ctx.agree(error)
        fatalError("unreachable")
    }
}
