import RealModule

/// A RealNVP density model with its parameter values: a ``FlowNetwork`` (the chain: the data normaliser, K affine
/// couplings, optional ActNorms; then the standard-normal base distribution), its flat parameters, and the fixed
/// preprocessing of the configuration in front of it.
///
///     log p(x) = log N(f(u); 0, I) + Σ_k log|det ∂f_k| − Σ_j log std_j,   u = (x − mean)/std
///
/// Dinh, Sohl-Dickstein, Bengio, "Density estimation using Real NVP", ICLR 2017, eqs. 3–9.
///
/// Shapes: data and latents are ``Matrix`` `[rows, D]` row-major; log-densities are nats per row. A conditional
/// model (``FlowConfiguration/contextFeatures`` K > 0) models p(x | c): every pass takes the context `[rows, K]`
/// (data units) beside x or z, and log-densities are log p(x | c).
///
/// Example:
///
///     let model = try RealNVP<Float>(configuration: .seed(), seed: 0)
///     let x = Matrix<Float>(rows: 2, columns: 2, values: [0, 0, 1, 0.5])
///     let logp = model.logProb(x)            // [2], nats
///     let (z, _) = model.encode(x)           // [2, 2]
///     let back = model.decode(z)             // ≈ x
public struct RealNVP<Scalar: FlowScalar>: Sendable {
    /// Structure and parameter layout.
    public private(set) var network: FlowNetwork<Scalar>
    /// All parameters, flat `[network.layout.storageCount]` (see ``ParameterLayout``).
    public var parameters: [Scalar]
    /// Data standardisation, part of the model: the chain's first transform (``Standardization``). Setting one
    /// of another width than D is a programming error (precondition).
    public var normalizer: Normalizer<Scalar> {
        get { network.normalizer }
        set {
            precondition(newValue.dim == dim, "normalizer: \(newValue.dim) features for a model of D = \(dim)")
            // Cannot throw: the configuration was validated when the network was built, and the width matches.
            network = try! network.with(normalizer: newValue)
        }
    }

    /// A freshly initialised model: Glorot-uniform weights U(−a, a), a = √(6/(fan_in + fan_out)), from
    /// the seeded generator (purpose `.initialization`, substream = tensor index, index = element), zero
    /// biases, scales 1 (Keras's defaults); identity normaliser.
    /// - Throws: ``FlowConfigurationError`` for an invalid configuration.
    public init(configuration: FlowConfiguration, seed: UInt64) throws {
        network = try FlowNetwork(configuration)
        parameters = RealNVP.initialParameters(layout: network.layout, seed: seed)
    }

    /// The context normaliser `[K]` of a conditional model (part of the model, like ``normalizer``).
    public var contextNormalizer: Normalizer<Scalar> {
        get { network.contextNormalizer }
        set {
            precondition(newValue.dim == network.contextFeatures, "contextNormalizer: \(newValue.dim) values for K = \(network.contextFeatures)")
            network = try! network.with(contextNormalizer: newValue)
        }
    }

    /// A model with given parameters (flat, `[layout.storageCount]`) and normalisers (the network's context
    /// normaliser when `contextNormalizer` is nil).
    public init(network: FlowNetwork<Scalar>, parameters: [Scalar], normalizer: Normalizer<Scalar>,
                contextNormalizer: Normalizer<Scalar>? = nil) {
        precondition(parameters.count == network.layout.storageCount)
        precondition(normalizer.dim == network.dim, "RealNVP: a normaliser of \(normalizer.dim) features for D = \(network.dim)")
        let contextNormalizer = contextNormalizer ?? network.contextNormalizer
        precondition(contextNormalizer.dim == network.contextFeatures, "RealNVP: a context normaliser of \(contextNormalizer.dim) values for K = \(network.contextFeatures)")
        // Cannot throw: the configuration was validated when the network was built, and the widths match.
        self.network = network.normalizer == normalizer && network.contextNormalizer == contextNormalizer ? network
            : try! network.with(normalizer: normalizer, contextNormalizer: contextNormalizer)
        self.parameters = parameters
    }

