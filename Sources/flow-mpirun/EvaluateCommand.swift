import ArgumentParser
import FlowCore
import FlowDistributed
import Foundation

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
            own validation) and the NLL is that of the dequantised data, whose bits/dim bound the discrete data's. \
            A conditional model reports the conditional NLL of p(x | c): c comes from --context FILE (one row per \
            row, or one row for all), else from the data as the model was trained (the last K columns of --data; \
            the class of a labelled data set, or of a file's last column).
            """)
    @OptionGroup var modelOption: ModelOption
    @OptionGroup var data: DataOptions
    @Option(help: "Without --data/--dataset: which split of the run's data: train | validation | all | both, or test: the data set's official test set (fashion-mnist; there the default, else validation). --limit-rows N scores the first N rows of it.") var split: SplitName?
    @Option(name: .customLong("noise-seed"), help: "Seed of the dequantisation noise (default: the run's seed).") var noiseSeed: UInt64?
    @Flag(name: .customLong("per-class"), help: "Also report bits/dim per class (bundled labelled data sets).") var perClass = false
    @Flag(help: "Also report diagonal and full-covariance Gaussian baselines, fitted on the run's training split in the same preprocessed space.")
    var baseline = false
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var contextOption: ContextOption
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
        /// What a conditional model's NLL is conditioned on (nil: unconditional).
        var conditionedOn: String?
        /// A class-conditional model's marginal NLL −log Σ_c π_c p(x | c) (nats), comparable with an unconditional
        /// model's NLL.
        var marginalNLL: Double?
        /// Where the class weights π_c of ``marginalNLL`` come from.
        var classWeights: String?
        enum CodingKeys: String, CodingKey {
            case rows, dim, data, units, preprocessing, meanLogLikelihood = "mean_log_likelihood", nll, bitsPerDim = "bits_per_dim",
                 roundTripMaxAbsError = "round_trip_max_abs_error", perClass = "per_class", baseline, conditionedOn = "conditioned_on",
                 marginalNLL = "marginal_nll", classWeights = "class_weights"
        }
    }

    /// A data set to evaluate: rows in data units, optional labels, a name; a conditional model's contexts.
    struct Part {
        var name: String
        var x: Matrix<Double>
        var labels: [Int]?
        /// c `[rows, K]` or `[1, K]` (data units) for a conditional model.
        var context: Matrix<Float>?
        /// Where c came from ("the last 2 columns", "--context c.csv", "the class").
        var contextSource: String?
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
            if c.perClass, let file = c.contextOption.context {
                throw ValidationError("--per-class groups the rows by the data's own classes, but --context \(file) gives the contexts: drop one of them")
            }
            if c.perClass, let unlabelled = parts.first(where: { $0.labels == nil }) {
                throw ValidationError("--per-class needs labelled data (the bundled digits, wine, breast-cancer; moons, circles or a file's last column for a class-conditional model); \(unlabelled.name) has no labels")
            }
            for part in parts { try loaded.model.configuration.preprocessing.validateDiscrete(part.x) }
            // Every rank must score the same rows (a --data path may be spelt per host).
            ctx.sharedContent.append("evaluate" + (c.noiseSeed.map { " --noise-seed \($0)" } ?? "") + (c.perClass ? " --per-class" : "")
                + (c.baseline ? " --baseline" : "") + (c.json ? " --json" : ""))
            ctx.sharedContent += parts.map { "data " + TrainingRun.hex($0.x.fingerprint) + ($0.context.map { ", context " + TrainingRun.hex($0.fingerprint) } ?? "") }
            return (loaded, parts)
        }
        do {
            let seed = noiseSeed ?? loaded.checkpoint.training?.seed ?? 0
            var results = try parts.map { try evaluate(loaded, $0, noiseSeed: seed) }
            if baseline {
                let gaussians: (diagonal: GaussianBaseline, full: GaussianBaseline, name: String)
                do { gaussians = try fitBaselines(loaded, noiseSeed: seed) } catch let error as NormalizerError {
                    throw ValidationError("--baseline: the Gaussian baselines cannot be fitted on the run's training split: \(error.message); evaluate without --baseline")
                }
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
                    if let c = r.conditionedOn { text += "\nconditional: log p(x | c), c from \(c)" }
                    if let m = r.marginalNLL {
                        text += String(format: "\nmarginal NLL −log Σ_c π_c p(x | c): %.6f nats (%.6f bits/dim; π_c: %@)", m, m / (Double(r.dim) * log(2.0)), r.classWeights ?? "")
                    }
                    if let b = r.baseline {
                        text += String(format: "\n\(r.conditionedOn == nil ? "Gaussian baselines" : "unconditional Gaussian baselines of x") (fitted on %@): diagonal %.4f nats (%.4f bits/dim), full covariance %.4f nats (%.4f bits/dim)",
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
        let u = loaded.inputRows(z.converted(to: Float.self), context: part.context)
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
        let marginal = try marginalNLL(loaded, rows: z.converted(to: Float.self), logDetShift: (0..<n).map { normLogDet + preLogDet[$0] })
        // Round trip in data space (the dequantised values for a dequantising model).
        let (latent, _) = try u.values.withUnsafeBufferPointer { try loaded.evaluator.encode($0.baseAddress!, rows: n, parameters: p) }
        let back = try latent.withUnsafeBufferPointer { z in
            try part.context.map { c in
                try c.withContextRows { try loaded.evaluator.decode(z.baseAddress!, context: $0, rows: n, parameters: p) }
            } ?? loaded.evaluator.decode(z.baseAddress!, rows: n, parameters: p)
        }
        let xBack = pre.dataSpace(Matrix(rows: n, columns: D, values: back))
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
                      roundTripMaxAbsError: worst, perClass: classes, conditionedOn: part.contextSource,
                      marginalNLL: marginal?.nll, classWeights: marginal?.weights)
    }

    /// A class-conditional model's marginal NLL −(1/n) Σ_rows log Σ_c π_c p(x | c) (nats) on the flow's input rows `u`
    /// `[n, D]` (after the preprocessing; `logDetShift` per row adds the normaliser's and preprocessing's log-dets),
    /// with π_c the class frequencies of the run's training split as `train` recorded them in the checkpoint
    /// (metadata `class_weights`; uniform for a checkpoint without them); nil for other models.
    func marginalNLL(_ loaded: LoadedModel, rows u: Matrix<Float>, logDetShift: [Double]) throws -> (nll: Double, weights: String)? {
        guard let classes = loaded.model.configuration.contextClasses else { return nil }
        var weights = [Double](repeating: 1 / Double(classes), count: classes), source = "uniform (the checkpoint records no class weights)"
        if let text = loaded.checkpoint.metadata["class_weights"], let recorded = try? JSONDecoder().decode([Double].self, from: Data(text.utf8)),
           recorded.count == classes, recorded.allSatisfy({ $0 >= 0 && $0.isFinite }), recorded.contains(where: { $0 > 0 }) {
            weights = recorded
            source = "the training split's class frequencies"
        }
        let n = u.rows
        let mixture = try u.values.withUnsafeBufferPointer {
            try loaded.evaluator.classMixtureLogDensity($0.baseAddress!, rows: n, weights: weights, parameters: loaded.parameters.base)
        }
        return (-(0..<n).reduce(0.0) { $0 + mixture[$1] + logDetShift[$1] } / Double(n), source)
    }

    /// Diagonal and full-covariance Gaussians fitted on the run's training split, after the model's
    /// preprocessing (one fixed dequantisation draw).
    func fitBaselines(_ loaded: LoadedModel, noiseSeed: UInt64) throws -> (diagonal: GaussianBaseline, full: GaussianBaseline, name: String) {
        guard let spec = loaded.dataSpec, let training = loaded.checkpoint.training else {
            throw ValidationError("--baseline needs a checkpoint written by train (it fits the Gaussians on the run's training split)")
        }
        let raw = try spec.loadRows().x
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
        // --limit-rows alone caps the run's own test set.
        let onlyLimit = data.limitRows != nil && data.dataset == nil && data.data == nil && data.samples == nil && data.noise == nil && data.dataSeed == nil
        if data.given && !onlyLimit {
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
            } else if let name = data.dataset, let own, own.dataset == name, own.file == nil, own.bundled == nil {
                // The run's own synthetic set by name: its distribution (--noise, --samples) unless given again.
                var distribution = own
                distribution.limitRows = nil
                spec = try data.spec(defaultSeed: fresh, fallback: distribution)
                if data.dataSeed == nil { spec.seed = fresh }
            } else {
                spec = try data.spec(defaultSeed: fresh)
            }
            return [try withContext(Part(name: spec.summary, x: Matrix(rows: 0, columns: 0, values: []), isFile: spec.file != nil),
                                    spec: spec, loaded)]
        }
        guard let spec = loaded.dataSpec, let training = loaded.checkpoint.training else {
            throw ValidationError("the checkpoint does not record its data: give --data FILE or --dataset NAME")
        }
        if let file = contextOption.context {
            throw ValidationError("--context \(file) applies with --data or --dataset: the run's own splits carry their own contexts")
        }
        if let test = try testSet(spec, loaded) { return [test] }
        if onlyLimit {
            throw ValidationError("--limit-rows without --data or --dataset caps the official test set (--split test, fashion-mnist's); "
                + "it does not apply to the run's own \(split?.rawValue ?? "validation") split")
        }
        let loadedRows = try spec.loadRows()
        // The run's own data must be what it was trained on (the splits are drawn by row index).
        if let recorded = loaded.checkpoint.metadata["data_fingerprint"], recorded != TrainingRun.hex(loadedRows.rows.fingerprint) {
            throw FlowIOError(path: spec.file ?? spec.summary, message: "differs from the data the run was trained on (fingerprint \(TrainingRun.hex(loadedRows.rows.fingerprint)), the checkpoint records \(recorded)); --split scores the run's own data: restore the file, or give --data FILE")
        }
        let raw = loadedRows.x, labels = loadedRows.labels
        let s = DataSplit(rows: raw.rows, validationFraction: training.validationFraction, seed: training.seed)
        func part(_ rows: [Int], _ name: String) throws -> Part {
            try withContext(Part(name: "\(spec.summary), \(name) split", x: raw.gatherRows(rows), labels: labels.map { l in rows.map { l[$0] } }),
                            loadedRows.contextFeatures > 0 ? loadedRows.context.gatherRows(rows) : nil, loaded)
        }
        switch split ?? .validation {
        case .test: preconditionFailure("handled by testSet")
        case .train: return [try part(s.train, "train")]
        case .validation:
            guard !s.validation.isEmpty else { throw ValidationError("the run has no validation split; use --split train or all") }
            return [try part(s.validation, "validation")]
        case .both:
            guard !s.validation.isEmpty else { throw ValidationError("the run has no validation split; use --split train or all") }
            return [try part(s.train, "train"), try part(s.validation, "validation")]
        case .all:
            return [try withContext(Part(name: spec.summary, x: raw, labels: labels), loadedRows.contextFeatures > 0 ? loadedRows.context : nil, loaded)]
        }
    }

    /// The official test set of the run's data set (fashion-mnist) for `--split test`, or by default when it has one;
    /// nil otherwise. `--limit-rows N` keeps its first N rows; a class-conditional model reads their labels.
    /// - Throws: `ValidationError` for `--split test` on a data set without one; ``FlowIOError`` for missing files.
    func testSet(_ spec: DataSpec, _ loaded: LoadedModel) throws -> Part? {
        let hasTest = spec.file == nil && spec.bundled == .fashionMNIST
        guard split == .test || (split == nil && hasTest) else { return nil }
        guard hasTest, let bundled = spec.bundled, let test = try bundled.loadTest() else {
            throw ValidationError("--split test: \(spec.summary) has no official test set (fashion-mnist has); use train, validation, all or both")
        }
        let n = min(test.features.rows, data.limitRows ?? test.features.rows)
        let x = test.features.gatherRows(0..<n), labels = Array(test.labels[0..<n])
        let name = "\(bundled.rawValue) test set" + (n < test.features.rows ? ", first \(n) rows" : "")
        let context = loaded.model.configuration.contextClasses.map { FlowRows.oneHot(labels, classes: $0) }
        return try withContext(Part(name: name, x: x, labels: labels), context, loaded)
    }

    /// `part` with the rows of `spec`, split into x and c as the model was trained (unless --context gives c), and a
    /// conditional model's contexts.
    func withContext(_ part: Part, spec: DataSpec, _ loaded: LoadedModel) throws -> Part {
        var spec = spec
        spec.condition = contextOption.context == nil ? loaded.conditioning : nil
        let flowRows: FlowRows
        do {
            flowRows = try spec.loadRows(classes: loaded.model.configuration.contextClasses)
        } catch let error as FlowConfigurationError where error.field == "context-columns" || error.field == "condition" {
            let source = loaded.model.configuration.contextClasses != nil ? "the class (of a labelled data set, or a file's last column)"
                : "the last \(loaded.contextFeatures) columns of the data"
            throw ValidationError("the model is \(loaded.conditionalDescription), read from \(source): \(error.message); or give the contexts with --context FILE")
        }
        var p = part
        p.name = spec.summary
        p.x = flowRows.x
        p.labels = flowRows.labels
        return try withContext(p, flowRows.contextFeatures > 0 ? flowRows.context : nil, loaded)
    }

    /// `part` with its contexts: `fromData` (the data's own context columns or one-hot class, checked against the
    /// model's width), or --context FILE.
    func withContext(_ part: Part, _ fromData: Matrix<Double>?, _ loaded: LoadedModel) throws -> Part {
        var p = part
        guard loaded.contextFeatures > 0 || contextOption.context != nil else { return p }
        if let file = contextOption.context {
            p.context = try loaded.context(file: file, rows: part.x.rows, rowsOf: part.name)
            p.contextSource = "--context \(file)"
        } else if let c = fromData {
            // A file's class column is one-hot at the model's width already (loadRows(classes:)).
            guard c.columns == loaded.contextFeatures else {
                throw FlowIOError(path: p.name, message: "has \(c.columns) context columns; the model's context has K = \(loaded.contextFeatures)")
            }
            p.context = c.converted()
            p.contextSource = loaded.model.configuration.contextClasses != nil ? "the class" : "the last \(c.columns) column\(c.columns == 1 ? "" : "s")"
        } else {
            _ = try loaded.context(file: nil, rows: part.x.rows, rowsOf: part.name)  // throws: a context is needed
        }
        return p
    }
}
