import FlowCore
import Foundation

/// The files of a training run in `--out DIR`:
/// `model.safetensors` (checkpoint: model, optimiser state, position), `best.safetensors` (the model with
/// the best validation NLL, with `--keep-best`), `config.json` (what to resume),
/// `metrics.csv` (one row per epoch), and the SVG plots.
public struct RunDirectory: Sendable {
    /// The directory.
    public let path: String
    /// The run in `path`.
    public init(path: String) { self.path = path }
    /// Its paths: the checkpoint, the best model, the configuration and the metrics.
    public var model: String { file("model.safetensors") }
    public var best: String { file("best.safetensors") }
    public var config: String { file("config.json") }
    public var metrics: String { file("metrics.csv") }
    /// The path of `name` in the directory.
    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// `config.json`: the training configuration and the data spec, enough to resume.
    public struct RunConfig: Codable, Equatable, Sendable {
        /// The file format's version (1).
        public var formatVersion = 1
        /// The training configuration (the model's included).
        public var training: TrainingConfiguration
        /// Where the data come from.
        public var data: DataSpec
        /// How the run writes its outputs and validates (flags that may change on resume; a resumed run keeps the
        /// stored ones unless given again). `nil` in a config.json written before they were recorded: the defaults.
        public var options: RunOptions?
        /// ``options``, or the defaults when config.json has none.
        public var runOptions: RunOptions { options ?? RunOptions() }
        /// A configuration of `training` on `data`.
        public init(training: TrainingConfiguration, data: DataSpec, options: RunOptions? = nil) {
            self.training = training
            self.data = data
            self.options = options
        }
        enum CodingKeys: String, CodingKey { case formatVersion = "format_version", training, data, options }
    }

    /// A run's own settings beyond its training configuration: they change neither the steps nor the model's bytes,
    /// may differ on resume (`train --resume DIR --checkpoint-every 5`), and persist in config.json, so that a resumed
    /// run goes on as it was started unless told otherwise.
    public struct RunOptions: Codable, Equatable, Sendable {
        /// `--checkpoint-every`: epochs between checkpoints (always one at the end).
        public var checkpointEvery = 10
        /// `--validate-every`: epochs between validations (always after the last).
        public var validateEvery = 1
        /// `--keep-best`: write the model with the best validation NLL to best.safetensors.
        public var keepBest = true
        /// `--plots` / `--no-plots`: write the SVG plots at the end.
        public var plots = true

        /// The defaults (10, 1, true, true).
        public init() {}

        /// Refuses intervals below 1 (a hand-edited config.json), naming `file` and the flag that replaces the value.
        /// - Throws: ``FlowIOError`` naming `file`.
        public func check(file: String) throws {
            for (key, flag, value) in [("checkpoint_every", "--checkpoint-every", checkpointEvery), ("validate_every", "--validate-every", validateEvery)]
            where value < 1 {
                throw FlowIOError(path: file, message: "options.\(key) is \(value): need at least 1 (give \(flag) N to replace it)")
            }
        }

        /// These options with each given flag's value instead.
        public func with(checkpointEvery: Int?, validateEvery: Int?, keepBest: Bool?, plots: Bool?) -> RunOptions {
            var o = self
            if let checkpointEvery { o.checkpointEvery = checkpointEvery }
            if let validateEvery { o.validateEvery = validateEvery }
            if let keepBest { o.keepBest = keepBest }
            if let plots { o.plots = plots }
            return o
        }

        enum CodingKeys: String, CodingKey {
            case checkpointEvery = "checkpoint_every", validateEvery = "validate_every", keepBest = "keep_best", plots
        }