    /// The initial values of every tensor of `layout`, as each transform declared them (see
    /// ``TensorInitializer``): a Glorot-uniform weight draws element e of tensor t from the seeded generator
    /// (purpose `.initialization`, substream = t, index = e).
    public static func initialParameters(layout: ParameterLayout, seed: UInt64) -> [Scalar] {
        var p = [Scalar](repeating: 0, count: layout.storageCount)
        for (t, slot) in layout.tensors.enumerated() {
            switch slot.initializer {
            case .glorotUniform:
                // fan_out + fan_in: [out, in] for a dense weight, [out, in, kh, kw] for a convolution's.
                let receptive = slot.shape.dropFirst(2).reduce(1, *)
                let limit = (6.0 / Double((slot.shape[0] + slot.shape[1]) * receptive)).squareRoot()
                let stream = RandomStream(seed: seed, purpose: .initialization, substream: UInt32(t))
                for e in 0..<slot.count {
                    p[slot.offset + e] = Scalar(limit * (2 * stream.uniform(UInt64(e)) - 1))
                }
            case .uniform(let bound):
                let stream = RandomStream(seed: seed, purpose: .initialization, substream: UInt32(t))
                for e in 0..<slot.count {
                    p[slot.offset + e] = Scalar(bound * (2 * stream.uniform(UInt64(e)) - 1))
                }
            case .ones:
                for e in 0..<slot.count { p[slot.offset + e] = 1 }
            case .zeros:
                break
            }
        }
        return p
    }

    /// The configuration.
    public var configuration: FlowConfiguration { network.configuration }
    /// Number of features D.
    public var dim: Int { network.dim }
    /// Context values per row K (0: unconditional).
    public var contextFeatures: Int { network.contextFeatures }

    /// The flow's input rows [x, c] `[rows, D + K]` from x `[rows, D]` and c (`[rows, K]`, or `[1, K]` for every
    /// row); x itself for an unconditional model.
    func inputRows(_ x: Matrix<Scalar>, context: Matrix<Scalar>?) -> Matrix<Scalar> {
        checkContext(context, rows: x.rows)
        return context.map { .concatenatingColumns(x, $0) } ?? x
    }

    /// A context must be given exactly for a conditional model, K wide, with one row or as many as x.
    func checkContext(_ c: Matrix<Scalar>?, rows: Int) {
        if let c {
            precondition(contextFeatures > 0, "an unconditional model takes no context")
            precondition(c.columns == contextFeatures, "context: \(c.columns) columns for a model of K = \(contextFeatures)")
            precondition(c.rows == rows || c.rows == 1, "context: \(c.rows) rows for \(rows) rows of data")
        } else {
            precondition(contextFeatures == 0, "a conditional model (K = \(contextFeatures)) needs a context")
        }
    }

    /// The values of tensor `name` (shape as in the layout), or nil.
    public func tensor(_ name: String) -> [Scalar]? {
        guard let s = network.layout.slot(named: name) else { return nil }
        return Array(parameters[s.offset..<(s.offset + s.count)])
    }

    /// Sets tensor `name`; `values.count` must match its element count.
    public mutating func setTensor(_ name: String, _ values: [Scalar]) {
        guard let s = network.layout.slot(named: name), s.count == values.count else {
            preconditionFailure("setTensor: no tensor \(name) with \(values.count) elements")
        }
        parameters.replaceSubrange(s.offset..<(s.offset + s.count), with: values)
    }

    /// Rows per pass of ``chunked(_:_:)``: up to 1024 (fewer for image flows, ``FlowNetwork/chunkRows(limit:)``).
    var chunkRows: Int { network.chunkRows(limit: 1024) }

    /// Runs `body` over chunks of at most ``chunkRows`` rows with one workspace.
    private func chunked(_ rows: Int, _ body: (Range<Int>, FlowWorkspace<Scalar>, UnsafePointer<Scalar>) -> Void) {
        let ws = network.makeWorkspace(capacity: max(1, min(rows, chunkRows)))
        parameters.withUnsafeBufferPointer { p in
            var start = 0
            while start < rows {
                let end = min(rows, start + chunkRows)
                body(start..<end, ws, p.baseAddress!)
                start = end
            }
        }
    }

