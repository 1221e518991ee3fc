import FlowCore
import Foundation

/// A training run that cannot start as asked, with the flag or the file at fault in its message.
public struct RunSetupError: Error, CustomStringConvertible, Sendable {
    /// The explanation, naming the flag or file.
    public var message: String
    public var description: String { message }
    /// An error with `message`.
    public init(_ message: String) { self.message = message }
}

/// What a `train` command asks for, in the library's terms: where the run lives, whether it starts anew or
/// continues, and how its configuration follows from the command's flags.
public struct RunRequest {
    /// `--resume`: a run directory, or a checkpoint file in one.
    public var resume: String?
    /// `--out`: the directory of a new run (default `runs/<data set>`).
    public var out: String?
    /// `--force`: replace a finished run in `out`.
    public var force: Bool
    /// Worker threads T on this rank.
    public var threads: Int
    /// `--epochs` when given: on resume the only setting, with the threads, that may extend a stored run.
    public var epochs: Int?
    /// The configuration of a new run (data and training) the flags describe.
    public var newRun: () throws -> RunDirectory.RunConfig
    /// The configuration the flags request on top of a stored run's; compared with it (epochs aside).
    public var requested: (_ stored: RunDirectory.RunConfig) throws -> RunDirectory.RunConfig
    /// How the trainer behaves beyond its configuration.
    public var options: TrainerOptions
    /// Told, as soon as it is known, what the user should know that does not stop the run.
    public var warn: (String) -> Void
    /// Bytes the run's plots take on disk when it writes them (counted in the free-space check; 0 by default).
    public var plotBytes = 0

    /// A request; see the properties.
    public init(resume: String?, out: String?, force: Bool, threads: Int, epochs: Int?,
                newRun: @escaping () throws -> RunDirectory.RunConfig,
                requested: @escaping (_ stored: RunDirectory.RunConfig) throws -> RunDirectory.RunConfig,
                options: TrainerOptions, warn: @escaping (String) -> Void = { _ in }) {
        self.resume = resume
        self.out = out
        self.force = force
        self.threads = threads
        self.epochs = epochs
        self.newRun = newRun
        self.requested = requested
        self.options = options
        self.warn = warn
    }
}

/// A resolved training run, ready to train: its directory (locked by rank 0), its configuration, the data and a
/// trainer at the run's position.
///
/// ``resolve(_:communicator:)`` does every check a run needs before its first step, in this order: the run
/// (new, its configuration from the flags; or resumed from its config.json and last checkpoint, which must be this
/// run's and agree with the flags), rank 0 locking the directory as soon as it exists, the data (loaded on every rank, refused when they differ from what the checkpoint was trained on), the
/// configuration (validated, the cosine schedule planned over ``TrainingConfiguration/stepsPerEpoch(rows:)``
/// steps per epoch), the discrete data's levels, the normaliser (fitted, or the checkpoint's), the agreement of
/// every rank on configuration and data, the memory, and the directory (created and locked if new, room, `--force`).
public struct TrainingRun {
    /// The run's directory.
    public var run: RunDirectory
    /// Its configuration (written to config.json by the caller).
    public var config: RunDirectory.RunConfig
    /// The trainer, restored to the checkpoint's position when resumed.
    public var trainer: DataParallelTrainer
    /// The training split's features x `[N, D]` in data units (for plots).
    public var rawTrain: Matrix<Double>
    /// Labels of the training rows (bundled data sets; class-conditional runs), for per-class views.
    public var trainLabels: [Int]?
    /// The class names of a class-conditional run.
    public var classNames: [String]?
    /// Whether the run continues from a checkpoint.
    public var resumed: Bool
    /// The data's fingerprint, recorded in every checkpoint and compared on resume.
    public var fingerprint: UInt64
    /// Rank 0's lock on the run directory, held as long as this value lives.
    public var lock: RunDirectory.Lock?

