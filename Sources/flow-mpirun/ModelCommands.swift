import ArgumentParser
import FlowCore
import FlowDistributed
import Foundation

/// A checkpoint loaded on every rank, with sharded inference over this rank's workers.
struct LoadedModel {
    let checkpoint: Checkpoint
    let evaluator: ShardedEvaluator
    let parameters: AlignedBuffer<Float>
    var model: RealNVP<Float> { checkpoint.model }
    var dim: Int { checkpoint.model.dim }

    init(path: String, ctx: RunContext, threads: Int) throws {
        checkpoint = try Checkpoint.load(path: path)
        parameters = AlignedBuffer(checkpoint.model.parameters)
        evaluator = ShardedEvaluator(network: checkpoint.model.network, communicator: ctx.communicator, pool: WorkerPool(count: threads))
    }

    /// The data spec stored with the checkpoint by `train`, if any.
    var dataSpec: DataSpec? {
        checkpoint.metadata["data"].flatMap { try? JSONDecoder().decode(DataSpec.self, from: Data($0.utf8)) }
    }

    /// Checks that `x` has the model's width.
    func checkWidth(_ rows: Int, _ columns: Int, source: String) throws {
        guard columns == dim else {
            throw FlowIOError(path: source, message: "has \(columns) columns; the model expects D = \(dim)")
        }
        guard rows > 0 else { throw FlowIOError(path: source, message: "has no rows") }
    }
}

/// Writes `[rows, columns]` values as CSV or `.npy`, chosen by the extension of `path`.
enum OutputFile {
    static func check(_ path: String, flag: String = "--out") throws {
        let ext = (path as NSString).pathExtension.lowercased()
        guard ext == "csv" || ext == "npy" else {
            throw ValidationError("invalid \(flag) \(path): the file name must end in .csv or .npy")
        }
    }

    static func write(_ values: [Float], rows: Int, columns: Int, to path: String) throws {
        if (path as NSString).pathExtension.lowercased() == "npy" {
            try NPYWriter.write(values, rows: rows, columns: columns, to: path)
        } else {
            try CSVWriter.write(values, rows: rows, columns: columns, header: (0..<columns).map { "x\($0)" }, to: path)
        }
    }
}

/// `flow-mpirun sample`: draw x = g(z), z ~ N(0, τ²I).
struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample", abstract: "Draw samples x = g(z), z ~ N(0, τ²I), from a trained model.",
        discussion: "Sample i's noise depends only on (--seed, i): the output is the same under any ranks × threads layout.")
    @OptionGroup var modelOption: ModelOption
    @Option(name: .shortAndLong, help: "Number of samples.") var n: Int = 1000
    @Option(help: "Seed of the sampling noise.") var seed: UInt64 = 0
    @Option(help: "Temperature τ: z ~ N(0, τ²I).") var temperature: Double = 1
    @Option(help: ArgumentHelp("Output file (.csv or .npy).", valueName: "file")) var out: String
    @OptionGroup var threadOption: ThreadOption

    mutating func run() throws {
        let ctx = try RunContext()
        let c = self
        let loaded = ctx.setUp { () throws -> LoadedModel in
            if c.n < 1 { throw ValidationError("invalid -n \(c.n): need at least 1 sample") }
            if !(c.temperature >= 0) || !c.temperature.isFinite { throw ValidationError("invalid --temperature \(c.temperature): must be ≥ 0") }
            try OutputFile.check(c.out)
            return try LoadedModel(path: c.modelOption.path, ctx: ctx, threads: try c.threadOption.resolved())
        }
        do {
            let u = try loaded.evaluator.sample(count: n, seed: seed, temperature: temperature, parameters: loaded.parameters.base)
            let x = loaded.model.normalizer.denormalize(Matrix(rows: n, columns: loaded.dim, values: u))
            if ctx.isRoot {
                try OutputFile.write(x.values, rows: n, columns: loaded.dim, to: out)
                FileHandle.standardError.write(Data("wrote \(n) samples (D = \(loaded.dim), τ = \(temperature), seed \(seed)) to \(out)\n".utf8))
            }
        } catch { ctx.fail(error) }
        ctx.finish()
    }
}

