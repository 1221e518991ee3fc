/// The structure of a flow: an ordered chain of transforms (data → latent) and the standard-normal base
/// distribution, with the layout of its parameters and of its workspace, without parameter values. Its passes
/// run on raw buffers supplied by the caller (parameters, gradients, a ``FlowWorkspace``), so that one network
/// serves every worker thread.
///
/// The chain of a configuration (``init(_:normalizer:)``): the data normaliser (``Standardization``), then K
/// ``AffineCoupling``s, each followed by an ``ActNorm`` when the configuration asks for it.
///
///     log p(x) = log N(z; 0, I) + Σ_transforms log|det ∂f_i/∂x_i|,   z = f_T ∘ … ∘ f_1(x)
///
/// References: Dinh, Sohl-Dickstein, Bengio, "Density estimation using Real NVP", ICLR 2017, eq. 3; Papamakarios
/// et al., "Normalizing Flows for Probabilistic Modeling and Inference", JMLR 2021, §2.
///
/// Conditional (``FlowConfiguration/contextFeatures`` K > 0), p(x | c): the flow's input rows are `[n, D + K]`, the
/// features x followed by the context c (as a CSV's last K columns). The context is standardised by its own
/// ``contextNormalizer`` (fixed, like the data's) and read by every coupling; it is not transformed, and its
/// normaliser adds nothing to the log-det:
///
///     log p(x | c) = log N(z; 0, I) + Σ_transforms log|det ∂f_i/∂x_i|,   z = f(x; c)
///
/// Workspace buffers of the chain itself, n rows: the input of every transform x_i `[n, D]`, i = 0…T (x_0 the data,
/// x_T = z), the per-row log-det `[n]`, the running dL/dx ping-pong `[n, D]` ×2, and when conditional the
/// standardised context and its gradient `[n, K]` (``CouplingContext``).
public struct FlowNetwork<Scalar: FlowScalar>: Sendable {
    /// The configuration this network was built from.
    public let configuration: FlowConfiguration
    /// Where every tensor lives in the flat parameter buffer.
    public let layout: ParameterLayout
    /// The buffers a pass needs (allocate with ``makeWorkspace(capacity:)``).
    public let workspaceLayout: WorkspaceLayout
    /// The chain, data → latent.
    public let transforms: [AnyFlowTransform<Scalar>]
    /// Σ of the transforms' ``FlowTransform/constantLogDet`` (nats per row).
    public let constantLogDet: Double
    /// The data normaliser (the chain's first transform, ``Standardization``).
    public let normalizer: Normalizer<Scalar>
    /// The context normaliser `[K]` (`[0]` for an unconditional flow): c is standardised by it before the couplings
    /// read it.
    public let contextNormalizer: Normalizer<Scalar>
    /// The context buffers every coupling reads, nil for an unconditional flow.
    let context: CouplingContext?
    let values: [WorkspaceBuffer]
    let logDetBuffer: WorkspaceBuffer
    let dCurrent: WorkspaceBuffer, dNext: WorkspaceBuffer
    /// The index of the first transform with parameters (the number of transforms when none has).
    let firstTrainable: Int