    /// Resolves `request` on every rank of `communicator` (collective: the ranks compare configuration and data).
    ///
    /// Two agreement points (``SetupAgreement``): each rank's own checks (rank 0 also locking the directory), then
    /// every rank's configuration and data compared with rank 0's; then the memory on each rank and the directory on
    /// rank 0. A rank that fails takes part in the next agreement with its error, so every rank leaves set-up
    /// together with every rank's message, whichever rank failed.
    /// - Throws: ``RunSetupError`` for a request that contradicts the stored run; ``FlowIOError`` naming the file (run
    ///   directory, checkpoint, data); ``FlowConfigurationError`` for invalid settings; errors of the request's
    ///   closures as they are. With several ranks, an error before or at an agreement point is thrown on every rank
    ///   as a ``SetupFailure`` holding every rank's message.
    public static func resolve(_ request: RunRequest, communicator: any Communicator) throws -> TrainingRun {
        let isRoot = communicator.rank == 0
        // 1. This rank's own checks; then every rank's configuration and data against rank 0's.
        var r = try checkAgreement(communicator, Result { try LocalRun.resolve(request, isRoot: isRoot) })
        // 2. The memory on each rank, the directory on rank 0.
        _ = try SetupAgreement.exchange(communicator, Result {
            // The run records its data file's absolute path, so that it can be resumed from any directory.
            if r.state == nil, let f = r.config.data.file { r.config.data.file = RunDirectory.absolute(f) }
            try checkMemory(r.config.training, threads: request.threads, rows: r.loaded.rows.rows)
            if isRoot {
                if r.state == nil, !request.force, FileManager.default.fileExists(atPath: r.run.model) {
                    throw FlowIOError(path: r.run.path, message: "already holds a trained model; use --resume \(r.run.path) to continue it, --force to overwrite it, or another --out")
                }
                // The run's outputs at their largest (a checkpoint beside the old one, the best model, metrics and
                // config, the plots), less what the files they replace hold already (a resumed run's, or --force's).
                // (By their blocks, as the free space counts: what replacing them frees.)
                let writesPlots = r.config.runOptions.plots
                let needed = try outputBytesNeeded(r.config.training, plotBytes: writesPlots ? request.plotBytes : nil, in: r.run)
                r.lock = try r.run.prepare(bytesNeeded: needed, plots: writesPlots, holding: r.lock)
            }
            return []
        })
        let raw = r.loaded.rows, split = r.split, state = r.state, config = r.config, run = r.run
        var trainerOptions = request.options
        trainerOptions.validationInterval = max(1, config.runOptions.validateEvery)  // --validate-every, or the run's
        // 3. The same on every rank (the configuration and data agree): no agreement needed.
        let trainer = try DataParallelTrainer(
            configuration: config.training, normalizer: r.normalizer, contextNormalizer: r.contextNormalizer, train: r.trainRaw,
            validation: split.validation.isEmpty ? nil : raw.gatherRows(split.validation),
            communicator: communicator, threads: request.threads, state: state, options: trainerOptions)
        // Nothing left to do: more steps done than asked for, or exactly as many with the last epoch finished
        // (no partial epoch's sums pending); the files are left untouched.
        if state != nil, trainer.step > trainer.totalSteps || trainer.step == trainer.totalSteps && trainer.epochProgress.isEmpty {
            throw RunSetupError("--epochs \(config.training.epochs): \(run.path) has already trained \(trainer.epoch) epochs; give --epochs above \(trainer.epoch) to continue it")
        }
        // Last, after the trainer's collectives: an error here is rank 0's alone, and the caller's agreement takes it.
        if isRoot, state == nil, request.force { try run.removeOutputs() }
        return TrainingRun(run: run, config: config, trainer: trainer, rawTrain: r.trainX,
                           trainLabels: r.loaded.labels.map { l in split.train.map { l[$0] } },
                           classNames: r.loaded.classNames,
                           resumed: state != nil, fingerprint: raw.fingerprint, lock: r.lock)
    }

