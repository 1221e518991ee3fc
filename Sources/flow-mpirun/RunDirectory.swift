import FlowCore
import Foundation

/// The files of a training run in `--out DIR`:
/// `model.safetensors` (checkpoint: model, optimiser state, position), `best.safetensors` (the model with
/// the best validation NLL, with `--keep-best`), `config.json` (what to resume),
/// `metrics.csv` (one row per epoch), and the SVG plots.
struct RunDirectory {
    let path: String
    var model: String { file("model.safetensors") }
    var best: String { file("best.safetensors") }
    var config: String { file("config.json") }
    var metrics: String { file("metrics.csv") }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// `config.json`: the training configuration and the data spec, enough to resume.
    struct RunConfig: Codable, Equatable {
        var formatVersion = 1
        var training: TrainingConfiguration
        var data: DataSpec
        enum CodingKeys: String, CodingKey { case formatVersion = "format_version", training, data }
    }

    /// `mkdir -p`: creates `path` and its missing parents.
    ///
    /// - Throws: ``FlowIOError`` naming `path`, the component that could not be created and the C library's
    ///   reason, e.g. `cannot create the output directory (/dev/null/run): Not a directory`.
    static func makeDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            current += (current.isEmpty || current.hasSuffix("/") ? "" : "/") + part
            if mkdir(current, 0o777) != 0 {
                let code = errno
                var isDirectory: ObjCBool = false
                if code == EEXIST, FileManager.default.fileExists(atPath: current, isDirectory: &isDirectory), isDirectory.boolValue { continue }
                throw FlowIOError(path: path, message: "cannot create the output directory (\(current)): \(String(cString: strerror(code)))")
            }
        }
    }

    /// Creates the directory (and parents), takes its ``Lock`` before anything in it is touched (another run's
    /// temporary files included), and checks that a file can be written there and that the file system has
    /// room for `bytesNeeded`.
    /// - Parameter existing: the lock, when it was taken already (the directory existed).
    /// - Returns: the lock, to hold for the run's duration.
    /// - Throws: ``FlowIOError`` naming the directory.
    func prepare(bytesNeeded: Int, holding existing: Lock? = nil) throws -> Lock {
        try Self.makeDirectories(path)
        let lock = try existing ?? self.lock()
        let probe = file(".write-test-\(getpid())")
        guard FileManager.default.createFile(atPath: probe, contents: Data("ok".utf8)) else {
            throw FlowIOError(path: path, message: "the output directory is not writable")
        }
        try? FileManager.default.removeItem(atPath: probe)
        // Temporary files left by a process killed while writing (the complete files are intact).
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] where name.hasPrefix(".") && name.contains(".tmp-") {
            try? FileManager.default.removeItem(atPath: file(name))
        }
        var fs = statvfs()
        if statvfs(path, &fs) == 0 {
            let free = Int(fs.f_bavail) * Int(fs.f_frsize)
            if free < bytesNeeded {
                throw FlowIOError(path: path, message: "only \(free) bytes free; a checkpoint needs about \(bytesNeeded)")
            }
        }
        return lock
    }

    /// An exclusive lock on a run directory, held while the value lives (and released by the kernel when the
    /// process ends, however it ends).
    final class Lock {
        let descriptor: Int32
        init(descriptor: Int32) { self.descriptor = descriptor }
        deinit { close(descriptor) }
    }

    /// Takes the directory's lock (`flock` on the directory itself, non-blocking), so that two `train`
    /// processes never write the same run.
    /// - Throws: ``FlowIOError`` naming the directory when another process holds it or it cannot be opened.
    func lock() throws -> Lock {
        let fd = open(path, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else {
            throw FlowIOError(path: path, message: "cannot open the run directory: \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw FlowIOError(path: path, message: "is in use by another flow-mpirun train (it holds the directory's lock); wait for it to end or choose another --out")
        }
        return Lock(descriptor: fd)
    }

    /// `path` as an absolute, standardised path (relative paths are taken from the current directory), so that
    /// a run records where its data file is whatever directory it is resumed from.
    static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return (full as NSString).standardizingPath
    }

    /// The files a run writes (checkpoints, metrics and every plot), which `train --force` removes before it
    /// starts, so that none of the old run's is mistaken for the new one's (`--model DIR` reads best.safetensors).
    static let outputNames = ["model.safetensors", "best.safetensors", "metrics.csv", "config.json", "flow_panels.svg",
                              "loss.svg", "density.svg", "pairs.svg", "samples_grid.svg"]

    /// Removes the previous run's ``outputNames`` (call with the lock held).
    /// - Throws: ``FlowIOError`` naming a file that exists but cannot be removed.
    func removeOutputs() throws {
        for name in Self.outputNames where FileManager.default.fileExists(atPath: file(name)) {
            do { try FileManager.default.removeItem(atPath: file(name)) } catch {
                throw FlowIOError(path: file(name), message: "cannot remove the previous run's file (--force): \(error.localizedDescription)")
            }
        }
    }

    func writeConfig(_ c: RunConfig) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(Array(try encoder.encode(c)) + [10], to: config)
    }

    func readConfig() throws -> RunConfig {
        guard let data = FileManager.default.contents(atPath: config) else {
            throw FlowIOError(path: config, message: "cannot read the run's config.json (is \(path) a training run directory?)")
        }
        do {
            return try JSONDecoder().decode(RunConfig.self, from: data)
        } catch {
            throw FlowIOError(path: config, message: "not a valid run configuration: \(error)")
        }
    }
}

/// `metrics.csv`: epoch, train_nll, validation_nll (nats, data units), penalty (nats), seconds, samples_per_s.
struct MetricsLog {
    static let header = "epoch,train_nll,validation_nll,penalty,seconds,samples_per_s"
    var rows: [String] = []

    mutating func append(epoch: Int, train: Double, validation: Double?, penalty: Double, seconds: Double, samplesPerSecond: Double) {
        func f(_ x: Double) -> String { String(format: "%.6f", x) }
        rows.append("\(epoch),\(f(train)),\(validation.map(f) ?? ""),\(f(penalty)),\(String(format: "%.4f", seconds)),\(String(format: "%.1f", samplesPerSecond))")
    }

    func write(to path: String) throws {
        try AtomicFile.write(Array(([Self.header] + rows).joined(separator: "\n").utf8) + [10], to: path)
    }

    /// The rows of an existing file for epochs ≤ `upTo` (resuming).
    static func read(path: String, upTo epoch: Int) -> MetricsLog {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return MetricsLog() }
        var log = MetricsLog()
        for line in text.split(separator: "\n").dropFirst() {
            if let e = Int(line.split(separator: ",").first ?? ""), e <= epoch { log.rows.append(String(line)) }
        }
        return log
    }

    /// (epoch, train, validation) triples for plotting.
    var curves: (epochs: [Double], train: [Double], validation: [Double]) {
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
