import ArgumentParser
import FlowCore
import FlowDistributed

extension MaskScheme: ExpressibleByArgument {}
extension NonFinitePolicy: ExpressibleByArgument {}

/// `train --schedule`: the learning-rate schedule's name (the parser rejects others with exit status 64).
enum ScheduleName: String, CaseIterable, ExpressibleByArgument {
    case constant, cosine
}

/// `train --condition`: what a conditional flow conditions on.
enum ConditionName: String, CaseIterable, ExpressibleByArgument {
    case `class`
}

/// `evaluate --split`: which split of the run's own data.
enum SplitName: String, CaseIterable, ExpressibleByArgument {
    case train, validation, all, both
    /// The data set's official test set (fashion-mnist's 10,000 test images).
    case test
}

/// Where the data comes from: `--dataset NAME` (synthetic, generated from `--data-seed`; or bundled) or
/// `--data FILE`. `--samples`, `--noise` and `--data-seed` apply to synthetic sets only.
struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A named data set: \(DataSpec.datasetNames.joined(separator: ", ")).", valueName: "name"))
    var dataset: String?

    @Option(help: ArgumentHelp("A CSV (optional header), .npy or IDX (MNIST's format, .gz too) file of shape [rows, features].", valueName: "file"))
    var data: String?

    @Option(help: "Points to generate for a synthetic data set (default 3000).")
    var samples: Int?

    @Option(help: "Noise of a synthetic data set (default: the set's own, 0.05 for moons).")
    var noise: Double?

    @Option(name: .customLong("limit-rows"), help: ArgumentHelp("Only the first N rows of the data (quick trials, tests).", valueName: "N"))
    var limitRows: Int?

    @Option(name: .customLong("data-seed"), help: "Seed of a synthetic data set (train: default --seed; evaluate: default the run's data seed + 1, points it did not train on).")
    var dataSeed: UInt64?

    /// Whether any data flag was given.
    var given: Bool { dataset != nil || data != nil || samples != nil || noise != nil || dataSeed != nil || limitRows != nil }

    /// The spec these flags describe; `defaultSeed` is used when `--data-seed` is absent.
    /// - Throws: `ValidationError` for both `--dataset` and `--data`, or for `--samples`, `--noise` or
    ///   `--data-seed` with a file or a bundled data set (they only shape generated points).
    func spec(defaultSeed: UInt64, fallback: DataSpec? = nil) throws -> DataSpec {
        if dataset != nil && data != nil {
            throw ValidationError("give either --dataset or --data, not both")
        }
        var s = fallback ?? DataSpec(dataset: "moons", samples: 3000, seed: defaultSeed)
        if let data { s.file = data; s.dataset = nil }
        if let dataset { s.dataset = dataset; s.file = nil }
        // These shape generated points only; a file or a bundled set would silently ignore them.
        let given = [("--samples", samples != nil), ("--noise", noise != nil), ("--data-seed", dataSeed != nil)]
        if let flag = given.first(where: { $0.1 })?.0 {
            if s.file != nil { throw ValidationError("\(flag) applies to synthetic data sets (--dataset), not to --data FILE") }
            if let bundled = s.bundled {
                throw ValidationError("\(flag) applies to synthetic data sets, not to the bundled data set \(bundled.rawValue)")
            }
        }
        if let samples { s.samples = samples }
        if let noise { s.noise = noise }
        if let limitRows {
            guard limitRows >= 1 else { throw ValidationError("invalid --limit-rows \(limitRows): need at least 1 row") }
            s.limitRows = limitRows
        }
        s.seed = dataSeed ?? (fallback?.seed ?? defaultSeed)
        return s
    }
}

/// The model-file argument shared by sample, evaluate, encode, decode and inspect.
struct ModelOption: ParsableArguments {
    @Option(help: ArgumentHelp("A checkpoint, or a run directory: its best.safetensors (best validation NLL) when present, else its model.safetensors (last epoch; first, for a run with --no-keep-best).", valueName: "file"))
    var model: String

    /// The checkpoint path: the file itself, or DIR/best.safetensors, or DIR/model.safetensors.
    /// - Throws: `FlowIOError` naming the directory when it holds neither checkpoint (it is not a run
    ///   directory, or its run has not written a checkpoint yet), rather than "DIR/model.safetensors: cannot
    ///   open file", which names a file the user never gave.
    var path: String {
        get throws {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory), isDirectory.boolValue else {
                return model
            }
            // A run that no longer keeps its best model (resumed with --no-keep-best, as its config.json records) may
            // hold a best.safetensors from before: its last model is the one it stands for.
            let keepsBest = (try? RunDirectory(path: model).readConfig())?.runOptions.keepBest ?? true
            for name in keepsBest ? ["best.safetensors", "model.safetensors"] : ["model.safetensors", "best.safetensors"] {
                let file = (model as NSString).appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: file) { return file }
            }
            throw FlowIOError(path: model, message: Self.noCheckpointMessage(model))
        }
    }

    /// What `--model DIR` says for a directory without a checkpoint.
    static func noCheckpointMessage(_ directory: String) -> String {
        "holds no best.safetensors or model.safetensors, so it is not a run directory: train into it first "
            + "(flow-mpirun train --out \(directory)) or give a checkpoint file"
    }
}

/// `--threads`.
struct ThreadOption: ParsableArguments {
    @Option(help: "Worker threads per rank, at most 256 (default: the cores this process may use, shared among the ranks on this host).")
    var threads: Int?

    /// The cores in this process's affinity mask; when that mask is the whole machine (`mpirun --bind-to none`)
    /// and several ranks run on this host (Open MPI's `OMPI_COMM_WORLD_LOCAL_SIZE`), an equal share of them.
    static var defaultThreads: Int {
        let cores = WorkerPool.availableCores
        let online = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        if let local = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init), local > 1, cores == online {
            return min(WorkerPool.maximumCount, max(1, cores / local))
        }
        return min(WorkerPool.maximumCount, cores)
    }

    func resolved() throws -> Int {
        let t = threads ?? Self.defaultThreads
        try Self.check(t)
        return t
    }

    /// Refuses a thread count below 1 or above ``WorkerPool/maximumCount``.
    /// - Throws: `ValidationError` naming `--threads`.
    static func check(_ t: Int) throws {
        if t < 1 { throw ValidationError("invalid --threads \(t): need at least 1") }
        if t > WorkerPool.maximumCount {
            throw ValidationError("invalid --threads \(t): at most \(WorkerPool.maximumCount) worker threads per rank (libdispatch's "
                + "thread limit on Linux); on a machine with more cores, run several ranks per host (mpirun -np N --map-by socket)")
        }
    }
}

import Foundation

/// `--overlap auto|on|off`: whether the gradient allreduce overlaps the backward pass.
enum OverlapSetting: String, ExpressibleByArgument, CaseIterable {
    /// On when the ranks span several hosts, off when they share one (the trainer's default).
    case auto
    /// Buckets allreduced with MPI_Iallreduce as each coupling's backward pass finishes.
    case on
    /// One blocking allreduce after the backward pass.
    case off

    /// The trainer's setting for a job on `hosts` hosts.
    func resolved(hosts: Int) -> Bool {
        switch self {
        case .auto: return hosts > 1
        case .on: return true
        case .off: return false
        }
    }
}