    /// The preprocessing of the configuration applied to continuous (already dequantised) data x̃, with
    /// its per-row log-det; the identity for `.none`.
    func preprocess(_ x: Matrix<Scalar>) -> (Matrix<Scalar>, [Double]) {
        if configuration.preprocessing == .none { return (x, Array(repeating: 0, count: x.rows)) }
        guard let (z, ld) = try? configuration.preprocessing.forward(x.converted(to: Double.self)) else {
            return (Matrix(rows: x.rows, columns: x.columns, repeating: .nan), Array(repeating: -.infinity, count: x.rows))
        }
        return (z.converted(), ld)
    }

    /// Encodes data x `[rows, D]` to latents z = f(pre(x); c) `[rows, D]` (f the chain, normaliser first), with the
    /// per-row log|det ∂z/∂x| (nats, preprocessing and normaliser included). With dequantisation, x is the
    /// continuous (dequantised) data in [0, levels); values outside give NaN latents and log-det −∞. A conditional
    /// model needs `context` `[rows, K]` or `[1, K]`.
    public func encode(_ x: Matrix<Scalar>, context: Matrix<Scalar>? = nil) -> (z: Matrix<Scalar>, logDet: [Double]) {
        precondition(x.columns == dim, "encode: \(x.columns) columns for a model of D = \(dim)")
        let D = dim, W = network.inputWidth
        var z = Matrix<Scalar>(rows: x.rows, columns: D, repeating: 0)
        let (preX, preLogDet) = preprocess(x)
        let pre = inputRows(preX, context: context)
        var logDet = preLogDet
        let constant = network.constantLogDet
        pre.values.withUnsafeBufferPointer { ub in
            z.values.withUnsafeMutableBufferPointer { zb in
                chunked(x.rows) { range, ws, p in
                    let n = range.count
                    network.forward(ub.baseAddress! + range.lowerBound * W, rows: n, parameters: p, workspace: ws)
                    (zb.baseAddress! + range.lowerBound * D).update(from: network.latent(in: ws), count: n * D)
                    let ld = network.logDet(in: ws)
                    for i in 0..<n { logDet[range.lowerBound + i] += Double(ld[i]) + constant }
                }
            }
        }
        return (z, logDet)
    }

    /// Decodes latents z `[rows, D]` to data x = pre⁻¹(f⁻¹(z; c)) `[rows, D]`; a conditional model needs `context`
    /// `[rows, K]` or `[1, K]` (data units).
    public func decode(_ z: Matrix<Scalar>, context: Matrix<Scalar>? = nil) -> Matrix<Scalar> {
        precondition(z.columns == dim, "decode: \(z.columns) columns for a model of D = \(dim)")
        checkContext(context, rows: z.rows)
        let D = dim, K = contextFeatures
        var u = z
        let c = context?.values ?? []
        let broadcast = context?.rows == 1
        u.values.withUnsafeMutableBufferPointer { ub in
            c.withUnsafeBufferPointer { cb in
                chunked(z.rows) { range, ws, p in
                    let at = ub.baseAddress! + range.lowerBound * D
                    let ctx = context == nil ? nil : UnsafePointer(cb.baseAddress! + (broadcast ? 0 : range.lowerBound * K))
                    network.inverse(at, context: ctx, contextStride: broadcast ? 0 : K, rows: range.count, parameters: p,
                                    workspace: ws, output: at)
                }
            }
        }
        if configuration.preprocessing == .none { return u }
        return configuration.preprocessing.dataSpace(u).converted()
    }

    /// log p(x) (or log p(x | c)) per row (nats, data units): log N(z; 0, I) + log|det ∂z/∂x|.
    public func logProb(_ x: Matrix<Scalar>, context: Matrix<Scalar>? = nil) -> [Double] {
        let (z, logDet) = encode(x, context: context)
        return z.values.withUnsafeBufferPointer { zb in
            (0..<x.rows).map { i in StandardNormal.logDensity(zb.baseAddress! + i * dim, dim: dim) + logDet[i] }
        }
    }