    /// Builds the chain of a validated configuration with the data normaliser `normalizer` `[D]` and the context
    /// normaliser `contextNormalizer` `[K]` (identities when nil).
    /// - Throws: ``FlowConfigurationError`` when the configuration is invalid or a normaliser has another width.
    public init(_ configuration: FlowConfiguration, normalizer: Normalizer<Scalar>? = nil,
                contextNormalizer: Normalizer<Scalar>? = nil) throws {
        try configuration.validate()
        let D = configuration.dim, K = configuration.contextFeatures
        let normalizer = normalizer ?? .identity(dim: D)
        guard normalizer.dim == D else {
            throw FlowConfigurationError(field: "normalizer", message: "\(normalizer.dim) features for a model of D = \(D)")
        }
        let contextNormalizer = contextNormalizer ?? .identity(dim: K)
        guard contextNormalizer.dim == K else {
            throw FlowConfigurationError(field: "context-normalizer", message: "\(contextNormalizer.dim) context values for a model of K = \(K)")
        }
        var chain = ChainBuilder<Scalar>()
        let context = K > 0 ? CouplingContext(features: K, workspace: &chain.buffers) : nil
        chain.append { _, _ in Standardization(normalizer: normalizer) }
        if let image = configuration.image {
            image.appendTransforms(to: &chain, features: D, context: context)
        } else {
            for (k, mask) in configuration.masks().enumerated() {
                chain.append { p, w in
                    AffineCoupling(name: "couplings.\(k)", mask: mask, hidden: configuration.hidden,
                                   hiddenLayers: configuration.hiddenLayers, learnableScale: configuration.learnableScale,
                                   context: context, parameters: &p, workspace: &w)
                }
                if configuration.actNorm { chain.append { p, w in ActNorm(name: "actnorms.\(k)", features: D, parameters: &p, workspace: &w) } }
            }
        }
        self.configuration = configuration
        self.normalizer = normalizer
        self.contextNormalizer = contextNormalizer
        self.context = context
        transforms = chain.transforms
        layout = chain.parameters.layout()
        constantLogDet = transforms.reduce(0.0) { $0 + $1.constantLogDet }
        values = (0...transforms.count).map { chain.buffers.buffer("flow.x.\($0)", perRow: D) }
        logDetBuffer = chain.buffers.buffer("flow.log_det", perRow: 1)
        dCurrent = chain.buffers.buffer("flow.d_current", perRow: D)
        dNext = chain.buffers.buffer("flow.d_next", perRow: D)
        workspaceLayout = chain.buffers.layout()
        firstTrainable = layout.bucketOfTransform.firstIndex { $0 != nil } ?? transforms.count
    }

    /// Number of features D.
    public var dim: Int { configuration.dim }
    /// Context values per row K (0: unconditional).
    public var contextFeatures: Int { configuration.contextFeatures }
    /// Values per input row of ``forward(_:rows:parameters:workspace:)``: D + K.
    public var inputWidth: Int { configuration.inputWidth }
    /// The same structure with other normalisers (nil keeps this network's).
    /// - Throws: ``FlowConfigurationError`` when a normaliser has another width.
    public func with(normalizer: Normalizer<Scalar>? = nil, contextNormalizer: Normalizer<Scalar>? = nil) throws -> FlowNetwork {
        try FlowNetwork(configuration, normalizer: normalizer ?? self.normalizer,
                        contextNormalizer: contextNormalizer ?? self.contextNormalizer)
    }

    /// Rows per pass of a chunked evaluation: at most `limit`, fewer when a row's workspace is large (an image
    /// flow's activations are about 2.6 MB per 28×28 image), so that a workspace stays near 64 MB. A function of the
    /// network alone, so chunk boundaries do not depend on threads or ranks.
    public func chunkRows(limit: Int) -> Int {
        let bytesPerRow = max(1, workspaceLayout.elementsPerRow) * MemoryLayout<Scalar>.stride
        return max(1, min(limit, (64 << 20) / bytesPerRow))
    }

    /// Whether the chain has transforms whose training passes read statistics of the global batch (batch
    /// normalisation): a trainer then runs ``forwardWithBatchStatistics(_:worker:parameters:statistics:)``.
    public var hasBatchStatistics: Bool { transforms.contains { $0.batchStatistics != nil } }
    /// The number of transforms with batch statistics.
    public var batchStatisticsTransformCount: Int { transforms.reduce(0) { $0 + ($1.batchStatistics != nil ? 1 : 0) } }
    /// The largest ``BatchStatisticsTransform/statisticsCount`` of the chain (0 without batch statistics).
    public var batchStatisticsWidth: Int { transforms.reduce(0) { max($0, $1.batchStatistics?.count ?? 0) } }

    /// Whether the chain has ActNorms with a data-dependent initialisation (image flows).
    public var hasDataDependentInitialization: Bool { transforms.contains { $0.base is ImageActNorm<Scalar> } }