/// `flow-mpirun evaluate`: log-likelihood, NLL, bits/dim and round-trip error on a file or data set.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate", abstract: "Report log-likelihood, NLL (nats, data units), bits/dim and round-trip error.",
        discussion: """
            Data: --data FILE, or --dataset NAME [--samples N --data-seed S] for fresh synthetic points; without \
            either, the run's own data (stored in the checkpoint) and --split (default validation).
            bits/dim = NLL / (D·ln 2).
            """)
    @OptionGroup var modelOption: ModelOption
    @OptionGroup var data: DataOptions
    @Option(help: "Without --data/--dataset: which split of the run's data: train | validation | all.") var split: String = "validation"
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var threadOption: ThreadOption

    struct Result: Codable {
        var rows: Int
        var dim: Int
        var data: String
        var units = "nats per row, data units"
        var meanLogLikelihood: Double
        var nll: Double
        var bitsPerDim: Double
        var roundTripMaxAbsError: Double
        enum CodingKeys: String, CodingKey {
            case rows, dim, data, units, meanLogLikelihood = "mean_log_likelihood", nll, bitsPerDim = "bits_per_dim",
                 roundTripMaxAbsError = "round_trip_max_abs_error"
        }
    }

    mutating func run() throws {
        let ctx = try RunContext()
        let c = self
        let (loaded, x, source) = ctx.setUp { () throws -> (LoadedModel, Matrix<Float>, String) in
            let loaded = try LoadedModel(path: c.modelOption.path, ctx: ctx, threads: try c.threadOption.resolved())
            let (x, source) = try c.loadData(loaded)
            try loaded.checkWidth(x.rows, x.columns, source: source)
            return (loaded, x, source)
        }
        do {
            let D = loaded.dim
            let u = loaded.model.normalizer.normalize(x)
            let p = loaded.parameters.base
            let ld = try u.values.withUnsafeBufferPointer { try loaded.evaluator.logDensity($0.baseAddress!, rows: x.rows, parameters: p) }
            let meanLL = ld.reduce(0, +) / Double(x.rows) + loaded.model.normalizer.logDetJacobian
            let (z, _) = try u.values.withUnsafeBufferPointer { try loaded.evaluator.encode($0.baseAddress!, rows: x.rows, parameters: p) }
            let back = try z.withUnsafeBufferPointer { try loaded.evaluator.decode($0.baseAddress!, rows: x.rows, parameters: p) }
            let xBack = loaded.model.normalizer.denormalize(Matrix(rows: x.rows, columns: D, values: back))
            var worst = 0.0
            for (a, b) in zip(xBack.values, x.values) { worst = max(worst, Double(abs(a - b))) }
            let r = Result(rows: x.rows, dim: D, data: source, meanLogLikelihood: meanLL, nll: -meanLL,
                           bitsPerDim: -meanLL / (Double(D) * log(2.0)), roundTripMaxAbsError: worst)
            if json {
                let e = JSONEncoder()
                e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                ctx.say(String(decoding: try e.encode(r), as: UTF8.self))
            } else {
                ctx.say("""
                    data: \(source) (\(r.rows) rows, D = \(D))
                    mean log-likelihood: \(String(format: "%.6f", r.meanLogLikelihood)) nats per row (data units)
                    NLL: \(String(format: "%.6f", r.nll)) nats (data units)
                    bits/dim: \(String(format: "%.6f", r.bitsPerDim))
                    round-trip max |decode(encode(x)) − x|: \(String(format: "%.3g", r.roundTripMaxAbsError))
                    """)
            }
        } catch { ctx.fail(error) }
        ctx.finish()
    }

    func loadData(_ loaded: LoadedModel) throws -> (Matrix<Float>, String) {
        if data.given {
            let spec = try data.spec(defaultSeed: 0)
            return (try spec.load().converted(), spec.summary)
        }
        guard let spec = loaded.dataSpec, let training = loaded.checkpoint.training else {
            throw ValidationError("the checkpoint does not record its data: give --data FILE or --dataset NAME")
        }
        let raw = try spec.load()
        let s = DataSplit(rows: raw.rows, validationFraction: training.validationFraction, seed: training.seed)
        switch split {
        case "train": return (raw.gatherRows(s.train).converted(), "\(spec.summary), training split")
        case "validation":
            guard !s.validation.isEmpty else { throw ValidationError("the run has no validation split; use --split train or all") }
            return (raw.gatherRows(s.validation).converted(), "\(spec.summary), validation split")
        case "all": return (raw.converted(), spec.summary)
        default: throw ValidationError("invalid --split '\(split)': use train, validation or all")
        }
    }
}

/// `flow-mpirun encode`: data → latent, file to file.
struct EncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "encode", abstract: "Map data x to latents z = f(x) (file to file).")
    @OptionGroup var modelOption: ModelOption
    @Option(help: ArgumentHelp("Input data (.csv or .npy), [rows, D].", valueName: "file")) var data: String
    @Option(help: ArgumentHelp("Output latents (.csv or .npy).", valueName: "file")) var out: String
    @OptionGroup var threadOption: ThreadOption

    mutating func run() throws {
        try Transform.run(model: modelOption.path, input: data, output: out, threads: threadOption, forward: true)
    }
}

