import Foundation

/// A model, and optionally the training state needed to resume, in one safetensors file.
///
/// Layout (all tensors little-endian; names as in shared/reference/README.md):
/// - `normalizer.mean`, `normalizer.std` F32 `[D]`; a conditional model also `context_normalizer.mean`,
///   `context_normalizer.std` F32 `[K]` (and its couplings' first weights are `[H, D + K]`)
/// - `couplings.{i}.mask` F32 `[D]`; `couplings.{i}.{s,t}.{j}.weight` F32 `[out, in]`, `….bias` F32 `[out]`;
///   `couplings.{i}.scale` F32 `[D]` with a learnable scale
/// - with training state: `optimizer.exp_avg.{name}`, `optimizer.exp_avg_sq.{name}` F32 (Adam's moments, PyTorch's
///   names), `training.step`, `training.optimizer_step` I64 `[]`, `training.best_validation_nll` F64 `[1]` and
///   `training.best_epoch` I64 `[1]` (absent when no validation has run); with a parameter average
///   (``ParameterAverage``) the `couplings.*` tensors hold the average θ̄ (the model to use) and the trained
///   parameters θ are `training.parameters.{name}` F32, with `training.average_step` I64 `[]`; mid-epoch,
///   `training.epoch_progress` F64 `[4]`; after non-finite steps skipped in a row, `training.nonfinite_streak`
///   I64 `[]`
/// - `__metadata__`: `format` = `realnvp-flow`, `format_version` = ``formatVersion``, `model` = the
///   ``FlowConfiguration`` as JSON, `training` = the ``TrainingConfiguration`` as JSON (when present), plus
///   caller entries (data description, preprocessing).
///
/// Writing is atomic (temporary file, fsync, rename): a reader never sees a partial checkpoint, and a
/// crash while writing leaves the previous file intact. Bytes are a pure function of the contents.
public struct Checkpoint: Sendable {
    /// Version of this layout; loading rejects other versions.
    public static let formatVersion = 1
    /// The `format` metadata value.
    public static let formatName = "realnvp-flow"

    /// The model (parameters and normaliser).
    public var model: RealNVP<Float>
    /// Optimiser state and position, when the file can resume training.
    public var state: TrainingState?
    /// The training configuration, when known.
    public var training: TrainingConfiguration?
    /// Additional `__metadata__` entries (strings).
    public var metadata: [String: String]