    /// Glow's data-dependent initialisation of every ``ImageActNorm``, in chain order: the rows x `[rows, D]` (for a
    /// conditional flow [x, c] `[rows, D + K]`) go through the chain with the parameters as they are, and each ActNorm
    /// is set so that its output on them has zero mean and unit variance per channel before they go on.
    /// Deterministic (one thread, fixed chunks, statistics in Double): a trainer runs it on the first global batch on
    /// every rank and gets the same bits in every layout.
    public func initializeActNorms(_ x: UnsafePointer<Scalar>, rows: Int, parameters p: UnsafeMutablePointer<Scalar>) {
        guard rows > 0, hasDataDependentInitialization else { return }
        let D = dim, W = inputWidth, K = contextFeatures, chunk = chunkRows(limit: rows), ws = makeWorkspace(capacity: chunk)
        var current = [Scalar](repeating: 0, count: rows * D)
        var contexts = [Scalar](repeating: 0, count: rows * K)
        for i in 0..<rows {
            for j in 0..<D { current[i * D + j] = x[i * W + j] }
            for k in 0..<K { contexts[i * K + k] = x[i * W + D + k] }
        }
        if K > 0 {
            contexts.withUnsafeMutableBufferPointer { contextNormalizer.normalize($0.baseAddress!, rows: rows, into: $0.baseAddress!) }
        }
        var next = [Scalar](repeating: 0, count: rows * D)
        var logDet = [Scalar](repeating: 0, count: chunk)
        for f in transforms {
            if let norm = f.base as? ImageActNorm<Scalar> { norm.initialize(from: current, rows: rows, parameters: p) }
            current.withUnsafeBufferPointer { cur in
                next.withUnsafeMutableBufferPointer { out in
                    var start = 0
                    while start < rows {
                        let n = min(chunk, rows - start)
                        if let context {
                            // The couplings read the chunk's standardised context from the workspace.
                            let c = ws[context.values]
                            for e in 0..<(n * K) { c[e] = contexts[start * K + e] }
                        }
                        f.forward(cur.baseAddress! + start * D, rows: n, parameters: p, workspace: ws,
                                  output: out.baseAddress! + start * D, logDet: &logDet)
                        start += n
                    }
                }
            }
            swap(&current, &next)
        }
    }

    /// A workspace for passes of up to `capacity` rows.
    public func makeWorkspace(capacity: Int) -> FlowWorkspace<Scalar> {
        FlowWorkspace(layout: workspaceLayout, capacity: capacity)
    }

    /// The input of transform i `[capacity, D]` in `ws`; i = T (the number of transforms) is the latent z.
    @inline(__always) public func value(_ i: Int, in ws: FlowWorkspace<Scalar>) -> UnsafeMutablePointer<Scalar> { ws[values[i]] }
    /// The latent z `[capacity, D]` after ``forward(_:rows:parameters:workspace:)``.
    @inline(__always) public func latent(in ws: FlowWorkspace<Scalar>) -> UnsafeMutablePointer<Scalar> { ws[values[transforms.count]] }
    /// The per-row Σ_i log|det ∂f_i/∂x_i| `[capacity]` (nats, without ``constantLogDet``) after a forward pass.
    @inline(__always) public func logDet(in ws: FlowWorkspace<Scalar>) -> UnsafeMutablePointer<Scalar> { ws[logDetBuffer] }

    /// Forward (data → latent) on `rows` ≤ `workspace.capacity` rows of data x `[rows, D]`, or for a conditional
    /// flow rows [x, c] `[rows, D + K]` (``inputWidth``).
    ///
    /// Afterwards ``latent(in:)`` holds z `[rows, D]` and ``logDet(in:)`` the per-row log-det (nats; add
    /// ``constantLogDet`` for the total); every transform's input is kept for the backward pass.
    public func forward(
        _ x: UnsafePointer<Scalar>, rows: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>
    ) {
        loadInput(x, rows: rows, workspace: ws)
        let logDet = ws[logDetBuffer]
        for (i, f) in transforms.enumerated() {
            f.forward(ws[values[i]], rows: rows, parameters: p, workspace: ws, output: ws[values[i + 1]], logDet: logDet)
        }
    }

