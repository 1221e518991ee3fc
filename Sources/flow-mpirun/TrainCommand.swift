import ArgumentParser
import CFlowSupport
import FlowCore
import FlowDistributed
import Foundation

/// `flow-mpirun train`: data-parallel training; the defaults reproduce the seed model.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a RealNVP flow (defaults: the seed model on two moons).",
        discussion: """
            Defaults reproduce the seed (Foster, Generative Deep Learning, 2nd ed., after keras.io's "Density \
            estimation using Real NVP"): moons 3000 points / noise 0.05, 6 alternating couplings, s and t with \
            4 hidden layers of 256 ReLU units, Adam lr 1e-4, batch 256, 300 epochs, 20% validation, no L2 \
            (the seed declares L2(0.01) but never adds it to its loss; --l2 0.01 gives the declared intent).
            Writes DIR/model.safetensors, DIR/metrics.csv, DIR/config.json and SVG plots.
            """)

    @OptionGroup var data: DataOptions
    @Option(name: .customLong("context-columns"),
            help: ArgumentHelp("A conditional flow p(x | c): the last K columns of --data are the context c (default: unconditional).", valueName: "K"))
    var contextColumns: Int?
    @Option(help: ArgumentHelp("A conditional flow p(x | c) on the class: 'class' (one-hot label of digits, wine, breast-cancer, moons, circles, or of a file's last column).", valueName: "class"))
    var condition: ConditionName?
    @Option(help: "Passes over the training split (default 300).") var epochs: Int?
    @Option(name: .customLong("batch-size"), help: "Global batch size across all ranks and threads (default 256).") var batchSize: Int?
    @Option(help: "Adam learning rate (default 1e-4).") var lr: Double?
    @Option(help: "Number of affine coupling layers (default 6).") var couplings: Int?
    @Option(help: "Hidden units per layer of s and t (default 256).") var hidden: Int?
    @Option(name: .customLong("hidden-layers"), help: "Hidden Dense+ReLU layers of s and t (default 4).") var hiddenLayers: Int?
    @Option(help: "L2 penalty λ·Σ‖W‖² on weight matrices (default 0).") var l2: Double?
    @Option(help: "Mask scheme: alternating | checkerboard (default alternating).") var mask: MaskScheme?
    @Flag(name: .customLong("learnable-scale"), inversion: .prefixedNo, help: "Learnable per-feature scale on tanh (RealNVP paper).")
    var learnableScale: Bool?
    @Flag(name: .customLong("act-norm"), inversion: .prefixedNo,
          help: "An ActNorm (Glow's learned per-feature scale and bias) after every coupling.")
    var actNorm: Bool?
    @Flag(inversion: .prefixedNo, help: "Uniform dequantisation + logit for discrete data (default on for digits; needs --levels for other data).")
    var dequantize: Bool?
    @Option(help: "Number of discrete levels 0…levels−1 of every feature, for --dequantize (digits: 17).") var levels: Int?
    @Option(name: .customLong("logit-alpha"), help: "α of the logit transform logit(α + (1−2α)·x) (default 0.05).") var logitAlpha: Double?
    @Option(name: .customLong("image-shape"), help: ArgumentHelp("HxW: the images' shape (automatic for digits: 8x8, fashion-mnist: 28x28); the MLP's checkerboard mask follows the pixels' parity.", valueName: "HxW"))
    var imageShape: String?
    @OptionGroup(title: "Image flows (the paper's multi-scale convolutional RealNVP)") var architecture: ArchitectureOptions
    @Option(help: "Seed of every random quantity (default 0).") var seed: UInt64?
    @OptionGroup var threadOption: ThreadOption
    @Option(help: ArgumentHelp("Output directory (default runs/<data set>).", valueName: "dir")) var out: String?
    @Option(help: ArgumentHelp("Continue the run in this directory (or of this checkpoint file) from its last checkpoint.", valueName: "dir")) var resume: String?
    @Flag(help: "Overwrite an existing run in --out.") var force = false
    @Option(name: .customLong("checkpoint-every"), help: "Write a checkpoint every N epochs (and at the end; default 10, on resume the run's).") var checkpointEvery: Int?
    @Option(name: .customLong("validation-fraction"), help: "Fraction held out for validation (default 0.2).") var validationFraction: Double?
    @Option(name: .customLong("validate-every"), help: "Validate every N epochs and after the last (default 1, on resume the run's); best.safetensors is the best validated epoch.")
    var validateEvery: Int?
    @Flag(inversion: .prefixedNo, help: "Exact mode: the same model bytes for every ranks × threads layout.") var reproducible: Bool?
    @Option(name: .customLong("micro-batch"), help: "Rows per micro-batch in exact mode (default 64).") var microBatch: Int?
    @Option(name: .customLong("clip-norm"), help: "Clip the global gradient norm to this value.") var clipNorm: Double?
    @Option(help: "Learning-rate schedule: constant | cosine (default constant).") var schedule: ScheduleName?
    @Option(name: .customLong("warmup-steps"), help: "Linear warm-up steps of the cosine schedule (default 0; implies --schedule cosine).") var warmupSteps: Int?
    @Option(help: "Overlap the gradient allreduce with the backward pass: auto (on across hosts, off on one host) | on | off.")
    var overlap: OverlapSetting = .auto
    @Option(name: .customLong("ema-momentum"),
            help: "Momentum of the parameters' moving average used as the model (Keras's ema_momentum; default 0.99, 0 = off).")
    var emaMomentum: Double?
    @Option(name: .customLong("on-nonfinite"), help: "skip (default; stops after 3 in a row) | stop.") var onNonFinite: NonFinitePolicy?
    @Option(name: .customLong("check-parameters-every"), help: "Compare a parameter checksum across ranks every N steps (0 = never).")
    var checkParametersEvery: Int = 100
    @Option(name: .customLong("plot-points"), help: "Points drawn in the scatter plots.") var plotPoints: Int = 2000
    @Flag(name: .customLong("keep-best"), inversion: .prefixedNo,
          help: "Also keep the model with the best validation NLL in DIR/best.safetensors (default on with a validation split; on resume the run's).")
    var keepBest: Bool?
    @Flag(inversion: .prefixedNo, help: "Write the SVG plots at the end (default on; on resume the run's).") var plots: Bool?
    @Flag(help: "Print only the summary.") var quiet = false

    mutating func run() throws {
        let ctx = try RunContext()
        let command = self
        let setup = ctx.setUp { try command.prepare(ctx) }
        do {
            try command.train(ctx, setup)
        } catch let stop as TrainingStopped {
            ctx.agree(stop)  // every rank reached the same decision
        } catch {
            ctx.fail(error)
        }
        ctx.finish()
    }

    /// The training configuration the flags describe on top of `base`.
    func configuration(base: TrainingConfiguration, dim: Int) throws -> TrainingConfiguration {
        var t = base
        t.model.dim = dim
        if let epochs { t.epochs = epochs }
        if let batchSize { t.batchSize = batchSize }
        if let lr { t.learningRate = lr }
        if let couplings { t.model.couplings = couplings }
        if let hidden { t.model.hidden = hidden }
        if let hiddenLayers { t.model.hiddenLayers = hiddenLayers }
        if let l2 { t.l2 = l2 }
        if let mask { t.model.maskScheme = mask }
        if let learnableScale { t.model.learnableScale = learnableScale }
        if let actNorm { t.model.actNorm = actNorm }
        if let imageShape {
            let parts = imageShape.lowercased().split(separator: "x").map { Int($0) }
            guard parts.count == 2, let h = parts[0], let w = parts[1], h > 0, w > 0 else {
                throw ValidationError("invalid --image-shape '\(imageShape)': use HxW, e.g. 8x8")
            }
            t.model.imageShape = [h, w]
        }
        try applyArchitecture(&t.model)
        if dequantize == false {
            t.model.preprocessing = .none
        } else if dequantize == true || levels != nil || logitAlpha != nil {
            var (l, a) = (17, 0.05)
            if case let .dequantizeLogit(pl, pa) = t.model.preprocessing { (l, a) = (pl, pa) } else if levels == nil {
                throw ValidationError("--dequantize needs --levels N (the number of discrete values 0…N−1 of every feature)")
            }
            t.model.preprocessing = .dequantizeLogit(levels: levels ?? l, alpha: logitAlpha ?? a)
        }
        if let seed { t.seed = seed }
        if let validationFraction { t.validationFraction = validationFraction }
        if let reproducible { t.reproducible = reproducible }
        if let microBatch {
            guard t.reproducible else {
                throw ValidationError("--micro-batch applies to the exact mode (--reproducible); the default mode does not split batches")
            }
            t.microBatch = microBatch
        }
        if let clipNorm { t.clipNorm = clipNorm }
        if let onNonFinite { t.onNonFinite = onNonFinite }
        if let emaMomentum { t.emaMomentum = emaMomentum == 0 ? nil : emaMomentum }
        if warmupSteps != nil, schedule == .constant {
            throw ValidationError("--warmup-steps applies to --schedule cosine, not constant")
        }
        if schedule != nil || warmupSteps != nil {
            switch schedule ?? .cosine {
            case .constant: t.schedule = .constant
            case .cosine: t.schedule = .cosine(warmupSteps: warmupSteps ?? 0, totalSteps: 0, minimum: 0)
            }
        }
        return t
    }

    /// `--arch` and the image-flow sizes on top of `model` (a preset's or a stored run's): an image flow on the images
    /// of `--image-shape` or the data set's (one channel), or back to the MLP couplings for `--arch mlp`.
    /// - Throws: `ValidationError` for an image flow without an image shape, or with the MLP's flags.
    func applyArchitecture(_ model: inout FlowConfiguration) throws {
        let base = model.image
        let sizesMessage = "--channels, --res-blocks, --scales, the coupling counts and the normalisation (--image-act-norm, --image-batch-norm) apply to image flows (--arch realnvp-small or realnvp-paper)"
        switch architecture.arch {
        case .mlp?:
            if architecture.sizesGiven { throw ValidationError(sizesMessage + ", not --arch mlp") }
            if base != nil {
                // An image preset's model replaced by the MLP couplings: checkerboard masks on the pixel grid.
                model = FlowConfiguration(dim: model.dim, couplings: couplings ?? 8, hidden: hidden ?? 256, hiddenLayers: hiddenLayers ?? 3,
                                          maskScheme: mask ?? .checkerboard, imageShape: model.imageShape, learnableScale: learnableScale ?? false,
                                          preprocessing: model.preprocessing, actNorm: actNorm ?? false)
            }
            return
        case nil where base == nil:
            if architecture.sizesGiven { throw ValidationError(sizesMessage + "; give --arch realnvp-small or realnvp-paper") }
            return
        default:
            break
        }
        // An image flow: realnvp-* given, or the preset's / stored run's (which brings its own image shape).
        guard let hw = model.imageShape ?? base.map({ [$0.input.height, $0.input.width] }) else {
            throw ValidationError("--arch \(architecture.arch?.rawValue ?? "") needs images: --dataset digits or fashion-mnist, or --image-shape HxW for a file of images as rows")
        }
        let input = ImageShape(channels: 1, height: hw[0], width: hw[1])
        // A preset's or stored run's image flow on another --image-shape: the same sizes on the new images.
        var rebased = base
        rebased?.input = input
        guard let image = try architecture.architecture(input: input, base: rebased) else { return }
        let mlpFlags = [("--couplings", couplings != nil), ("--hidden", hidden != nil), ("--hidden-layers", hiddenLayers != nil),
                        ("--mask", mask != nil), ("--learnable-scale", learnableScale != nil), ("--act-norm", actNorm != nil)]
        if let flag = mlpFlags.first(where: { $0.1 })?.0 {
            throw ValidationError("\(flag) applies to the MLP couplings (--arch mlp); an image flow is sized by --channels, --res-blocks, --scales and the coupling counts")
        }
        if image.batchNorm && overlap == .on {
            throw ValidationError("--overlap on: batch normalisation (--image-batch-norm) combines its statistics across ranks inside the backward pass, which the overlapped allreduce cannot run beside; use --overlap auto or off")
        }
        model = .imageFlow(image, preprocessing: model.preprocessing)
    }

    /// The trainer's options for this run: `--check-parameters-every`, `--overlap`, the stop request from SIGINT/TERM/USR1/USR2
    /// (see `stopAfterSignal`), and the test-only `FLOW_TEST_FAULT` hooks (the validation interval comes from the run's
    /// options, in ``TrainingRun/resolve(_:communicator:)``).
    func options(rank: Int, hosts: Int) -> TrainerOptions {
        var options = TrainerOptions(overlapAllreduce: overlap.resolved(hosts: hosts), parameterCheckInterval: checkParametersEvery,
                                     stopRequest: { _ in flow_stop_signal() != 0 })
        FaultInjection.apply(to: &options, rank: rank)
        return options
    }

    /// Resolves the run the flags describe (``TrainingRun/resolve(_:communicator:)`` does the work: new or resumed,
    /// the lock, the data, the agreement of the ranks).
    func prepare(_ ctx: RunContext) throws -> TrainingRun {
        if let checkpointEvery, checkpointEvery < 1 { throw ValidationError("invalid --checkpoint-every \(checkpointEvery): need at least 1") }
        if plotPoints < 1 || plotPoints > 10_000_000 { throw ValidationError("invalid --plot-points \(plotPoints): need 1 to 10000000") }
        if checkParametersEvery < 0 { throw ValidationError("invalid --check-parameters-every \(checkParametersEvery)") }
        if let validateEvery, validateEvery < 1 { throw ValidationError("invalid --validate-every \(validateEvery): need at least 1") }
        let command = self
        let conditioning = try self.conditioning()
        let request = RunRequest(
            resume: resume, out: out, force: force, threads: try threadOption.resolved(), epochs: epochs,
            newRun: {
                var dataSpec = try command.data.spec(defaultSeed: command.seed ?? 0)
                dataSpec.condition = conditioning
                var training = try command.configuration(base: DatasetPreset.training(for: dataSpec), dim: 2)
                // A preset's image shape (digits: 8x8) describes every column; context columns leave fewer features.
                if case .columns = conditioning, command.imageShape == nil { training.model.imageShape = nil }
                return RunDirectory.RunConfig(training: training, data: dataSpec, options: command.runOptions(over: RunDirectory.RunOptions()))
            },
            requested: { stored in
                let training = try command.configuration(base: stored.training, dim: stored.training.model.dim)
                var data = command.data.given ? try command.data.spec(defaultSeed: training.seed, fallback: stored.data) : stored.data
                if conditioning != nil { data.condition = conditioning }
                return RunDirectory.RunConfig(training: training, data: data,
                                              options: command.runOptions(over: stored.options ?? RunDirectory.RunOptions()))
            },
            options: options(rank: ctx.rank, hosts: ctx.communicator.hostCount),
            warn: { [logger = ctx.logger] w in logger.warning("\(w)") })
        var sized = request
        // The plots at their largest: about 1 MiB of fixed panels and grids, and at most 64 bytes per drawn point
        // (measured: moons 1.0 MB at 2000 points, 1.6 MB at 20000; wine 0.7 MB at 20000).
        sized.plotBytes = (1 << 20) + 64 * plotPoints
        return try TrainingRun.resolve(sized, communicator: ctx.communicator)
    }

    /// The job's layout as the run's messages give it: `2 ranks × 2 threads`, or each rank's threads when they differ
    /// (`2 ranks × 1,2 threads`).
    static func layoutText(threadsPerRank: [Int]) -> String {
        let ranks = threadsPerRank.count
        let threads = threadsPerRank.allSatisfy({ $0 == threadsPerRank[0] })
            ? "\(threadsPerRank[0]) thread\(threadsPerRank[0] > 1 ? "s" : "")"
            : threadsPerRank.map(String.init).joined(separator: ",") + " threads"
        return "\(ranks) rank\(ranks > 1 ? "s" : "") × \(threads)"
    }

    /// How to launch `flow-mpirun` again with this job's rank count, for a printed command: `flow-mpirun` in one
    /// process; under MPI `cluster/launch.sh -n 2` when cluster/launch.sh started the job (it exports
    /// `FLOW_LAUNCHER`, itself as it was called), else `mpirun -np 2 flow-mpirun`.
    static func launchCommand(worldSize: Int, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        guard worldSize > 1 else { return "flow-mpirun" }
        if let launcher = environment["FLOW_LAUNCHER"], !launcher.isEmpty { return "\(launcher) -n \(worldSize)" }
        return "mpirun -np \(worldSize) flow-mpirun"
    }

    /// `base` with the run options given as flags instead (`--checkpoint-every`, `--validate-every`, `--keep-best`,
    /// `--plots`).
    func runOptions(over base: RunDirectory.RunOptions) -> RunDirectory.RunOptions {
        base.with(checkpointEvery: checkpointEvery, validateEvery: validateEvery, keepBest: keepBest, plots: plots)
    }

    /// `--context-columns K` or `--condition class`, at most one of them.
    /// - Throws: `ValidationError` for both, or for K < 1.
    func conditioning() throws -> Conditioning? {
        switch (contextColumns, condition) {
        case (nil, nil): return nil
        case (_?, _?): throw ValidationError("give either --context-columns or --condition class, not both")
        case (let k?, nil):
            guard k >= 1 else { throw ValidationError("invalid --context-columns \(k): need at least 1 (leave it out for an unconditional flow)") }
            return .columns(k)
        case (nil, .class?): return .classLabel
        }
    }

    /// The epoch loop of the run `s`; `onEpoch` sees every epoch's report, and `printSummary` false leaves out the
    /// closing summary (both for `bench --train`).
    func train(_ ctx: RunContext, _ s: TrainingRun, printSummary: Bool = true, onEpoch: (EpochReport) -> Void = { _ in }) throws {
        let trainer = s.trainer
        let t = trainer.configuration
        let runOptions = s.config.runOptions
        let checkpointEvery = runOptions.checkpointEvery, keepBest = runOptions.keepBest, noPlots = !runOptions.plots
        ctx.logger.debug("BLAS: \(BLASRuntime.coreName) (\(BLASRuntime.configuration))")
        try trainer.verifyParametersAgree()
        // Threads per rank may differ (hosts of different sizes with the default --threads, an MPMD launch).
        let threadsPerRank = ctx.worldSize > 1 ? try ctx.communicator.allgather([Int64(trainer.pool.count)]).map { Int($0) } : [trainer.pool.count]
        let layoutText = Self.layoutText(threadsPerRank: threadsPerRank)
        let hosts = ctx.communicator.hostCount
        let allreduceText = ctx.worldSize == 1 ? "" : ", \(hosts) host\(hosts > 1 ? "s" : ""), \(trainer.gradientExchange.summary)"
        if !quiet {
            ctx.say("""
                flow-mpirun train: \(s.config.data.summary), D = \(t.model.dim), \(trainer.trainRows) train / \(trainer.validationRows) validation rows
                  model: \(Checkpoint.describe(t.model)), \(trainer.network.layout.parameterCount) parameters
                  \(counted(t.epochs, "epoch")) × \(counted(trainer.batchesPerEpoch, "step")), batch \(t.batchSize), Adam lr \(t.learningRate), l2 \(t.l2), seed \(t.seed)\(t.reproducible ? ", exact mode (micro-batch \(t.microBatch))" : "")
                  layout: \(layoutText) (\(ctx.communicator.transport)\(allreduceText)), BLAS \(BLASRuntime.coreName)
                  output: \(s.run.path)\(s.resumed ? " (resuming at epoch \(trainer.epoch + 1), step \(trainer.step))" : "")
                """)
        }
        var metrics = s.resumed ? MetricsLog.read(path: s.run.metrics, upTo: trainer.epoch) : MetricsLog()
        if ctx.isRoot { try s.run.writeConfig(s.config) }
        let progress = ProgressReporter(enabled: ctx.isRoot && !quiet, totalEpochs: t.epochs,
                                        terminal: flow_stdout_is_terminal() != 0 && !MPICommunicator.launchedByMPI)
        let bitsDivisor = Double(t.model.dim) * log(2.0)
        if t.model.preprocessing.isDiscrete { progress.bitsPerDimDivisor = bitsDivisor }
        var totalRows = 0.0, totalSeconds = 0.0
        // The best model so far (by validation NLL), kept in memory and written with each checkpoint.
        var best: (parameters: [Float], epoch: Int)?
        var bestWritten = true
        // SIGINT, SIGTERM, SIGUSR1 or SIGUSR2 (mpirun forwards SIGUSR1/2 to every rank; it turns SIGINT/SIGTERM
        // into SIGTERM to every rank and SIGKILL after odls_base_sigkill_timeout seconds): the ranks agree to stop
        // after the same step, rank 0 writes a checkpoint, and the job exits with 128 + signal; a second SIGINT
        // exits at once. See docs/stopping.md.
        flow_install_stop_handlers()
        // Checkpoints, the best model and the metrics are snapshotted at an epoch's end and written by a background
        // thread at the lowest priority while the next epochs train (rank 0 only; see BackgroundFileWriter).
        let writer = BackgroundFileWriter()
        var snapshots = CheckpointSnapshots()
        defer { try? writer.wait() }  // whatever ends training, the files in flight are completed first
        let logger = ctx.logger
        var signalSeenAfterStep: Int?  // the first step after which this rank's stop signal was seen (latency in steps)
        let drainBeforeStep = FaultInjection.holdStep  // tests only: the files are on disk before a held step
        while !trainer.finished {
            let report = try trainer.runEpoch { r in
                if signalSeenAfterStep == nil, flow_stop_signal() != 0 { signalSeenAfterStep = r.step }
                if let h = drainBeforeStep, r.step + 1 == h, ctx.isRoot { try? writer.wait() }
                progress.step(r)
                if !r.applied, let location = trainer.lastNonFiniteLocation {
                    logger.warning("step \(r.step) (epoch \(r.epoch + 1), batch \(r.batch + 1)) skipped: \(location) is not finite (NLL \(r.nll)); parameters unchanged")
                }
            }
            // A stop in the middle of an epoch: its sums go into the checkpoint, and the epoch is not reported.
            if trainer.stopAgreed && trainer.step % trainer.batchesPerEpoch != 0 {
                try stopAfterSignal(ctx, s, writer: writer, progress: progress, threadsPerRank: threadsPerRank, signalSeenAfterStep: signalSeenAfterStep, best: best,
                                    bestWritten: bestWritten)
            }
            if let v = report.validationNLL, !v.isFinite {
                try writer.wait()  // the last checkpoint in flight, if any, completes
                // Diverged (parameters overflowed): stop, keeping the last checkpoint, which was finite.
                let kept = FileManager.default.fileExists(atPath: s.run.model)
                    ? "the last checkpoint, \(s.run.model), is kept" : "no checkpoint was written"
                throw TrainingStopped(message: "epoch \(report.epoch): the validation NLL is \(v.isNaN ? "nan" : "\(v)"): training diverged; \(kept). Try a lower --lr or --clip-norm.")
            }
            totalRows += report.samplesPerSecond * report.seconds
            totalSeconds += report.seconds
            if let v = report.validationNLL, trainer.recordValidation(v, epoch: report.epoch), keepBest {
                if best == nil {
                    best = (trainer.evaluationParameters.array, report.epoch)
                } else {
                    // Into the same storage (no 4·P-byte allocation per improving epoch).
                    let source = trainer.evaluationParameters
                    best!.parameters.withUnsafeMutableBufferPointer {
                        precondition($0.count == source.count, "best model: \($0.count) parameters kept, \(source.count) to copy")
                        _ = $0.update(fromContentsOf: source.buffer)
                    }
                    best!.epoch = report.epoch
                }
                bestWritten = false
            }
            metrics.append(epoch: report.epoch, train: report.trainNLL, validation: report.validationNLL, penalty: report.penalty,
                           seconds: report.seconds, samplesPerSecond: report.samplesPerSecond)
            progress.epoch(report)
            onEpoch(report)
            let checkpointDue = report.epoch % checkpointEvery == 0 || trainer.finished
            if checkpointDue { try trainer.synchronizeOptimizerState() }  // collective: every rank
            if ctx.isRoot {
                // Before a checkpoint, every file submitted is on disk first (by default the last checkpoint is 10
                // epochs old and long written; wait() writes what is not, itself): the bytes' storage is then free for
                // this snapshot. An ordinary epoch's metrics are queued without waiting.
                if checkpointDue { try writer.wait() }
                // Metrics first (resume reads them up to the checkpoint's step), then the best model, then the
                // checkpoint: a crash between two files never leaves a checkpoint whose best epoch is newer than
                // best.safetensors.
                var files = [PendingFile(path: s.run.metrics, bytes: metrics.bytes)]
                if checkpointDue {
                    if let b = best, !bestWritten {
                        files.append(PendingFile(path: s.run.best, bytes: try snapshots.best(
                            try bestCheckpoint(trainer, s, parameters: b.parameters, epoch: b.epoch), path: s.run.best)))
                        bestWritten = true
                    }
                    files.append(PendingFile(path: s.run.model, bytes: try snapshots.checkpoint(
                        of: trainer, metadata: try checkpointMetadata(trainer, s), path: s.run.model)))
                }
                try writer.submit(files)
            }
            // A stop that came with an epoch's last step: the epoch is validated and recorded above; a stop with
            // the run's very last step is no stop at all (the run ends as usual).
            if trainer.stopAgreed && !trainer.finished {
                try stopAfterSignal(ctx, s, writer: writer, progress: progress, threadsPerRank: threadsPerRank, signalSeenAfterStep: signalSeenAfterStep, best: best,
                                    bestWritten: bestWritten, checkpointWritten: checkpointDue)
            }
        }
        progress.finish()
        try writer.wait()
        let tm = trainer.timings
        if tm.steps > 0 {
            ctx.logger.debug("time per step (ms): compute \(String(format: "%.2f", 1e3 * tm.compute / Double(tm.steps))), reduce \(String(format: "%.2f", 1e3 * tm.intraNodeReduction / Double(tm.steps))), allreduce \(String(format: "%.2f", 1e3 * tm.allreduce / Double(tm.steps))), optimizer \(String(format: "%.2f", 1e3 * tm.optimizer / Double(tm.steps)))")
        }
        if trainer.step == 0 || s.resumed && totalSeconds == 0 {
            try trainer.synchronizeOptimizerState()
            if ctx.isRoot { try checkpoint(trainer, s).write(to: s.run.model) }
        }
        // Summary: validation NLL and round-trip error, computed on every rank, printed by rank 0.
        let summary = try RunSummary.compute(trainer: trainer)
        if !noPlots {
            let drawn = best.map { (AlignedBuffer($0.parameters), $0.epoch) } ?? (trainer.evaluationParameters, trainer.epoch)
            try RunPlots.write(ctx: ctx, trainer: trainer, parameters: drawn.0, epoch: drawn.1, rawTrain: s.rawTrain,
                               labels: s.trainLabels, classNames: s.classNames, metrics: metrics, run: s.run, points: plotPoints, seed: t.seed)
        }
        guard printSummary else { return }
        let throughput = totalSeconds > 0 ? totalRows / totalSeconds : 0
        let units = "nats (data units\(t.model.preprocessing.isDiscrete ? ", dequantised" : ""))"
        let levels = levelsOf(t.model.preprocessing)
        let uniform = String(format: "%d levels: uniform = %.4f bits/dim", levels, log2(Double(levels)))
        let scores: String
        if let validation = summary.validationNLL {
            scores = "validation NLL \(formatLoss(validation)) \(units)"
                + (trainer.bestEpoch.map { ", best \(formatLoss(trainer.bestValidationNLL!)) at epoch \($0)" } ?? "")
                + (t.model.preprocessing.isDiscrete ? String(format: "\n  validation bits/dim %.4f (best %.4f); %@", validation / bitsDivisor,
                                                             (trainer.bestValidationNLL ?? .nan) / bitsDivisor, uniform) : "")
        } else {
            // --validation-fraction 0: the last epoch's training NLL, and where to score the model.
            let train = metrics.curves.train.last ?? .nan
            scores = "no validation split: the last epoch's training NLL \(formatLoss(train)) \(units)"
                + (t.model.preprocessing.isDiscrete ? String(format: " = %.4f bits/dim (%@)", train / bitsDivisor, uniform) : "")
                + "; score the model with flow-mpirun evaluate"
        }
        ctx.say("""
            done: \(counted(trainer.epoch, "epoch")), \(counted(trainer.step, "step"))\(totalSeconds > 0 ? String(format: ", %.0f samples/s (%@)", throughput, layoutText) : "")
              \(scores)
              round-trip max |decode(encode(x)) − x| = \(String(format: "%.3g", summary.roundTripError)) (relative \(String(format: "%.3g", summary.relativeRoundTripError)))
              wrote \(s.run.model)\(keepBest && trainer.bestEpoch != nil ? ", \(s.run.best)" : ""), \(s.run.metrics), \(s.run.config)\(noPlots ? "" : ", plots (*.svg)")
            """)
    }

    /// The end of a run stopped by a signal (docs/stopping.md), on every rank: the stop was agreed after the same
    /// step everywhere. Rank 0 waits for the background writes in flight, then writes the checkpoint (unless
    /// `checkpointWritten`: an epoch's end just queued it) and
    /// a best model not yet on disk; the ranks agree on the signal to report (the highest-numbered one any rank
    /// received), pass a barrier, and exit with 128 + that signal.
    func stopAfterSignal(_ ctx: RunContext, _ s: TrainingRun, writer: BackgroundFileWriter, progress: ProgressReporter, threadsPerRank: [Int],
                         signalSeenAfterStep: Int?,
                         best: (parameters: [Float], epoch: Int)?, bestWritten: Bool, checkpointWritten: Bool = false) throws -> Never {
        let trainer = s.trainer
        progress.finish()
        try writer.wait()  // the files in flight are older than the ones written below
        let agreed = flow_monotonic_seconds()
        let own = flow_stop_signal()
        var signals: [Int64] = [Int64(own)]
        try signals.withUnsafeMutableBufferPointer { try ctx.communicator.allreduceMax($0) }  // collective: every rank
        let signal = signals[0] > 0 ? Int32(signals[0]) : SIGTERM
        if !checkpointWritten { try trainer.synchronizeOptimizerState() }  // collective: every rank
        if ctx.isRoot {
            if let b = best, !bestWritten {  // the best model before the checkpoint that names its epoch
                try bestCheckpoint(trainer, s, parameters: b.parameters, epoch: b.epoch).write(to: s.run.best)
            }
            if !checkpointWritten { try checkpoint(trainer, s).write(to: s.run.model) }
        }
        let arrived = flow_stop_signal_time(), written = flow_monotonic_seconds()
        // For scripts/stop-latency.py: times in CLOCK_MONOTONIC seconds; steps as counted in the messages
        // (after step N = N steps done).
        ctx.logger.debug("stop: \(own != 0 ? "\(StopSignal.name(own)) arrived at \(String(format: "%.6f", arrived)), seen after step \((signalSeenAfterStep ?? trainer.step - 1) + 1)" : "no signal here"); agreed after step \(trainer.step) at \(String(format: "%.6f", agreed)); checkpoint written at \(String(format: "%.6f", written))")
        let cause = own != 0 ? StopSignal.name(own) : "\(StopSignal.name(signal)) to another rank"
        let latency = own != 0 ? String(format: "; %.0f ms after the signal reached rank 0", (written - arrived) * 1000) : ""
        let batches = trainer.step % trainer.batchesPerEpoch
        let position = batches == 0 ? "the end of epoch \(trainer.epoch)"
            : "epoch \(trainer.epoch + 1): \(batches) of \(trainer.batchesPerEpoch) batches done"
        // The same bytes need the same layout in the default mode (summation order); exact mode needs none.
        let same = threadsPerRank.allSatisfy { $0 == threadsPerRank[0] }
        let layout = trainer.configuration.reproducible ? ""
            : same ? " --threads \(trainer.pool.count)\(ctx.worldSize > 1 ? " (the same layout continues with the same bytes)" : "")"
            : " (ranks 0–\(ctx.worldSize - 1) ran --threads \(threadsPerRank.map(String.init).joined(separator: ", ")); the same layout continues with the same bytes)"
        ctx.say("""
            stopped by \(cause) after step \(trainer.step) (\(position)); checkpoint written to \(s.run.model)\(latency)
            resume with: \(Self.launchCommand(worldSize: ctx.worldSize)) train --resume \(shellQuoted(s.run.path))\(layout)
            """)
        // Every rank past the checkpoint before any exits: under mpirun, the first rank to exit with
        // 128 + signal makes mpirun SIGTERM the rest, which must then end at once.
        try ctx.communicator.barrier()
        flow_restore_default_stop_handlers()
        ctx.finish()
        Foundation.exit(128 + signal)
    }

    /// The best model (no optimiser state), with `best_epoch` and `best_validation_nll` in its metadata; its
    /// parameters are `parameters` itself (shared, not copied).
    func bestCheckpoint(_ trainer: DataParallelTrainer, _ s: TrainingRun, parameters: [Float], epoch: Int) throws -> Checkpoint {
        var metadata = try checkpointMetadata(trainer, s)
        metadata["best_epoch"] = String(epoch)
        metadata["best_validation_nll"] = trainer.bestValidationNLL.map { String($0) } ?? ""
        let model = RealNVP(network: trainer.network, parameters: parameters, normalizer: trainer.normalizer)
        return Checkpoint(model: model, training: trainer.configuration, metadata: metadata)
    }

    func levelsOf(_ p: Preprocessing) -> Int {
        if case let .dequantizeLogit(levels, _) = p { return levels }
        return 0
    }

    /// The run's checkpoint; with its training state (after `synchronizeOptimizerState()`) unless `withState` is false.
    func checkpoint(_ trainer: DataParallelTrainer, _ s: TrainingRun, withState: Bool = true) throws -> Checkpoint {
        Checkpoint(model: trainer.model, state: withState ? trainer.state() : nil, training: trainer.configuration,
                   metadata: try checkpointMetadata(trainer, s))
    }

    /// The metadata of the run's checkpoints: the data set's description and fingerprint, and a class-conditional
    /// model's class weights.
    func checkpointMetadata(_ trainer: DataParallelTrainer, _ s: TrainingRun) throws -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = String(decoding: try encoder.encode(s.config.data), as: UTF8.self)
        var metadata = ["data": data, "data_fingerprint": TrainingRun.hex(s.fingerprint)]
        // A class-conditional model's class weights π_c (the training split's class frequencies), for evaluate's
        // marginal NLL −log Σ_c π_c p(x | c).
        if let classes = trainer.configuration.model.contextClasses, let labels = s.trainLabels, !labels.isEmpty {
            let weights = FlowRows.classFrequencies(labels, classes: classes)
            metadata["class_weights"] = "[" + weights.map { "\($0)" }.joined(separator: ",") + "]"
        }
        return metadata
    }
}

