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

    /// The flow's input space → data space: undo the preprocessing (Float `[n, D]`).
    func dataSpace(_ x: [Float]) -> Matrix<Float> {
        model.configuration.preprocessing.inverse(Matrix(rows: x.count / dim, columns: dim, values: x).converted(to: Double.self)).converted()
    }

    /// Checks that `x` has the model's width.
    func checkWidth(_ rows: Int, _ columns: Int, source: String) throws {
        guard columns == dim else {
            throw FlowIOError(path: source, message: "has \(columns) column\(columns == 1 ? "" : "s"); the model expects D = \(dim)")
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

    /// Bytes held per output value at the peak of `sample` (the samples, their gathered copy, the data-space
    /// conversion through `Double`, the CSV text): about 18 measured; `-n` is refused when this exceeds memory.
    static let bytesPerValue = 20

    mutating func run() throws {
        let ctx = try RunContext()
        let c = self
        let loaded = ctx.setUp { () throws -> LoadedModel in
            if c.n < 1 { throw ValidationError("invalid -n \(c.n): need at least 1 sample") }
            if !(c.temperature >= 0) || !c.temperature.isFinite {
                throw ValidationError("invalid --temperature \(c.temperature): must be finite and ≥ 0")
            }
            try OutputFile.check(c.out)
            let loaded = try LoadedModel(path: try c.modelOption.path, ctx: ctx, threads: try c.threadOption.resolved())
            try c.checkMemory(dim: loaded.dim)
            return loaded
        }
        do {
            let u = try loaded.evaluator.sample(count: n, seed: seed, temperature: temperature, parameters: loaded.parameters.base)
            let x = loaded.dataSpace(u)
            if let bad = NonFiniteRows(x.values, columns: loaded.dim) {
                NonFiniteResult.refuse(NonFiniteResult(description: "\(bad.count) of \(n) samples are not finite (\(cause(loaded))): nothing written"), ctx)
            }
            if ctx.isRoot {
                try OutputFile.write(x.values, rows: n, columns: loaded.dim, to: out)
                FileHandle.standardError.write(Data("wrote \(n) samples (D = \(loaded.dim), τ = \(temperature), seed \(seed)) to \(out)\n".utf8))
            }
        } catch { ctx.fail(error) }
        ctx.finish()
    }

    /// Refuses an `-n` whose samples would not fit in the machine's physical memory.
    func checkMemory(dim: Int) throws {
        let physical = MachineMemory.physicalBytes
        let (values, overflow) = n.multipliedReportingOverflow(by: dim)
        let (bytes, overflow2) = values.multipliedReportingOverflow(by: Self.bytesPerValue)
        guard overflow || overflow2 || bytes > physical else { return }
        let needed = overflow || overflow2 ? "more than \(Int.max)" : "about \(bytes)"
        throw ValidationError("invalid -n \(n): \(n) samples of D = \(dim) need \(needed) bytes of memory; this machine has \(physical)")
    }

    /// Why samples came out non-finite: a temperature that overflows the Float latents, else the model's g(z).
    func cause(_ loaded: LoadedModel) -> String {
        // |z| of N(0, 1) draws stays below ~6; τ·z beyond Float's range is ±∞ before the model sees it.
        if temperature * 6 > Double(Float.greatestFiniteMagnitude) { return "--temperature \(temperature) overflows" }
        let largest = loaded.checkpoint.model.parameters.reduce(Float(0)) { max($0, abs($1)) }
        return "the model's g(z) overflows at --temperature \(temperature)" + (largest > 1e6 ? "; its largest |parameter| is \(largest)" : "")
    }
}

/// `flow-mpirun evaluate`: log-likelihood, NLL, bits/dim and round-trip error on a file or data set.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate", abstract: "Report log-likelihood, NLL (nats, data units), bits/dim and round-trip error.",
        discussion: """
            Data: --data FILE, or --dataset NAME [--samples N --data-seed S] for synthetic points (without \
            --data-seed: the seed after the run's own data seed, i.e. points it did not train on); without \
            either, the run's own data (stored in the checkpoint) and --split train|validation|all|both (default \
            validation). bits/dim = NLL / (D·ln 2). With a dequantising model (digits), the data are dequantised with \
            a fixed noise draw (--noise-seed, default the run's seed: the validation split then matches training's \
            own validation) and the NLL is that of the dequantised data, whose bits/dim bound the discrete data's.
            """)
    @OptionGroup var modelOption: ModelOption
    @OptionGroup var data: DataOptions
    @Option(help: "Without --data/--dataset: which split of the run's data: train | validation | all | both (default: validation).") var split: SplitName?
    @Option(name: .customLong("noise-seed"), help: "Seed of the dequantisation noise (default: the run's seed).") var noiseSeed: UInt64?
    @Flag(name: .customLong("per-class"), help: "Also report bits/dim per class (bundled labelled data sets).") var perClass = false
    @Flag(help: "Also report diagonal and full-covariance Gaussian baselines, fitted on the run's training split in the same preprocessed space.")
    var baseline = false
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var threadOption: ThreadOption

    struct ClassResult: Codable {
        var label: Int
        var rows: Int
        var nll: Double
        var bitsPerDim: Double
        enum CodingKeys: String, CodingKey { case label = "class", rows, nll, bitsPerDim = "bits_per_dim" }
    }

    struct BaselineResult: Codable {
        var diagonalNLL: Double
        var diagonalBitsPerDim: Double
        var fullNLL: Double
        var fullBitsPerDim: Double
        var fittedOn: String
        enum CodingKeys: String, CodingKey {
            case diagonalNLL = "gaussian_diagonal_nll", diagonalBitsPerDim = "gaussian_diagonal_bits_per_dim",
                 fullNLL = "gaussian_full_nll", fullBitsPerDim = "gaussian_full_bits_per_dim", fittedOn = "fitted_on"
        }
    }

    struct Result: Codable {
        var rows: Int
        var dim: Int
        var data: String
        var units: String
        var preprocessing: String
        var meanLogLikelihood: Double
        var nll: Double
        var bitsPerDim: Double
        var roundTripMaxAbsError: Double
        var perClass: [ClassResult]?
        var baseline: BaselineResult?
        enum CodingKeys: String, CodingKey {
            case rows, dim, data, units, preprocessing, meanLogLikelihood = "mean_log_likelihood", nll, bitsPerDim = "bits_per_dim",
                 roundTripMaxAbsError = "round_trip_max_abs_error", perClass = "per_class", baseline
        }
    }

    /// A data set to evaluate: rows in data units, optional labels, a name.
    struct Part {
        var name: String
        var x: Matrix<Double>
        var labels: [Int]?
        /// `name` is the path of a `--data` file.
        var isFile = false
    }

    mutating func run() throws {
        let ctx = try RunContext()
        let c = self
        let (loaded, parts) = ctx.setUp { () throws -> (LoadedModel, [Part]) in
            let loaded = try LoadedModel(path: try c.modelOption.path, ctx: ctx, threads: try c.threadOption.resolved())
            let parts = try c.loadData(loaded)
            for part in parts { try loaded.checkWidth(part.x.rows, part.x.columns, source: part.name) }
            if c.perClass, let unlabelled = parts.first(where: { $0.labels == nil }) {
                throw ValidationError("--per-class needs labelled data (the bundled digits, wine, breast-cancer); \(unlabelled.name) has no labels")
            }
            for part in parts { try loaded.model.configuration.preprocessing.validateDiscrete(part.x) }
            return (loaded, parts)
        }
        do {
            let seed = noiseSeed ?? loaded.checkpoint.training?.seed ?? 0
            var results = try parts.map { try evaluate(loaded, $0, noiseSeed: seed) }
            if baseline {
                let gaussians = try fitBaselines(loaded, noiseSeed: seed)
                for (k, part) in parts.enumerated() { results[k].baseline = try score(gaussians, loaded, part, noiseSeed: seed) }
            }
            if json {
                let e = JSONEncoder()
                e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                let text: String
                if results.count == 1 {
                    text = String(decoding: try e.encode(results[0]), as: UTF8.self)
                } else {
                    text = String(decoding: try e.encode(Dictionary(uniqueKeysWithValues: zip(parts.map { $0.name.components(separatedBy: ", ").last!.replacingOccurrences(of: " split", with: "") }, results))), as: UTF8.self)
                }
                ctx.say(text)
            } else {
                for r in results {
                    var text = """
                        data: \(r.data) (\(r.rows) rows, D = \(r.dim))
                        preprocessing: \(r.preprocessing)
                        mean log-likelihood: \(String(format: "%.6f", r.meanLogLikelihood)) nats per row (\(r.units))
                        NLL: \(String(format: "%.6f", r.nll)) nats (\(r.units))
                        bits/dim: \(String(format: "%.6f", r.bitsPerDim))
                        round-trip max |decode(encode(x)) − x|: \(String(format: "%.3g", r.roundTripMaxAbsError))
                        """
                    if let b = r.baseline {
                        text += String(format: "\nGaussian baselines (fitted on %@): diagonal %.4f nats (%.4f bits/dim), full covariance %.4f nats (%.4f bits/dim)",
                                       b.fittedOn, b.diagonalNLL, b.diagonalBitsPerDim, b.fullNLL, b.fullBitsPerDim)
                    }
                    for k in r.perClass ?? [] {
                        text += String(format: "\n  class %d: %d rows, NLL %.4f nats, %.4f bits/dim", k.label, k.rows, k.nll, k.bitsPerDim)
                    }
                    ctx.say(text)
                }
            }
        } catch let error as NonFiniteResult {
            NonFiniteResult.refuse(error, ctx)
        } catch { ctx.fail(error) }
        ctx.finish()
    }

    /// Log-likelihoods of every row (sharded over ranks and workers) and the round trip.
    func evaluate(_ loaded: LoadedModel, _ part: Part, noiseSeed: UInt64) throws -> Result {
        let model = loaded.model
        let pre = model.configuration.preprocessing
        let D = loaded.dim, n = part.x.rows
        let noise = pre == .none ? nil : Preprocessing.noise(seed: noiseSeed, substream: Preprocessing.evaluationSubstream, rows: n, dim: D)
        let (z, preLogDet) = try pre.forward(part.x, noise: noise)
        let u = z.converted(to: Float.self)
        let p = loaded.parameters.base
        let ld = try u.values.withUnsafeBufferPointer { try loaded.evaluator.logDensity($0.baseAddress!, rows: n, parameters: p) }
        let normLogDet = model.network.constantLogDet
        let ll = (0..<n).map { ld[$0] + normLogDet + preLogDet[$0] }
        if let bad = NonFiniteRows(ll, columns: 1) {
            let value = ll[bad.first]
            let why = value == -.infinity ? "the model's density underflows there" : "the model's density overflows there"
            let at = NonFiniteRows.location(of: bad.first, in: part.name, isFile: part.isFile)
            throw NonFiniteResult(description: "\(at): log p(x) is \(value.isNaN ? "NaN" : "\(value)") (\(bad.count) of \(n) rows): "
                + "\(why): no NLL reported")
        }
        let meanLL = ll.reduce(0, +) / Double(n)
        // Round trip in data space (the dequantised values for a dequantising model).
        let (latent, _) = try u.values.withUnsafeBufferPointer { try loaded.evaluator.encode($0.baseAddress!, rows: n, parameters: p) }
        let back = try latent.withUnsafeBufferPointer { try loaded.evaluator.decode($0.baseAddress!, rows: n, parameters: p) }
        let xBack = pre.inverse(Matrix(rows: n, columns: D, values: back).converted(to: Double.self))
        if let bad = NonFiniteRows(xBack.values, columns: D) {
            let at = NonFiniteRows.location(of: bad.first, in: part.name, isFile: part.isFile)
            throw NonFiniteResult(description: "\(at): decode(encode(x)) is not finite (\(bad.count) of \(n) rows): "
                + "the model's g(z) overflows there: no NLL reported")
        }
        var worst = 0.0
        for e in 0..<(n * D) { worst = max(worst, abs(xBack.values[e] - (part.x.values[e] + (noise?[e] ?? 0)))) }
        let bitsDivisor = Double(D) * log(2.0)
        var classes: [ClassResult]?
        if perClass, let labels = part.labels {
            classes = Array(Set(labels)).sorted().map { c in
                let rows = labels.indices.filter { labels[$0] == c }
                let nll = -rows.reduce(0.0) { $0 + ll[$1] } / Double(rows.count)
                return ClassResult(label: c, rows: rows.count, nll: nll, bitsPerDim: nll / bitsDivisor)
            }
        }
        return Result(rows: n, dim: D, data: part.name, units: pre.isDiscrete ? "dequantised data units" : "data units",
                      preprocessing: pre.summary, meanLogLikelihood: meanLL, nll: -meanLL, bitsPerDim: -meanLL / bitsDivisor,
                      roundTripMaxAbsError: worst, perClass: classes)
    }

    /// Diagonal and full-covariance Gaussians fitted on the run's training split, after the model's
    /// preprocessing (one fixed dequantisation draw).
    func fitBaselines(_ loaded: LoadedModel, noiseSeed: UInt64) throws -> (diagonal: GaussianBaseline, full: GaussianBaseline, name: String) {
        guard let spec = loaded.dataSpec, let training = loaded.checkpoint.training else {
            throw ValidationError("--baseline needs a checkpoint written by train (it fits the Gaussians on the run's training split)")
        }
        let raw = try spec.load()
        let s = DataSplit(rows: raw.rows, validationFraction: training.validationFraction, seed: training.seed)
        let x = raw.gatherRows(s.train)
        let pre = loaded.model.configuration.preprocessing
        let noise = pre == .none ? nil
            : Preprocessing.noise(seed: noiseSeed, substream: Preprocessing.evaluationSubstream - 1, rows: x.rows, dim: x.columns)
        let (z, _) = try pre.forward(x, noise: noise)
        return (try GaussianBaseline(fitting: z, diagonal: true), try GaussianBaseline(fitting: z, diagonal: false),
                "\(spec.summary), training split")
    }

    /// The baselines' NLL on `part`, with the same dequantisation noise and preprocessing log-det as the flow.
    func score(_ g: (diagonal: GaussianBaseline, full: GaussianBaseline, name: String), _ loaded: LoadedModel, _ part: Part,
               noiseSeed: UInt64) throws -> BaselineResult {
        let pre = loaded.model.configuration.preprocessing
        let n = part.x.rows, D = part.x.columns
        let noise = pre == .none ? nil : Preprocessing.noise(seed: noiseSeed, substream: Preprocessing.evaluationSubstream, rows: n, dim: D)
        let (z, preLogDet) = try pre.forward(part.x, noise: noise)
        func nll(_ gaussian: GaussianBaseline) -> Double {
            let ld = gaussian.logDensity(z)
            return -(0..<n).reduce(0.0) { $0 + ld[$1] + preLogDet[$1] } / Double(n)
        }
        let bits = Double(D) * log(2.0)
        let (d, f) = (nll(g.diagonal), nll(g.full))
        guard d.isFinite && f.isFinite else {
            throw NonFiniteResult(description: "\(part.name): the Gaussian baselines' NLL is not finite (diagonal \(d), full covariance \(f)): "
                + "their density overflows or underflows there: no NLL reported")
        }
        return BaselineResult(diagonalNLL: d, diagonalBitsPerDim: d / bits, fullNLL: f, fullBitsPerDim: f / bits, fittedOn: g.name)
    }

    func loadData(_ loaded: LoadedModel) throws -> [Part] {
        if data.given {
            if let split {
                throw ValidationError("--split \(split.rawValue) chooses a split of the run's own data; it does not apply with --dataset, --data, --samples, --noise or --data-seed")
            }
            // Without --data-seed, fresh points: the seed after the one the run generated its data from.
            let own = loaded.dataSpec
            let fresh = (own?.seed ?? 0) &+ 1
            var spec: DataSpec
            if data.dataset == nil && data.data == nil {
                // Only --samples / --noise / --data-seed: new points from the run's own generator, which must be one.
                guard let own, own.file == nil, own.bundled == nil else {
                    let flag = data.samples != nil ? "--samples" : data.noise != nil ? "--noise" : "--data-seed"
                    throw ValidationError("\(flag) shapes the points of a synthetic data set, but this run was trained on \(own?.summary ?? "data it does not record"): give --dataset NAME, or --data FILE")
                }
                spec = try data.spec(defaultSeed: fresh, fallback: own)
                if data.dataSeed == nil { spec.seed = fresh }
            } else {
                spec = try data.spec(defaultSeed: fresh)
            }
            let (x, labels) = try spec.loadWithLabels()
            return [Part(name: spec.summary, x: x, labels: labels, isFile: spec.file != nil)]
        }
        guard let spec = loaded.dataSpec, let training = loaded.checkpoint.training else {
            throw ValidationError("the checkpoint does not record its data: give --data FILE or --dataset NAME")
        }
        let (raw, labels) = try spec.loadWithLabels()
        let s = DataSplit(rows: raw.rows, validationFraction: training.validationFraction, seed: training.seed)
        func part(_ rows: [Int], _ name: String) -> Part {
            Part(name: "\(spec.summary), \(name) split", x: raw.gatherRows(rows), labels: labels.map { l in rows.map { l[$0] } })
        }
        switch split ?? .validation {
        case .train: return [part(s.train, "train")]
        case .validation:
            guard !s.validation.isEmpty else { throw ValidationError("the run has no validation split; use --split train or all") }
            return [part(s.validation, "validation")]
        case .both:
            guard !s.validation.isEmpty else { throw ValidationError("the run has no validation split; use --split train or all") }
            return [part(s.train, "train"), part(s.validation, "validation")]
        case .all: return [Part(name: spec.summary, x: raw, labels: labels)]
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
        try Transform.run(model: modelOption, input: data, output: out, threads: threadOption, forward: true)
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
        try Transform.run(model: modelOption, input: data, output: out, threads: threadOption, forward: false)
    }
}

