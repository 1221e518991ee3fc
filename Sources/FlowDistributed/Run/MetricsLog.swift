import FlowCore
import Foundation

/// `metrics.csv`: epoch, train_nll, validation_nll (nats, data units), penalty (nats), seconds, samples_per_s.
public struct MetricsLog: Sendable {
    /// The CSV header.
    public static let header = "epoch,train_nll,validation_nll,penalty,seconds,samples_per_s"
    /// The data rows, one per epoch.
    public var rows: [String] = []

    /// An empty log.
    public init() {}

    /// Appends epoch `epoch`'s row (NLLs and penalty in nats, seconds, samples/s).
    public mutating func append(epoch: Int, train: Double, validation: Double?, penalty: Double, seconds: Double, samplesPerSecond: Double) {
        func f(_ x: Double) -> String { String(format: "%.6f", x) }
        rows.append("\(epoch),\(f(train)),\(validation.map(f) ?? ""),\(f(penalty)),\(String(format: "%.4f", seconds)),\(String(format: "%.1f", samplesPerSecond))")
    }

    /// Writes the file atomically.
    /// - Throws: ``FlowIOError`` naming `path`.
    public func write(to path: String) throws {
        try AtomicFile.write(bytes, to: path)
    }

    /// The file's contents: the header and every row, one per line.
    public var bytes: [UInt8] { Array(([Self.header] + rows).joined(separator: "\n").utf8) + [10] }

    /// The rows of an existing file for epochs ≤ `upTo` (resuming).
    public static func read(path: String, upTo epoch: Int) -> MetricsLog {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return MetricsLog() }
        var log = MetricsLog()
        for line in text.split(separator: "\n").dropFirst() {
            if let e = Int(line.split(separator: ",").first ?? ""), e <= epoch { log.rows.append(String(line)) }
        }
        return log
    }

    /// (epoch, train, validation) triples for plotting.
    public var curves: (epochs: [Double], train: [Double], validation: [Double]) {
        var e: [Double] = [], t: [Double] = [], v: [Double] = []
        for row in rows {
            let f = row.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count >= 3, let ep = Double(f[0]) else { continue }
            e.append(ep)
            t.append(Double(f[1]) ?? .nan)
            v.append(Double(f[2]) ?? .nan)
        }
        return (e, t, v)
    }
}