/// Validation NLL and round-trip error of a trained model.
struct RunSummary {
    var validationNLL: Double?
    var roundTripError: Double
    var relativeRoundTripError: Double

    static func compute(trainer: DataParallelTrainer) throws -> RunSummary {
        let v = try trainer.validationNLL()
        let data = trainer.validationRows > 0 ? trainer.validationData! : trainer.trainData
        let rows = min(trainer.validationRows > 0 ? trainer.validationRows : trainer.trainRows, 4096)
        let p = trainer.evaluationParameters.base
        let (z, _) = try trainer.evaluator.encode(data.base, rows: rows, parameters: p)
        let D = trainer.network.dim, W = trainer.network.inputWidth
        // A conditional flow decodes with each row's own context (the last K values of its input row).
        let context = W > D ? ContextRows(data.base + D, stride: W) : nil
        let back = try z.withUnsafeBufferPointer {
            try trainer.evaluator.decode($0.baseAddress!, context: context, rows: rows, parameters: p)
        }
        var worst = 0.0, worstRelative = 0.0
        for i in 0..<(rows * D) {
            // The flow's input rows are in data units (the chain normalises them itself); with a preprocessing,
            // in its output space.
            let original = Double(data.base[i / D * W + i % D])
            let e = abs(Double(back[i]) - original)
            let x = abs(original)
            worst = max(worst, e)
            worstRelative = max(worstRelative, e / max(1, x))
        }
        return RunSummary(validationNLL: v, roundTripError: worst, relativeRoundTripError: worstRelative)
    }
}