    /// Mean negative log-likelihood over the rows of x (nats, data units), conditional on `context` when given.
    public func meanNLL(_ x: Matrix<Scalar>, context: Matrix<Scalar>? = nil) -> Double {
        let lp = logProb(x, context: context)
        return lp.isEmpty ? .nan : -lp.reduce(0, +) / Double(lp.count)
    }

    /// Draws `count` samples x = g(z), z ~ N(0, τ²I), `[count, D]` in data units. Row i's noise depends only
    /// on (seed, i) (see ``StandardNormal/sample(rows:dim:seed:temperature:firstRow:into:)``). A conditional model
    /// samples x ~ p(x | c) with `context` `[count, K]` or `[1, K]`.
    public func sample(count: Int, seed: UInt64, temperature: Double = 1, context: Matrix<Scalar>? = nil) -> Matrix<Scalar> {
        var z = Matrix<Scalar>(rows: count, columns: dim, repeating: 0)
        z.values.withUnsafeMutableBufferPointer {
            StandardNormal.sample(rows: count, dim: dim, seed: seed, temperature: temperature, into: $0.baseAddress!)
        }
        return decode(z, context: context)
    }

    /// The training objective on a batch x `[rows, D]` (continuous data; dequantised already when the model
    /// has a preprocessing) and its gradient: loss = mean NLL (nats, data units) + λ·Σ‖W‖² over weight
    /// matrices; `gradient` has the flat parameter layout. A conditional model's NLL is that of p(x | c), `context`
    /// `[rows, K]`. With batch normalisation (``FlowNetwork/hasBatchStatistics``) this is the training mode: the
    /// statistics of all `rows` rows as one batch, in one pass.
    public func lossAndGradient(_ x: Matrix<Scalar>, context: Matrix<Scalar>? = nil, l2: Double = 0)
        -> (loss: Double, nll: Double, penalty: Double, gradient: [Scalar])
    {
        let D = dim, n = x.rows, W = network.inputWidth
        precondition(n > 0 && x.columns == D)
        var grad = [Scalar](repeating: 0, count: parameters.count)
        var nllSum = 0.0
        let (preX, preLogDet) = preprocess(x)
        let pre = inputRows(preX, context: context)
        var first = true
        pre.values.withUnsafeBufferPointer { ub in
            grad.withUnsafeMutableBufferPointer { gb in
                if network.hasBatchStatistics {
                    let ws = network.makeWorkspace(capacity: n)
                    let statistics = LocalBatchStatistics(slots: 1, width: network.batchStatisticsWidth)
                    let passes = [BatchPass(rows: n, workspace: ws, gradient: gb.baseAddress!, slot: 0)]
                    parameters.withUnsafeBufferPointer { pp in
                        let p = pp.baseAddress!
                        network.loadInput(ub.baseAddress!, rows: n, workspace: ws)
                        network.forwardWithBatchStatistics(passes, worker: 0, parameters: p, statistics: statistics)
                        nllSum += network.negativeLogLikelihood(rows: n, workspace: ws)
                        network.backwardNLLWithBatchStatistics(passes, worker: 0, parameters: p, statistics: statistics)
                    }
                    return
                }
                chunked(n) { range, ws, p in
                    network.forward(ub.baseAddress! + range.lowerBound * W, rows: range.count, parameters: p, workspace: ws)
                    nllSum += network.negativeLogLikelihood(rows: range.count, workspace: ws)
                    network.backwardNLL(rows: range.count, parameters: p, gradient: gb.baseAddress!,
                                        accumulate: !first, workspace: ws)
                    first = false
                }
            }
        }
        let inv = 1 / Scalar(n)
        for e in grad.indices { grad[e] *= inv }
        let penalty = L2Penalty.add(l2: l2, parameters: parameters, layout: network.layout, to: &grad)
        let nll = (nllSum - preLogDet.reduce(0, +)) / Double(n) - network.constantLogDet
        return (nll + penalty, nll, penalty, grad)
    }
}