    /// A fingerprint as 16 hex digits.
    public static func hex(_ v: UInt64) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The checkpoint must be this run's: its own record of the training configuration and of the data must agree
    /// with config.json (a checkpoint copied from another run of the same shape would not).
    /// - Throws: ``FlowIOError`` naming the checkpoint and the differences.
    static func checkCheckpointBelongs(_ checkpoint: Checkpoint, to stored: RunDirectory.RunConfig, in run: RunDirectory) throws {
        if let cp = checkpoint.training {
            var written = cp
            written.epochs = stored.training.epochs  // a resumed run may have extended them
            if case .cosine(let w, _, let m) = written.schedule, case .cosine(_, let total, _) = stored.training.schedule {
                written.schedule = .cosine(warmupSteps: w, totalSteps: total, minimum: m)
            }
            let d = stored.training.differences(from: written)
            if !d.isEmpty {
                throw FlowIOError(path: run.model, message: "was written by another run than \(run.config) describes (config.json vs the checkpoint: \(d.joined(separator: "; "))); copy a run directory whole, or start a new run")
            }
        }
        if let text = checkpoint.metadata["data"], let written = try? JSONDecoder().decode(DataSpec.self, from: Data(text.utf8)),
           written != stored.data {
            throw FlowIOError(path: run.model, message: "was trained on \(written.summary), but \(run.config) says \(stored.data.summary); copy a run directory whole, or start a new run")
        }
    }

    /// Refuses a model whose training buffers would not fit in this machine's memory: parameters, Adam's two
    /// moments, the average, the reduced gradient and one gradient per worker (Float), plus each worker's
    /// activations for its share of the batch, and the data (Double).
    /// - Throws: ``FlowConfigurationError`` naming the sizes.
    public static func checkMemory(_ t: TrainingConfiguration, threads: Int, rows: Int) throws {
        let available = Double(MachineMemory.physicalBytes)
        let m = t.model
        let network = try FlowNetwork<Float>(m)
        let parameters = Double(network.layout.storageCount)
        // Every kept activation and scratch buffer of the batch's rows (spread over the workers), and an evaluation chunk per worker.
        // A batch never holds more rows than the training split.
        let batch = min(t.batchSize, max(1, DataSplit.trainingRows(rows, validationFraction: t.validationFraction)))
        let activations = m.image != nil
            ? Double(batch + threads * network.chunkRows(limit: 256)) * Double(network.workspaceLayout.elementsPerRow) / 2
            : Double(batch) * Double(m.hidden) * Double(m.hiddenLayers + 2) * 2 * Double(m.couplings)
        let parameterBytes = 4 * parameters * Double(5 + threads), activationBytes = 4 * activations * 2
        let bytes = parameterBytes + activationBytes + 8 * Double(rows) * Double(m.inputWidth)
        if bytes > available {
            // Name the flag whose term dominates: the batch's activations, or the model's parameters (and their copies).
            let needs = String(format: "training needs about %.1f GB of memory; this machine has %.1f GB", bytes / 1e9, available / 1e9)
            let model = m.image != nil ? "this image flow (\(Int(parameters)) parameters)"
                : "--couplings \(m.couplings), --hidden-layers \(m.hiddenLayers), --hidden \(m.hidden)"
            if activationBytes > parameterBytes {
                throw FlowConfigurationError(field: "batch-size", value: "\(t.batchSize)", message: "with \(model) and \(threads) threads \(needs)")
            }
            throw FlowConfigurationError(field: m.image != nil ? "threads" : "hidden", value: "\(m.image != nil ? threads : m.hidden)",
                                         message: "with \(model), --batch-size \(t.batchSize) and \(threads) threads \(needs)")
        }
    }