/// `encode` and `decode`: one file of rows through the model, refusing output that is not finite.
enum Transform {
    /// Maps `input` to `output` through f (`forward`) or f⁻¹.
    static func run(model: ModelOption, input: String, output: String, threads: ThreadOption, forward: Bool) throws {
        let ctx = try RunContext()
        let (loaded, x) = ctx.setUp { () throws -> (LoadedModel, Matrix<Float>) in
            try OutputFile.check(output)
            let loaded = try LoadedModel(path: try model.path, ctx: ctx, threads: try threads.resolved())
            let x = try DataSpec(dataset: nil, file: input).load()
            try loaded.checkWidth(x.rows, x.columns, source: input)
            return (loaded, x.converted())
        }
        do {
            let D = loaded.dim, p = loaded.parameters.base
            let result: [Float]
            if forward {
                let (pre, _) = try loaded.model.configuration.preprocessing.forward(x.converted(to: Double.self))
                let u = pre.converted(to: Float.self)
                result = try u.values.withUnsafeBufferPointer { try loaded.evaluator.encode($0.baseAddress!, rows: x.rows, parameters: p).z }
            } else {
                let u = try x.values.withUnsafeBufferPointer { try loaded.evaluator.decode($0.baseAddress!, rows: x.rows, parameters: p) }
                result = loaded.dataSpace(u).values
            }
            _ = D
            if let bad = NonFiniteRows(result, columns: D) {
                let map = forward ? "encoding" : "decoding"
                let why = forward ? "the model's f(x) overflows there" : "the model's g(z) overflows there"
                let at = NonFiniteRows.location(of: bad.first, in: input, isFile: true)
                NonFiniteResult.refuse(NonFiniteResult(description: "\(at): \(map) gives non-finite values "
                    + "(\(bad.count) of \(x.rows) rows): \(why): nothing written"), ctx)
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
        /// Epochs completed (the checkpoint may lie inside the next one).
        var epochsCompleted: Int?
        /// Steps per epoch, when the data can be loaded to count them.
        var stepsPerEpoch: Int?
        var optimizerStep: Int?
        var bestValidationNLL: Double?
        var bestEpoch: Int?
        var metadata: [String: String]
        enum CodingKeys: String, CodingKey {
            case file, model, parameters, training, step, epochsCompleted = "epochs_completed", stepsPerEpoch = "steps_per_epoch",
                 optimizerStep = "optimizer_step",
                 bestValidationNLL = "best_validation_nll", bestEpoch = "best_epoch", metadata
        }
    }

    mutating func run() throws {
        let path: String
        let checkpoint: Checkpoint
        do {
            path = try modelOption.path
            checkpoint = try Checkpoint.load(path: path)
        } catch {
            FileHandle.standardError.write(Data("error: \(RunContext.message(of: error))\n".utf8))
            throw ExitCode.failure
        }
        let s = checkpoint.state
        var epoch: Int?, perEpoch: Int?
        if let s, let t = checkpoint.training, let spec = checkpoint.metadata["data"].flatMap({ try? JSONDecoder().decode(DataSpec.self, from: Data($0.utf8)) }),
           let rows = try? spec.load().rows {
            let train = rows - Int((Double(rows) * t.validationFraction).rounded())
            perEpoch = max(1, (train + t.batchSize - 1) / t.batchSize)
            epoch = s.step / perEpoch!
        }
        let r = Result(file: path, model: checkpoint.model.configuration, parameters: checkpoint.model.network.layout.parameterCount,
                       training: checkpoint.training, step: s?.step, epochsCompleted: epoch, stepsPerEpoch: perEpoch,
                       optimizerStep: s?.optimizerStep,
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
        if let s {
            var at = ""
            if let epoch, let perEpoch {
                let within = s.step - epoch * perEpoch
                at = " (\(epoch) epoch\(epoch == 1 ? "" : "s") done" + (within > 0 ? ", \(within) of \(perEpoch) steps of epoch \(epoch + 1))" : ")")
            }
            print("position: step \(s.step)\(at), \(s.optimizerStep) Adam updates")
        }
        if let best = r.bestValidationNLL { print("best validation NLL: \(best) nats at epoch \(r.bestEpoch ?? 0)") }
        for (k, v) in r.metadata.sorted(by: { $0.key < $1.key }) { print("metadata \(k): \(v)") }
    }
}