    /// The start of a forward pass: the rows x `[rows, D]` (or [x, c] `[rows, D + K]`) into the chain's input, a
    /// conditional flow's standardised context into the couplings' buffer, the per-row log-det zeroed.
    public func loadInput(_ x: UnsafePointer<Scalar>, rows: Int, workspace ws: FlowWorkspace<Scalar>) {
        precondition(rows <= ws.capacity, "forward: \(rows) rows exceed the workspace capacity \(ws.capacity)")
        if let context {
            // Rows [x, c]: x to the chain's input, the standardised c to the couplings' context buffer.
            let D = dim, K = context.features, W = D + K
            let x0 = ws[values[0]], c = ws[context.values]
            for i in 0..<rows {
                (x0 + i * D).update(from: x + i * W, count: D)
                (c + i * K).update(from: x + i * W + D, count: K)
            }
            contextNormalizer.normalize(c, rows: rows, into: c)
        } else {
            ws[values[0]].update(from: x, count: rows * dim)
        }
        ws[logDetBuffer].update(repeating: 0, count: rows)
    }

    /// Per-row NLL after a forward pass, up to the constant log-det: −log N(z; 0, I) − per-row log-det (nats),
    /// written into `nll` `[rows]` when given; returns their sum (accumulated in Double). The NLL in data units is
    /// this minus ``constantLogDet`` per row.
    public func negativeLogLikelihood(
        rows: Int, workspace ws: FlowWorkspace<Scalar>, perRow nll: UnsafeMutablePointer<Double>? = nil
    ) -> Double {
        let z = latent(in: ws), logDet = ws[logDetBuffer], D = dim
        var sum = 0.0
        for i in 0..<rows {
            let v = -StandardNormal.logDensity(z + i * D, dim: D) - Double(logDet[i])
            nll?[i] = v
            sum += v
        }
        return sum
    }

    /// Backward of the summed NLL Σ_rows [½‖z‖² + (D/2) log 2π − log-det] after ``forward(_:rows:parameters:workspace:)``
    /// on the same rows: dL/dz = z, dL/d(log-det) = −1.
    ///
    /// Transforms are differentiated from the last down; after a transform's gradient range (its bucket,
    /// `layout.buckets[b]`) is final, `bucketDone(b)` is called (the hook for bucketed allreduce). Gradients
    /// overwrite `g` (`accumulate` false) or are added to it. When `dInput` is given, dL/dx `[rows, D]` is written
    /// there, and for a conditional flow dL/dc `[rows, K]` (data units of c) into `dContext` when given.
    public func backwardNLL(
        rows: Int, parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>,
        accumulate: Bool, workspace ws: FlowWorkspace<Scalar>, dInput: UnsafeMutablePointer<Scalar>? = nil,
        dContext: UnsafeMutablePointer<Scalar>? = nil, bucketDone: ((Int) -> Void)? = nil
    ) {
        let dz = ws[dCurrent]
        dz.update(from: latent(in: ws), count: rows * dim)  // dL/dz = z
        backward(rows: rows, dLogDet: -1, parameters: p, gradient: g, accumulate: accumulate, workspace: ws,
                 dInput: dInput, bucketDone: bucketDone)
        if let dContext { contextGradient(rows: rows, workspace: ws, into: dContext) }
    }

    /// dL/dc `[rows, K]` in the context's data units after a backward pass with `dInput`: the couplings' sum over the
    /// standardised context, divided by its std (c̃ = (c − mean)/std ⇒ dc = dc̃ / std).
    func contextGradient(rows: Int, workspace ws: FlowWorkspace<Scalar>, into dc: UnsafeMutablePointer<Scalar>) {
        guard let context else { preconditionFailure("dContext asked of an unconditional flow") }
        let K = context.features, g = ws[context.gradient], std = contextNormalizer.std
        for i in 0..<rows { for k in 0..<K { dc[i * K + k] = g[i * K + k] / std[k] } }
    }

    /// Backward of an arbitrary scalar loss L(z, log-det) given dL/dz `[rows, D]` and a per-row constant
    /// dL/d(log-det), after a forward pass on the same rows. Writes parameter gradients into `g` (overwrite),
    /// dL/dx into `dInput` `[rows, D]` and, for a conditional flow, dL/dc into `dContext` `[rows, K]` when given.
    public func backward(
        dz: UnsafePointer<Scalar>, dLogDet: Scalar, rows: Int, parameters p: UnsafePointer<Scalar>,
        gradient g: UnsafeMutablePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        dInput: UnsafeMutablePointer<Scalar>, dContext: UnsafeMutablePointer<Scalar>? = nil
    ) {
        ws[dCurrent].update(from: dz, count: rows * dim)
        backward(rows: rows, dLogDet: dLogDet, parameters: p, gradient: g, accumulate: false, workspace: ws,
                 dInput: dInput, bucketDone: nil)
        if let dContext { contextGradient(rows: rows, workspace: ws, into: dContext) }
    }