    /// The first agreement point: every rank's own outcome (``LocalRun``, or its error) gathered, then every rank's
    /// configuration and data fingerprint compared with rank 0's (collective).
    /// - Returns: this rank's run, when every rank resolved its own and all agree.
    /// - Throws: ``SetupFailure`` on every rank when any rank failed or differs from rank 0 (naming it).
    static func checkAgreement(_ communicator: any Communicator, _ local: Result<LocalRun, any Error>) throws -> LocalRun {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let payload = local.flatMap { l in
            Result { try Array(encoder.encode(l.config)) + withUnsafeBytes(of: l.loaded.rows.fingerprint.littleEndian, Array.init) }
        }
        let all = try SetupAgreement.exchange(communicator, payload)
        let mine = try local.get()  // every rank succeeded
        guard all.count > 1 else { return mine }
        func decode(_ bytes: [UInt8]) throws -> (RunDirectory.RunConfig, UInt64) {
            let config = try JSONDecoder().decode(RunDirectory.RunConfig.self, from: Data(bytes.dropLast(8)))
            let print = bytes.suffix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            return (config, print)
        }
        // The data file's path may be spelt differently on each rank (./a.csv, a.csv, /abs/a.csv; each host's own
        // mount): the fingerprint compares the data themselves.
        func comparable(_ c: RunDirectory.RunConfig) -> RunDirectory.RunConfig {
            var c = c
            c.data.file = c.data.file.map { _ in "" }
            return c
        }
        let (rootConfig, rootPrint) = try decode(all[0])
        var messages = [String](repeating: "", count: all.count)
        for r in 1 ..< all.count {
            let (config, print) = try decode(all[r])
            if comparable(rootConfig) != comparable(config) {
                var diff = rootConfig.training.differences(from: config.training)
                if comparable(rootConfig).data != comparable(config).data { diff.append("data \(rootConfig.data.summary) vs \(config.data.summary)") }
                messages[r] = "this rank's configuration differs from rank 0's: \(diff.joined(separator: "; ")) (rank 0 vs rank \(r))"
            } else if rootPrint != print {
                messages[r] = "this rank's data differ from rank 0's (fingerprint \(String(print, radix: 16)) vs \(String(rootPrint, radix: 16)) for \(config.data.summary)); every host must read the same file"
            }
        }
        if messages.contains(where: { !$0.isEmpty }) { throw SetupFailure(messages: messages) }
        return mine
    }