/// `flow-mpirun decode`: latent → data, file to file.
struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "decode", abstract: "Map latents z to data x = f⁻¹(z) (file to file).")
    @OptionGroup var modelOption: ModelOption
    @Option(help: ArgumentHelp("Input latents (.csv or .npy), [rows, D].", valueName: "file")) var data: String
    @Option(help: ArgumentHelp("Output data (.csv or .npy).", valueName: "file")) var out: String
    @OptionGroup var threadOption: ThreadOption

    mutating func run() throws {
        try Transform.run(model: modelOption.path, input: data, output: out, threads: threadOption, forward: false)
    }
}

enum Transform {
    static func run(model: String, input: String, output: String, threads: ThreadOption, forward: Bool) throws {
        let ctx = try RunContext()
        let (loaded, x) = ctx.setUp { () throws -> (LoadedModel, Matrix<Float>) in
            try OutputFile.check(output)
            let loaded = try LoadedModel(path: model, ctx: ctx, threads: try threads.resolved())
            let x = try DataSpec(dataset: nil, file: input).load()
            try loaded.checkWidth(x.rows, x.columns, source: input)
            return (loaded, x.converted())
        }
        do {
            let D = loaded.dim, p = loaded.parameters.base
            let result: [Float]
            if forward {
                let u = loaded.model.normalizer.normalize(x)
                result = try u.values.withUnsafeBufferPointer { try loaded.evaluator.encode($0.baseAddress!, rows: x.rows, parameters: p).z }
            } else {
                let u = try x.values.withUnsafeBufferPointer { try loaded.evaluator.decode($0.baseAddress!, rows: x.rows, parameters: p) }
                result = loaded.model.normalizer.denormalize(Matrix(rows: x.rows, columns: D, values: u)).values
            }
            if ctx.isRoot {
                try OutputFile.write(result, rows: x.rows, columns: D, to: output)
                FileHandle.standardError.write(Data("wrote \(x.rows) rows to \(output)\n".utf8))
            }
        } catch { ctx.fail(error) }
        ctx.finish()
    }
}

/// `flow-mpirun inspect`: what a checkpoint holds.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show a checkpoint's configuration, parameter count and metadata.")
    @OptionGroup var modelOption: ModelOption
    @Flag(help: "Print one JSON object.") var json = false

    struct Result: Codable {
        var file: String
        var model: FlowConfiguration
        var parameters: Int
        var training: TrainingConfiguration?
        var step: Int?
        var epoch: Int?
        var optimizerStep: Int?
        var bestValidationNLL: Double?
        var bestEpoch: Int?
        var metadata: [String: String]
        enum CodingKeys: String, CodingKey {
            case file, model, parameters, training, step, epoch, optimizerStep = "optimizer_step",
                 bestValidationNLL = "best_validation_nll", bestEpoch = "best_epoch", metadata
        }
    }

    mutating func run() throws {
        let path = modelOption.path
        let checkpoint: Checkpoint
        do { checkpoint = try Checkpoint.load(path: path) } catch {
            FileHandle.standardError.write(Data("error: \(RunContext.message(of: error))\n".utf8))
            throw ExitCode.failure
        }
        let s = checkpoint.state
        var epoch: Int?
        if let s, let t = checkpoint.training, let spec = checkpoint.metadata["data"].flatMap({ try? JSONDecoder().decode(DataSpec.self, from: Data($0.utf8)) }),
           let rows = try? spec.load().rows {
            let train = rows - Int((Double(rows) * t.validationFraction).rounded())
            epoch = s.step / max(1, (train + t.batchSize - 1) / t.batchSize)
        }
        let r = Result(file: path, model: checkpoint.model.configuration, parameters: checkpoint.model.network.layout.parameterCount,
                       training: checkpoint.training, step: s?.step, epoch: epoch, optimizerStep: s?.optimizerStep,
                       bestValidationNLL: s?.bestValidationNLL, bestEpoch: s?.bestEpoch, metadata: checkpoint.metadata)
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try e.encode(r), as: UTF8.self))
            return
        }
        print("checkpoint: \(path)")
        print("model: \(Checkpoint.describe(r.model)); \(r.parameters) parameters")
        print("masks: \(r.model.masks().map { $0.map(String.init).joined() }.joined(separator: " "))")
        if let t = r.training {
            print("training: \(t.epochs) epochs, batch \(t.batchSize), lr \(t.learningRate), l2 \(t.l2), seed \(t.seed)\(t.reproducible ? ", exact mode" : "")")
        }
        if let s { print("position: step \(s.step)\(epoch.map { " (epoch \($0))" } ?? ""), \(s.optimizerStep) Adam updates") }
        if let best = r.bestValidationNLL { print("best validation NLL: \(best) nats at epoch \(r.bestEpoch ?? 0)") }
        for (k, v) in r.metadata.sorted(by: { $0.key < $1.key }) { print("metadata \(k): \(v)") }
    }
}