    /// A checkpoint.
    public init(model: RealNVP<Float>, state: TrainingState? = nil, training: TrainingConfiguration? = nil,
                metadata: [String: String] = [:]) {
        self.model = model
        self.state = state
        self.training = training
        self.metadata = metadata
    }

    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
    }

    /// The file's bytes.
    public func serialize() -> [UInt8] {
        var bytes: [UInt8] = []
        serialize(into: &bytes)
        return bytes
    }

    /// The file's bytes into `bytes` (its previous contents replaced, its storage reused: see
    /// ``SafeTensorsWriter/serialize(into:)``); the same bytes as ``serialize()``.
    public func serialize(into bytes: inout [UInt8]) {
        var w = SafeTensorsWriter()
        var meta = metadata
        meta["format"] = Self.formatName
        meta["format_version"] = String(Self.formatVersion)
        meta["model"] = Self.json(model.configuration)
        if let training { meta["training"] = Self.json(training) }
        w.metadata = meta
        let D = model.dim
        w.add(name: "normalizer.mean", shape: [D], floats: model.normalizer.mean)
        w.add(name: "normalizer.std", shape: [D], floats: model.normalizer.std)
        if model.contextFeatures > 0 {
            let K = model.contextFeatures
            w.add(name: "context_normalizer.mean", shape: [K], floats: model.contextNormalizer.mean)
            w.add(name: "context_normalizer.std", shape: [K], floats: model.contextNormalizer.std)
        }
        let layout = model.network.layout
        // The chain's tensors transform by transform, each coupling's mask (for readers) before its parameters.
        for (i, transform) in model.network.transforms.enumerated() {
            if let coupling = transform.base as? AffineCoupling<Float> {
                w.add(name: "\(coupling.name).mask", shape: [D], floats: coupling.mask)
            }
            for slot in layout.tensors where slot.transform == i {
                w.add(name: slot.name, shape: slot.shape, floats: model.parameters[slot.offset..<(slot.offset + slot.count)])
            }
        }
        if let s = state {
            for (prefix, values) in [("optimizer.exp_avg.", s.firstMoment), ("optimizer.exp_avg_sq.", s.secondMoment)] {
                for slot in layout.tensors {
                    w.add(name: prefix + slot.name, shape: slot.shape, floats: values[slot.offset..<(slot.offset + slot.count)])
                }
            }
            if s.averagedParameters != nil {
                for slot in layout.tensors {
                    w.add(name: "training.parameters." + slot.name, shape: slot.shape,
                          floats: s.parameters[slot.offset..<(slot.offset + slot.count)])
                }
                w.add(name: "training.average_step", shape: [], int64s: [Int64(s.averageStep)])
            }
            if !s.epochProgress.isEmpty {
                let p = s.epochProgress
                w.add(name: "training.epoch_progress", shape: [4], doubles: [p.nllRowSum, Double(p.rows), Double(p.skippedSteps), p.seconds])
            }
            if s.nonFiniteStreak > 0 {
                w.add(name: "training.nonfinite_streak", shape: [], int64s: [Int64(s.nonFiniteStreak)])
            }
            w.add(name: "training.step", shape: [], int64s: [Int64(s.step)])
            w.add(name: "training.optimizer_step", shape: [], int64s: [Int64(s.optimizerStep)])
            if let best = s.bestValidationNLL, let epoch = s.bestEpoch {
                w.add(name: "training.best_validation_nll", shape: [1], doubles: [best])
                w.add(name: "training.best_epoch", shape: [1], int64s: [Int64(epoch)])
            }
        }
        w.serialize(into: &bytes)
    }

    /// Writes the file atomically, after checking that every parameter and Adam moment is finite (and every
    /// second moment ≥ 0): a diverged run never replaces a good checkpoint.
    /// - Throws: ``FlowIOError`` naming the path when the contents are not finite or the file cannot be written
    ///   (the old file stays).
    public func write(to path: String) throws {
        try AtomicFile.write(checkedBytes(for: path), to: path)
    }

    /// The file's bytes for writing to `path` later (e.g. by a ``BackgroundFileWriter``), after the same checks as
    /// ``write(to:)``.
    /// - Throws: ``FlowIOError`` naming `path` when a parameter or moment is not finite.
    public func checkedBytes(for path: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        try checkedBytes(for: path, into: &bytes)
        return bytes
    }

    /// ``checkedBytes(for:)`` into `bytes`, reusing its storage (``serialize(into:)``): a trainer that keeps one
    /// byte array per file snapshots each checkpoint without allocating its megabytes again.
    /// - Throws: ``FlowIOError`` naming `path` when a parameter or moment is not finite (`bytes` is then unchanged).
    public func checkedBytes(for path: String, into bytes: inout [UInt8]) throws {
        if let problem = nonFiniteContent() {
            throw FlowIOError(path: path, message: "not written: \(problem) (training diverged: try a lower --lr or --clip-norm); the previous file, if any, is kept")
        }
        serialize(into: &bytes)
    }

    /// The first tensor holding a value that ``load(path:expecting:)`` would refuse, described, or nil.
    func nonFiniteContent() -> String? {
        let layout = model.network.layout
        func check(_ values: [Float], _ prefix: String, nonNegative: Bool = false) -> String? {
            guard let e = Self.firstRefused(values, nonNegative: nonNegative) else { return nil }
            let slot = layout.tensors.first { $0.offset <= e && e < $0.offset + $0.count }
            let name = slot.map { prefix + $0.name } ?? prefix
            return "tensor '\(name)' holds \(values[e]) at element \((slot.map { e - $0.offset }) ?? e)"
        }
        if let p = check(model.parameters, "") { return p }
        guard let s = state else { return nil }
        if s.averagedParameters != nil, let p = check(s.parameters, "training.parameters.") { return p }
        return check(s.firstMoment, "optimizer.exp_avg.") ?? check(s.secondMoment, "optimizer.exp_avg_sq.", nonNegative: true)
    }

    /// The index of the first value that is not finite (or, with `nonNegative`, is below 0), or nil; 16 lanes at a
    /// time (x·0 is 0 exactly when x is finite), since a checkpoint holds millions of values and is checked on the
    /// training thread.
    static func firstRefused(_ values: [Float], nonNegative: Bool) -> Int? {
        values.withUnsafeBufferPointer { v -> Int? in
            let zero = SIMD16<Float>(repeating: 0)
            var e = 0
            while e + 16 <= v.count {
                let x = UnsafeRawPointer(v.baseAddress! + e).loadUnaligned(as: SIMD16<Float>.self)
                if any(x * zero .!= zero) || nonNegative && any(x .< zero) { break }
                e += 16
            }
            while e < v.count {
                if !v[e].isFinite || nonNegative && v[e] < 0 { return e }
                e += 1
            }
            return nil
        }
    }

    /// Loads and validates a checkpoint.
    ///
    /// Checks the safetensors structure (header, offsets, dtypes), the format version, that the model
    /// configuration is valid, that every expected tensor is present with the right dtype and shape, and
    /// that no unexpected tensor is present.
    /// - Parameter expected: when given, the model configuration must equal it.
    /// - Throws: ``FlowIOError`` naming the file and what is wrong.
    public static func load(path: String, expecting expected: FlowConfiguration? = nil) throws -> Checkpoint {
        let file = try SafeTensorsFile(path: path)
        func fail(_ message: String) -> FlowIOError { FlowIOError(path: path, message: message) }
        guard file.metadata["format"] == formatName else {
            throw fail("not a flow-mpirun checkpoint (metadata \"format\" is \(file.metadata["format"].map { "\"\($0)\"" } ?? "missing"), expected \"\(formatName)\")")
        }
        guard file.metadata["format_version"] == String(formatVersion) else {
            throw fail("checkpoint format version \(file.metadata["format_version"] ?? "missing") is not supported (this build reads version \(formatVersion))")
        }
        /// The JSON metadata entry `key` as a `T`, or an error naming the key, the field and the value at fault.
        func decode<T: Decodable>(_ key: String, _ type: T.Type, what: String) throws -> T {
            do {
                return try JSONFile.decode(type, from: Data(file.metadata[key]!.utf8), path: path)
            } catch let error as FlowIOError {
                throw fail("metadata \"\(key)\" is not \(what): \(error.message)")
            }
        }
        guard file.metadata["model"] != nil else { throw fail("metadata \"model\" is missing") }
        let config = try decode("model", FlowConfiguration.self, what: "a model configuration")
        do { try config.validate() } catch { throw fail("metadata \"model\": \(error)") }
        if let expected, expected != config {
            throw fail("the checkpoint's model (\(describe(config))) differs from the expected one (\(describe(expected)))")
        }
        var training: TrainingConfiguration?
        if file.metadata["training"] != nil {
            let decoded = try decode("training", TrainingConfiguration.self, what: "a training configuration")
            // Every command trusts these values as train's flags were checked (steps per epoch, the split).
            do { try decoded.validate() } catch { throw fail("metadata \"training\": \(error)") }
            training = decoded
        }
        let D = config.dim
        var used = Set<String>()
        func tensor(_ name: String, _ shape: [Int]) throws -> [Float] {
            let info = try file.info(name)
            guard info.dtype == .F32 else { throw fail("tensor '\(name)' has dtype \(info.dtype.rawValue), expected F32") }
            guard info.shape == shape else {
                throw fail("tensor '\(name)' has shape \(info.shape), this model (\(describe(config))) expects \(shape)")
            }
            used.insert(name)
            return try file.floats(name)
        }
        let mean = try tensor("normalizer.mean", [D])
        let std = try tensor("normalizer.std", [D])
        for (j, s) in std.enumerated() where !(s > 0 && s.isFinite) {
            throw fail("normalizer.std[\(j)] = \(s): standard deviations must be positive and finite")
        }
        if mean.contains(where: { !$0.isFinite }) { throw fail("normalizer.mean has non-finite values") }
        // A conditional model's context normaliser (K is bounded by its tensor before anything is laid out).
        var contextNormalizer: Normalizer<Float>?
        if config.contextFeatures > 0 {
            let K = config.contextFeatures
            let cMean = try tensor("context_normalizer.mean", [K])
            let cStd = try tensor("context_normalizer.std", [K])
            for (k, s) in cStd.enumerated() where !(s > 0 && s.isFinite) {
                throw fail("context_normalizer.std[\(k)] = \(s): standard deviations must be positive and finite")
            }
            if cMean.contains(where: { !$0.isFinite }) { throw fail("context_normalizer.mean has non-finite values") }
            contextNormalizer = Normalizer(mean: cMean, std: cStd)
        }
        // The configuration comes from the file: its sizes are bounded by tensors the file holds before the
        // parameters are laid out (and allocated), reporting the same first error as the checks below would.
        // D is bounded by normalizer.mean above; the number of couplings by their masks (each a distinct tensor,
        // so a missing one turns up within file.tensors.count couplings: only that many masks are computed);
        // hidden and hidden_layers by coupling 0's s network (its tensors in layout order).
        // An image flow is bounded by the values the file holds: its parameters are among them.
        if let image = config.image {
            let held = file.tensors.values.reduce(0) { $0 + $1.byteRange.count } / MemoryLayout<Float>.size
            if image.parameterCount > held {
                throw fail("metadata \"model\" (\(describe(config))) needs \(image.parameterCount) parameters; the file holds \(held) values")
            }
        }
        var maskConfiguration = config
        maskConfiguration.couplings = config.image == nil ? min(config.couplings, file.tensors.count + 1) : 0
        let masks = maskConfiguration.masks()
        for k in 0..<(config.image == nil ? config.couplings : 0) {
            let m = try tensor("couplings.\(k).mask", [D])
            if m != masks[k].map(Float.init) {
                // Int(exactly:): the file's values may be NaN, ±Inf, fractional or beyond Int (Int(_:) would trap).
                let shown = m.map { Int(exactly: $0).map(String.init) ?? "\($0)" }.joined(separator: ", ")
                throw fail("tensor 'couplings.\(k).mask' = [\(shown)] does not match the configuration's mask \(masks[k])")
            }
        }
        func parameter(_ name: String, _ shape: [Int]) throws -> [Float] {
            let v = try tensor(name, shape)
            if let bad = v.firstIndex(where: { !$0.isFinite }) {
                throw fail("tensor '\(name)' has a non-finite value at element \(bad)")
            }
            return v
        }
        for j in 0...config.hiddenLayers where config.image == nil {
            let inputs = j == 0 ? config.inputWidth : config.hidden, outputs = j == config.hiddenLayers ? D : config.hidden
            _ = try parameter("couplings.0.s.\(j).weight", [outputs, inputs])
            _ = try parameter("couplings.0.s.\(j).bias", [outputs])
        }
        let normalizer = Normalizer(mean: mean, std: std)
        let network = try FlowNetwork<Float>(config, normalizer: normalizer, contextNormalizer: contextNormalizer)
        // A pass needs the workspace of at least one row: an image flow's sizes come from the file, so bound it.
        let rowBytes = Double(network.workspaceLayout.elementsPerRow) * 4
        if rowBytes > Double(MachineMemory.physicalBytes) / 4 {
            throw fail("metadata \"model\" (\(describe(config))) needs \(Int(rowBytes / 1e6)) MB of activations per row, more than a quarter of this machine's memory")
        }
        let layout = network.layout
        var params = [Float](repeating: 0, count: layout.storageCount)
        for slot in layout.tensors {
            let v = try parameter(slot.name, slot.shape)
            params.replaceSubrange(slot.offset..<(slot.offset + slot.count), with: v)
        }
        let model = RealNVP(network: network, parameters: params, normalizer: normalizer, contextNormalizer: contextNormalizer)
        var state: TrainingState?
        if file.tensors["training.step"] != nil {
            var m = [Float](repeating: 0, count: layout.storageCount), v = m
            for slot in layout.tensors {
                m.replaceSubrange(slot.offset..<(slot.offset + slot.count), with: try parameter("optimizer.exp_avg." + slot.name, slot.shape))
                let second = try parameter("optimizer.exp_avg_sq." + slot.name, slot.shape)
                if let bad = second.firstIndex(where: { $0 < 0 }) {
                    throw fail("tensor 'optimizer.exp_avg_sq.\(slot.name)' has a negative value at element \(bad) (a second moment is ≥ 0)")
                }
                v.replaceSubrange(slot.offset..<(slot.offset + slot.count), with: second)
            }
            func scalarInt(_ name: String, _ shape: [Int]) throws -> Int {
                let info = try file.info(name)
                guard info.dtype == .I64, info.shape == shape else {
                    throw fail("tensor '\(name)' must be I64 with shape \(shape), found \(info.dtype.rawValue) \(info.shape)")
                }
                used.insert(name)
                let value = try file.int64s(name)[0]
                guard value >= 0 else { throw fail("tensor '\(name)' = \(value) is negative") }
                return Int(value)
            }
            let step = try scalarInt("training.step", [])
            let optimizerStep = try scalarInt("training.optimizer_step", [])
            var best: Double?, bestEpoch: Int?
            if file.tensors["training.best_validation_nll"] != nil {
                let info = try file.info("training.best_validation_nll")
                guard info.dtype == .F64, info.shape == [1] else {
                    throw fail("tensor 'training.best_validation_nll' must be F64 with shape [1]")
                }
                used.insert("training.best_validation_nll")
                let value = try file.doubles("training.best_validation_nll")[0]
                guard value.isFinite else { throw fail("tensor 'training.best_validation_nll' = \(value) is not finite") }
                best = value
                bestEpoch = try scalarInt("training.best_epoch", [1])
            }
            var trained = params, averaged: [Float]?, averageStep = 0
            if file.tensors["training.average_step"] != nil {
                averageStep = try scalarInt("training.average_step", [])
                guard averageStep <= step else { throw fail("tensor 'training.average_step' = \(averageStep) is beyond training.step = \(step)") }
                for slot in layout.tensors {
                    trained.replaceSubrange(slot.offset..<(slot.offset + slot.count), with: try parameter("training.parameters." + slot.name, slot.shape))
                }
                averaged = params
            }
            var progress = EpochProgress()
            if file.tensors["training.epoch_progress"] != nil {
                let info = try file.info("training.epoch_progress")
                guard info.dtype == .F64, info.shape == [4] else {
                    throw fail("tensor 'training.epoch_progress' must be F64 with shape [4], found \(info.dtype.rawValue) \(info.shape)")
                }
                used.insert("training.epoch_progress")
                let v = try file.doubles("training.epoch_progress")
                guard v.allSatisfy({ $0.isFinite }), v[1] >= 0, v[2] >= 0, v[3] >= 0,
                      v[1] < 1e15, v[2] < 1e15, v[1] == v[1].rounded(), v[2] == v[2].rounded()
                else { throw fail("tensor 'training.epoch_progress' = \(v) is not (Σ NLL·rows, rows ≥ 0, skipped ≥ 0, seconds ≥ 0)") }
                progress = EpochProgress(nllRowSum: v[0], rows: Int(v[1]), skippedSteps: Int(v[2]), seconds: v[3])
            }
            let streak = file.tensors["training.nonfinite_streak"] != nil ? try scalarInt("training.nonfinite_streak", []) : 0
            state = TrainingState(parameters: trained, firstMoment: m, secondMoment: v, optimizerStep: optimizerStep, step: step,
                                  normalizer: model.normalizer, bestValidationNLL: best, bestEpoch: bestEpoch,
                                  averagedParameters: averaged, averageStep: averageStep, epochProgress: progress,
                                  nonFiniteStreak: streak, contextNormalizer: contextNormalizer)
        }
        let extra = Set(file.tensors.keys).subtracting(used)
        if let name = extra.sorted().first {
            throw fail("unexpected tensor '\(name)' (\(extra.count) tensor(s) not part of this model: \(describe(config)))")
        }
        var meta = file.metadata
        for key in ["format", "format_version", "model", "training"] { meta[key] = nil }
        return Checkpoint(model: model, state: state, training: training, metadata: meta)
    }

    /// "D=2, 6 couplings, 4×256 hidden, alternating masks".
    public static func describe(_ c: FlowConfiguration) -> String {
        if let a = c.image {
            var s = "image flow on \(a.input): \(a.levels) level\(a.levels == 1 ? "" : "s") of \(a.checkerboardCouplings) checkerboard + "
                + "\(a.channelCouplings) channel-wise couplings, \(a.finalCouplings) final, ResNets \(a.channels) channels × \(a.resBlocks) blocks"
            if a.actNorm { s += ", ActNorm" }
            if a.batchNorm { s += ", batch norm (global batch statistics)" }
            if case let .dequantizeLogit(levels, alpha) = c.preprocessing { s += ", dequantised \(levels) levels + logit(α = \(alpha))" }
            return s
        }
        var s = "D=\(c.dim), \(c.couplings) couplings, \(c.hiddenLayers)×\(c.hidden) hidden, \(c.customMasks == nil ? c.maskScheme.rawValue : "custom") masks"
        if let shape = c.imageShape { s += ", image \(shape.map(String.init).joined(separator: "x"))" }
        if c.learnableScale { s += ", learnable scale" }
        if c.actNorm { s += ", ActNorm after each coupling" }
        if case let .dequantizeLogit(levels, alpha) = c.preprocessing { s += ", dequantised \(levels) levels + logit(α = \(alpha))" }
        if let classes = c.contextClasses {
            s += ", conditional on the class (K=\(classes) one-hot)"
        } else if c.contextFeatures > 0 {
            s += ", conditional on K=\(c.contextFeatures) context value\(c.contextFeatures == 1 ? "" : "s")"
        }
        return s
    }
}