    /// Free bytes a run's outputs need in `run`: ``checkpointBytes(_:)`` and the plots (`plotBytes`; `nil`: the run
    /// writes none), less the blocks of the run outputs already there that they replace (a resumed run's, or
    /// `--force`'s; plots only when the run writes plots); at least 1 MiB.
    static func outputBytesNeeded(_ t: TrainingConfiguration, plotBytes: Int?, in run: RunDirectory) throws -> Int {
        let replaced = RunDirectory.outputNames.filter { plotBytes != nil || !$0.hasSuffix(".svg") }
        let existing = replaced.reduce(0) { sum, name in
            var st = stat()
            return sum + (lstat(run.file(name), &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? Int(st.st_blocks) * 512 : 0)
        }
        return max(1 << 20, try checkpointBytes(t) + (plotBytes ?? 0) - existing)
    }

    /// Bytes a checkpoint needs on disk while it is replaced, by the file system's count: the new file beside the old
    /// one (parameters and Adam's two moments, 12 bytes per parameter, and the parameters' running average when the
    /// run keeps one, 4 more: 16 counted; plus the header), and the best
    /// model (4 bytes per parameter), plus 1 MiB for the metrics, config.json and the plots.
    static func checkpointBytes(_ t: TrainingConfiguration) throws -> Int {
        let parameters = try ParameterLayout(t.model).storageCount
        return 2 * 16 * parameters + 4 * parameters + (1 << 20)
    }
}

extension RunDirectory {
    /// The directory of a new run without `--out`: `runs/<data set>` (the bundled set's name, or the data file's
    /// name without its extension).
    public static func defaultPath(for data: DataSpec) -> String {
        "runs/\(data.dataset ?? ((data.file ?? "data") as NSString).deletingPathExtension.split(separator: "/").last.map(String.init) ?? "data")"
    }
}

extension TrainingConfiguration {
    /// Field-by-field differences from `other`, named by the flags that set them ("--lr 0.0001 vs 0.001"); "other
    /// settings" when they differ elsewhere.
    public func differences(from other: TrainingConfiguration) -> [String] {
        let a = self, b = other
        var d: [String] = []
        func cmp<T: Equatable>(_ name: String, _ x: T, _ y: T) { if x != y { d.append("\(name) \(x) vs \(y)") } }
        if a.model.image != nil || b.model.image != nil {
            // Image flows: their own flags (the MLP fields mirror them).
            let x = a.model.image, y = b.model.image
            cmp("--arch", x == nil ? "mlp" : "an image flow", y == nil ? "mlp" : "an image flow")
            if let x, let y {
                cmp("--channels", x.channels, y.channels)
                cmp("--res-blocks", x.resBlocks, y.resBlocks)
                cmp("--scales", x.levels, y.levels)
                cmp("--checkerboard-couplings", x.checkerboardCouplings, y.checkerboardCouplings)
                cmp("--channel-couplings", x.channelCouplings, y.channelCouplings)
                cmp("--final-couplings", x.finalCouplings, y.finalCouplings)
                cmp("--image-act-norm", x.actNorm, y.actNorm)
                cmp("--image-batch-norm", x.batchNorm, y.batchNorm)
                cmp("--image-shape", "\(x.input)", "\(y.input)")
            }
        } else {
            cmp("--couplings", a.model.couplings, b.model.couplings)
            cmp("--hidden", a.model.hidden, b.model.hidden)
            cmp("--hidden-layers", a.model.hiddenLayers, b.model.hiddenLayers)
        }
        cmp("--mask", a.model.maskScheme.rawValue, b.model.maskScheme.rawValue)
        cmp("--learnable-scale", a.model.learnableScale, b.model.learnableScale)
        cmp("--act-norm", a.model.actNorm, b.model.actNorm)
        cmp("--context-columns/--condition", a.model.contextFeatures, b.model.contextFeatures)
        cmp("--image-shape", a.model.imageShape.map { "\($0)" } ?? "none", b.model.imageShape.map { "\($0)" } ?? "none")
        cmp("--dequantize/--levels/--logit-alpha", a.model.preprocessing.summary, b.model.preprocessing.summary)
        cmp("--batch-size", a.batchSize, b.batchSize)
        cmp("--lr", a.learningRate, b.learningRate)
        cmp("--l2", a.l2, b.l2)
        cmp("--seed", a.seed, b.seed)
        cmp("--validation-fraction", a.validationFraction, b.validationFraction)
        cmp("--reproducible", a.reproducible, b.reproducible)
        cmp("--micro-batch", a.microBatch, b.microBatch)
        cmp("--clip-norm", a.clipNorm.map { "\($0)" } ?? "none", b.clipNorm.map { "\($0)" } ?? "none")
        cmp("--on-nonfinite", a.onNonFinite.rawValue, b.onNonFinite.rawValue)
        cmp("--ema-momentum", a.emaMomentum ?? 0, b.emaMomentum ?? 0)
        cmp("--schedule", "\(a.schedule)", "\(b.schedule)")
        cmp("--epochs", a.epochs, b.epochs)
        if d.isEmpty && a != b { d.append("other settings") }
        return d
    }
}

/// What one rank resolves of a run on its own, before the ranks compare (``TrainingRun/resolve(_:communicator:)``).
struct LocalRun {
    var run: RunDirectory
    var config: RunDirectory.RunConfig
    var state: TrainingState?
    var lock: RunDirectory.Lock?
    var loaded: FlowRows
    var split: DataSplit
    var trainRaw: Matrix<Double>
    var trainX: Matrix<Double>
    var normalizer: Normalizer<Float>
    var contextNormalizer: Normalizer<Float>?