    /// The chain's backward from dL/dz in `dCurrent`.
    func backward(
        rows: Int, dLogDet: Scalar, parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>,
        accumulate: Bool, workspace ws: FlowWorkspace<Scalar>, dInput: UnsafeMutablePointer<Scalar>?,
        bucketDone: ((Int) -> Void)?
    ) {
        var dCur = ws[dCurrent], dNext = ws[self.dNext]
        // The couplings add their dL/dc into the context's gradient buffer.
        if let context { ws[context.gradient].update(repeating: 0, count: rows * context.features) }
        // Without dInput, no transform needs dL/dx below the first one with parameters (e.g. the normaliser's
        // input), and the transforms below it have nothing to differentiate.
        let lowest = dInput != nil ? 0 : firstTrainable
        for i in stride(from: transforms.count - 1, through: lowest, by: -1) {
            let wantDx = i > lowest || dInput != nil
            transforms[i].backward(
                dCur, dLogDet: dLogDet, input: ws[values[i]], rows: rows, parameters: p, gradient: g,
                accumulate: accumulate, workspace: ws, dx: wantDx ? dNext : nil)
            if let b = layout.bucketOfTransform[i] { bucketDone?(b) }
            swap(&dCur, &dNext)
        }
        if let dInput { dInput.update(from: dCur, count: rows * dim) }
    }

    /// Inverse (latent → data) on `rows` ≤ capacity rows: reads z `[rows, D]`, writes x `[rows, D]` (may alias z).
    /// A conditional flow needs the context c `[rows, K]` (data units; `contextStride` values apart per row, K by
    /// default, 0 to broadcast one row of c to every row).
    public func inverse(
        _ z: UnsafePointer<Scalar>, context c: UnsafePointer<Scalar>? = nil, contextStride: Int? = nil, rows: Int,
        parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>, output x: UnsafeMutablePointer<Scalar>
    ) {
        precondition(rows <= ws.capacity, "inverse: \(rows) rows exceed the workspace capacity \(ws.capacity)")
        precondition((c != nil) == (context != nil), "inverse: a conditional flow needs a context, an unconditional one none")
        if let context, let c {
            let K = context.features, stride = contextStride ?? K, dst = ws[context.values]
            for i in 0..<rows { (dst + i * K).update(from: c + i * stride, count: K) }
            contextNormalizer.normalize(dst, rows: rows, into: dst)
        }
        let cur = latent(in: ws)
        cur.update(from: z, count: rows * dim)
        for f in transforms.reversed() {
            f.inverse(cur, rows: rows, parameters: p, workspace: ws, output: cur)
        }
        x.update(from: cur, count: rows * dim)
    }
}

/// Builds a chain: each transform declares its tensors (one gradient bucket per transform) and buffers as it is made.
struct ChainBuilder<Scalar: FlowScalar> {
    var parameters = ParameterLayout.Builder()
    var buffers = WorkspaceLayout.Builder()
    var transforms: [AnyFlowTransform<Scalar>] = []

    /// Appends the transform `make` builds with the chain's layout builders.
    mutating func append<T: FlowTransform>(
        _ make: (inout ParameterLayout.Builder, inout WorkspaceLayout.Builder) -> T
    ) where T.Scalar == Scalar {
        parameters.beginTransform()
        transforms.append(AnyFlowTransform(make(&parameters, &buffers)))
    }

    /// Appends a transform with batch statistics, keeping its training passes.
    mutating func append<T: BatchStatisticsTransform>(
        _ make: (inout ParameterLayout.Builder, inout WorkspaceLayout.Builder) -> T
    ) where T.Scalar == Scalar {
        parameters.beginTransform()
        transforms.append(AnyFlowTransform(make(&parameters, &buffers)))
    }
}

extension ParameterLayout {
    /// The parameter layout of `configuration`'s chain.
    /// - Throws: ``FlowConfigurationError`` when the configuration is invalid.
    public init(_ configuration: FlowConfiguration) throws {
        self = try FlowNetwork<Float>(configuration).layout
    }
}
