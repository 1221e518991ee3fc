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
/// Workspace buffers of the chain itself, n rows: the input of every transform x_i `[n, D]`, i = 0…T (x_0 the data,
/// x_T = z), the per-row log-det `[n]`, and the running dL/dx ping-pong `[n, D]` ×2.
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
    let values: [WorkspaceBuffer]
    let logDetBuffer: WorkspaceBuffer
    let dCurrent: WorkspaceBuffer, dNext: WorkspaceBuffer
    /// The index of the first transform with parameters (the number of transforms when none has).
    let firstTrainable: Int

    /// Builds the chain of a validated configuration with the data normaliser `normalizer` (identity when nil).
    /// - Throws: ``FlowConfigurationError`` when the configuration is invalid or the normaliser has another width.
    public init(_ configuration: FlowConfiguration, normalizer: Normalizer<Scalar>? = nil) throws {
        try configuration.validate()
        let D = configuration.dim
        let normalizer = normalizer ?? .identity(dim: D)
        guard normalizer.dim == D else {
            throw FlowConfigurationError(field: "normalizer", message: "\(normalizer.dim) features for a model of D = \(D)")
        }
        var chain = ChainBuilder<Scalar>()
        chain.append { _, _ in Standardization(normalizer: normalizer) }
        for (k, mask) in configuration.masks().enumerated() {
            chain.append { p, w in
                AffineCoupling(name: "couplings.\(k)", mask: mask, hidden: configuration.hidden,
                               hiddenLayers: configuration.hiddenLayers, learnableScale: configuration.learnableScale,
                               parameters: &p, workspace: &w)
            }
            if configuration.actNorm { chain.append { p, w in ActNorm(name: "actnorms.\(k)", features: D, parameters: &p, workspace: &w) } }
        }
        self.configuration = configuration
        self.normalizer = normalizer
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
    /// The same structure with another data normaliser.
    /// - Throws: ``FlowConfigurationError`` when `normalizer` has another number of features.
    public func with(normalizer: Normalizer<Scalar>) throws -> FlowNetwork {
        try FlowNetwork(configuration, normalizer: normalizer)
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

    /// Forward (data → latent) on `rows` ≤ `workspace.capacity` rows of data x `[rows, D]`.
    ///
    /// Afterwards ``latent(in:)`` holds z `[rows, D]` and ``logDet(in:)`` the per-row log-det (nats; add
    /// ``constantLogDet`` for the total); every transform's input is kept for the backward pass.
    public func forward(
        _ x: UnsafePointer<Scalar>, rows: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>
    ) {
        precondition(rows <= ws.capacity, "forward: \(rows) rows exceed the workspace capacity \(ws.capacity)")
        ws[values[0]].update(from: x, count: rows * dim)
        let logDet = ws[logDetBuffer]
        logDet.update(repeating: 0, count: rows)
        for (i, f) in transforms.enumerated() {
            f.forward(ws[values[i]], rows: rows, parameters: p, workspace: ws, output: ws[values[i + 1]], logDet: logDet)
        }
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
    /// overwrite `g` (`accumulate` false) or are added to it. When `dInput` is given, dL/dx `[rows, D]` is written there.
    public func backwardNLL(
        rows: Int, parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>,
        accumulate: Bool, workspace ws: FlowWorkspace<Scalar>, dInput: UnsafeMutablePointer<Scalar>? = nil,
        bucketDone: ((Int) -> Void)? = nil
    ) {
        let dz = ws[dCurrent]
        dz.update(from: latent(in: ws), count: rows * dim)  // dL/dz = z
        backward(rows: rows, dLogDet: -1, parameters: p, gradient: g, accumulate: accumulate, workspace: ws,
                 dInput: dInput, bucketDone: bucketDone)
    }

    /// Backward of an arbitrary scalar loss L(z, log-det) given dL/dz `[rows, D]` and a per-row constant
    /// dL/d(log-det), after a forward pass on the same rows. Writes parameter gradients into `g` (overwrite) and
    /// dL/dx into `dInput` `[rows, D]`.
    public func backward(
        dz: UnsafePointer<Scalar>, dLogDet: Scalar, rows: Int, parameters p: UnsafePointer<Scalar>,
        gradient g: UnsafeMutablePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        dInput: UnsafeMutablePointer<Scalar>
    ) {
        ws[dCurrent].update(from: dz, count: rows * dim)
        backward(rows: rows, dLogDet: dLogDet, parameters: p, gradient: g, accumulate: false, workspace: ws,
                 dInput: dInput, bucketDone: nil)
    }

    /// The chain's backward from dL/dz in `dCurrent`.
    func backward(
        rows: Int, dLogDet: Scalar, parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>,
        accumulate: Bool, workspace ws: FlowWorkspace<Scalar>, dInput: UnsafeMutablePointer<Scalar>?,
        bucketDone: ((Int) -> Void)?
    ) {
        var dCur = ws[dCurrent], dNext = ws[self.dNext]
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
    public func inverse(
        _ z: UnsafePointer<Scalar>, rows: Int, parameters p: UnsafePointer<Scalar>,
        workspace ws: FlowWorkspace<Scalar>, output x: UnsafeMutablePointer<Scalar>
    ) {
        precondition(rows <= ws.capacity, "inverse: \(rows) rows exceed the workspace capacity \(ws.capacity)")
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
}

extension ParameterLayout {
    /// The parameter layout of `configuration`'s chain.
    /// - Throws: ``FlowConfigurationError`` when the configuration is invalid.
    public init(_ configuration: FlowConfiguration) throws {
        self = try FlowNetwork<Float>(configuration).layout
    }
}