    /// The run (new or resumed), rank 0's lock, the data, the configuration validated, the normalisers.
    static func resolve(_ request: RunRequest, isRoot: Bool) throws -> LocalRun {
        var config: RunDirectory.RunConfig
        var state: TrainingState?
        var resumedFrom: Checkpoint?
        let run: RunDirectory
        // Rank 0 takes the run directory's lock before reading or writing anything in it (when it exists; a new
        // directory is locked as it is created, in RunDirectory.prepare).
        var lock: RunDirectory.Lock?
        func lockIfPresent(_ r: RunDirectory) throws {
            var isDirectory: ObjCBool = false
            if isRoot, FileManager.default.fileExists(atPath: r.path, isDirectory: &isDirectory), isDirectory.boolValue {
                lock = try r.lock()
            }
        }
        if var resume = request.resume {
            // A checkpoint file names its run directory.
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: resume, isDirectory: &isDirectory), !isDirectory.boolValue, resume.hasSuffix(".safetensors") {
                resume = (resume as NSString).deletingLastPathComponent
                if resume.isEmpty { resume = "." }
            }
            if let out = request.out, out != resume {
                throw RunSetupError("--out \(out) differs from --resume \(resume): a resumed run continues in its own directory")
            }
            run = RunDirectory(path: resume)
            try lockIfPresent(run)
            let stored = try run.readConfig()
            guard FileManager.default.fileExists(atPath: run.model) else {
                throw FlowIOError(path: run.path, message: "holds no checkpoint yet (no model.safetensors): the run ended before its first "
                    + "checkpoint, so there is nothing to resume; start it again with the same flags and --force")
            }
            let checkpoint = try Checkpoint.load(path: run.model, expecting: stored.training.model)
            guard let s = checkpoint.state else {
                throw FlowIOError(path: run.model, message: "holds a model without training state; it cannot be resumed")
            }
            state = s
            resumedFrom = checkpoint
            try TrainingRun.checkCheckpointBelongs(checkpoint, to: stored, in: run)
            // Flags may extend the run (--epochs); any other flag must agree with the stored run.
            var requested = try request.requested(stored)
            requested.training.epochs = stored.training.epochs
            // `--schedule cosine` (or `--warmup-steps`) given again: its step count is planned below, from the data.
            if case .cosine(let w, 0, let m) = requested.training.schedule, case .cosine(_, let total, _) = stored.training.schedule {
                requested.training.schedule = .cosine(warmupSteps: w, totalSteps: total, minimum: m)
            }
            // The data file's path may differ from the one recorded (moved, another host's mount, another rank's
            // copy): the checkpoint's data fingerprint compares the data themselves (below).
            var storedData = stored.data, givenData = requested.data
            if storedData.file != nil, givenData.file != nil { storedData.file = ""; givenData.file = "" }
            let differences = stored.training.differences(from: requested.training)
                + (givenData == storedData ? [] : ["data (\(stored.data.summary) vs \(requested.data.summary))"])
            if !differences.isEmpty {
                throw RunSetupError("--resume \(resume) is a run with another configuration (the run's value vs this command's): \(differences.joined(separator: "; ")). Resume with the same flags (only --epochs, --threads, --overlap and the run options --checkpoint-every, --validate-every, --keep-best and --plots may change), or start a new run.")
            }
            config = stored
            config.options = requested.options  // the stored ones, with the flags given now
            try config.options?.check(file: run.config)
            if let f = requested.data.file { config.data.file = RunDirectory.absolute(f) }  // read from where it is given now
            if let epochs = request.epochs { config.training.epochs = epochs }
            if case .cosine = config.training.schedule, config.training.epochs != stored.training.epochs {
                request.warn("the cosine schedule is re-planned over \(config.training.epochs) epochs; the steps already taken followed the plan over \(stored.training.epochs), so this run's learning rates differ from an uninterrupted \(config.training.epochs)-epoch run's")
            }
        } else {
            config = try request.newRun()
            run = RunDirectory(path: request.out ?? RunDirectory.defaultPath(for: config.data))
            try lockIfPresent(run)
        }
        // Data: every rank loads (or generates) it; the fingerprint is compared below.
        if state != nil, let f = config.data.file, !FileManager.default.fileExists(atPath: f) {
            throw FlowIOError(path: f, message: "cannot open file: No such file or directory (the run's data; if it moved, give its new path with --data: the data are compared with the checkpoint's fingerprint)")
        }
        let loaded = try config.data.loadRows()
        let raw = loaded.rows, D = loaded.features, K = loaded.contextFeatures
        let source = config.data.file ?? "--dataset \(config.data.dataset ?? "")"
        if D < 2 {
            throw RunSetupError("\(source) has \(D) \(K > 0 ? "feature column besides its \(K) context columns" : "column"): a coupling layer needs D ≥ 2 features")
        }
        if state != nil, D != config.training.model.dim || K != config.training.model.contextFeatures {
            throw FlowIOError(path: source, message: "has \(D) features and \(K) context values per row, the resumed model has D = \(config.training.model.dim), K = \(config.training.model.contextFeatures)")
        }
        if let recorded = resumedFrom?.metadata["data_fingerprint"], recorded != TrainingRun.hex(raw.fingerprint) {
            throw FlowIOError(path: source, message: "differs from the data the run was trained on (fingerprint \(TrainingRun.hex(raw.fingerprint)), the checkpoint records \(recorded)); resume needs the same data")
        }
        config.training.model.dim = D
        config.training.model.contextFeatures = K
        config.training.model.contextClasses = loaded.classes
        if case .cosine(let warmup, _, let minimum) = config.training.schedule {
            let steps = config.training.epochs * config.training.stepsPerEpoch(rows: raw.rows)
            config.training.schedule = .cosine(warmupSteps: warmup, totalSteps: max(1, steps), minimum: minimum)
        }
        try config.training.validate()
        let split = DataSplit(rows: raw.rows, validationFraction: config.training.validationFraction, seed: config.training.seed)
        if split.train.count < 2 { throw RunSetupError("\(source): only \(split.train.count) training row\(split.train.count == 1 ? "" : "s") after holding out \(split.validation.count) of \(raw.rows) row\(raw.rows == 1 ? "" : "s") for validation; need at least 2") }
        let trainRaw = raw.gatherRows(split.train)
        // The normaliser is fitted on the preprocessed training split (epoch 0's dequantisation noise), after
        // checking that discrete data are integers in 0…levels−1.
        let preprocessing = config.training.model.preprocessing
        let trainX = K == 0 ? trainRaw : trainRaw.columns(0..<D)
        let noise = preprocessing == .none ? nil
            : Preprocessing.noise(seed: config.training.seed, substream: 0, rows: trainRaw.rows, dim: D)
        try preprocessing.validateDiscrete(loaded.x)  // every row, in file order (errors name the row)
        let (preprocessed, _) = try preprocessing.forward(trainX, noise: noise)
        // Image flows start from the logits as they are (the paper's; ActNorm standardises each channel from the first
        // batch), the MLP flows from per-feature standardisation.
        let normalizer: Normalizer<Float> = try state?.normalizer
            ?? (config.training.model.image != nil ? .identity(dim: D) : Normalizer<Float>.fit(preprocessed, source: source))
        // The context's own normaliser: fitted on the training split's context columns; none (the identity) for a
        // one-hot class.
        var contextNormalizer: Normalizer<Float>?
        if K > 0 {
            contextNormalizer = try state?.contextNormalizer
                ?? (loaded.classes != nil ? .identity(dim: K) : Normalizer<Float>.fit(trainRaw.columns(D..<(D + K)), source: source + " (context columns)", allowConstant: true))
        }
        return LocalRun(run: run, config: config, state: state, lock: lock, loaded: loaded, split: split, trainRaw: trainRaw,
                        trainX: trainX, normalizer: normalizer, contextNormalizer: contextNormalizer)
    }
}