        /// Decodes each field when present, its default otherwise.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? 10
            validateEvery = try c.decodeIfPresent(Int.self, forKey: .validateEvery) ?? 1
            keepBest = try c.decodeIfPresent(Bool.self, forKey: .keepBest) ?? true
            plots = try c.decodeIfPresent(Bool.self, forKey: .plots) ?? true
        }
    }

    /// `mkdir -p`: creates `path` and its missing parents.
    ///
    /// - Throws: ``FlowIOError`` naming `path`, the component that could not be created and the C library's
    ///   reason, e.g. `cannot create the output directory (/dev/null/run): Not a directory`.
    public static func makeDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            current += (current.isEmpty || current.hasSuffix("/") ? "" : "/") + part
            if mkdir(current, 0o777) != 0 {
                let code = errno
                var isDirectory: ObjCBool = false
                if code == EEXIST, FileManager.default.fileExists(atPath: current, isDirectory: &isDirectory), isDirectory.boolValue { continue }
                let reason = code == EEXIST ? "a file of that name exists, not a directory" : String(cString: strerror(code))
                throw FlowIOError(path: path, message: "cannot create the output directory (\(current)): \(reason)")
            }
        }
    }

    /// Creates the directory (and parents), takes its ``Lock`` before anything in it is touched (another run's
    /// temporary files included), and checks that a file can be written there and that the file system has
    /// room for `bytesNeeded`.
    /// - Parameters:
    ///   - bytesNeeded: bytes the run's outputs need beyond what the directory holds.
    ///   - plots: whether they include the plots (for the message).
    ///   - existing: the lock, when it was taken already (the directory existed).
    /// - Returns: the lock, to hold for the run's duration.
    /// - Throws: ``FlowIOError`` naming the directory.
    public func prepare(bytesNeeded: Int, plots: Bool = false, holding existing: Lock? = nil) throws -> Lock {
        var isDirectory: ObjCBool = false
        let created = !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        try Self.makeDirectories(path)
        // A run refused here leaves no empty directory it created (its parents, if created too, stay).
        var refused = true
        defer { if refused && created { rmdir(path) } }
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
                throw FlowIOError(path: path, message: "has \(free) bytes free; this run's outputs need about \(bytesNeeded) more (a new checkpoint is written beside the old one before it replaces it, the best model beside them\(plots ? ", and the plots" : "")); free space or choose another --out")
            }
        }
        refused = false
        return lock
    }

    /// An exclusive lock on a run directory, held while the value lives (and released by the kernel when the
    /// process ends, however it ends).
    public final class Lock: @unchecked Sendable {
        let descriptor: Int32
        init(descriptor: Int32) { self.descriptor = descriptor }
        deinit { close(descriptor) }
    }

    /// Takes the directory's lock (`flock` on the directory itself, non-blocking), so that two `train`
    /// processes never write the same run.
    /// - Throws: ``FlowIOError`` naming the directory when another process holds it or it cannot be opened.
    public func lock() throws -> Lock {
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
    public static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return (full as NSString).standardizingPath
    }

    /// The files a run writes (checkpoints, metrics and every plot), which `train --force` removes before it
    /// starts, so that none of the old run's is mistaken for the new one's (`--model DIR` reads best.safetensors).
    public static let outputNames = ["model.safetensors", "best.safetensors", "metrics.csv", "config.json", "flow_panels.svg",
                              "loss.svg", "density.svg", "pairs.svg", "samples_grid.svg"]

    /// Removes the previous run's ``outputNames`` (call with the lock held).
    /// - Throws: ``FlowIOError`` naming a file that exists but cannot be removed.
    public func removeOutputs() throws {
        for name in Self.outputNames where FileManager.default.fileExists(atPath: file(name)) {
            do { try FileManager.default.removeItem(atPath: file(name)) } catch {
                throw FlowIOError(path: file(name), message: "cannot remove the previous run's file (--force): \(error.localizedDescription)")
            }
        }
    }

    /// Writes `config.json` atomically.
    /// - Throws: ``FlowIOError`` naming the file.
    public func writeConfig(_ c: RunConfig) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(Array(try encoder.encode(c)) + [10], to: config)
    }

    /// Reads `config.json`.
    /// - Throws: ``FlowIOError`` naming the file when it is missing or not a run configuration, and then the key and
    ///   value at fault (`options.checkpoint_every: expected a whole number, found 2.5`), a format version other
    ///   than 1, or a value train's flags would refuse (`invalid --batch-size 0: …`).
    public func readConfig() throws -> RunConfig {
        guard let data = FileManager.default.contents(atPath: config) else {
            throw FlowIOError(path: config, message: "cannot read the run's config.json (is \(path) a training run directory?)")
        }
        let c: RunConfig
        do {
            c = try JSONFile.decode(RunConfig.self, from: data, path: config)
        } catch var error as FlowIOError {
            error.message = "not a valid run configuration: " + error.message
            throw error
        }
        guard c.formatVersion == 1 else {
            throw FlowIOError(path: config, message: "format_version \(c.formatVersion) is not supported (this build reads version 1)")
        }
        // A hand-edited value is the file's, not a flag's: name the file (the message names the flag that sets it).
        do { try c.training.validate() } catch {
            throw FlowIOError(path: config, message: "not a valid run configuration: \(error)")
        }
        return c
    }
}
