/// The structure of a RealNVP model: K affine couplings with their masks and parameter layout, without
/// parameter values. Its passes run on raw buffers supplied by the caller (parameters, gradients, a
/// ``FlowWorkspace``), so that one network serves every worker thread.
///
/// All passes work in normalised units u = (x − mean)/std: the ``Normalizer`` is applied by the caller.
public struct FlowNetwork<Scalar: FlowScalar>: Sendable {
    /// The configuration this network was built from.
    public let configuration: FlowConfiguration
    /// Where every tensor lives in the flat parameter buffer.
    public let layout: ParameterLayout
    let couplings: [AffineCoupling<Scalar>]

    /// Builds the network of a validated configuration.
    /// - Throws: ``FlowConfigurationError`` when the configuration is invalid.
    public init(_ configuration: FlowConfiguration) throws {
        try configuration.validate()
        self.configuration = configuration
        let layout = ParameterLayout(configuration)
        self.layout = layout
        let masks = configuration.masks()
        couplings = (0..<configuration.couplings).map { k in
            let m = masks[k]
            return AffineCoupling(
                index: k, mask: m.map { Scalar($0) },
                transformed: m.indices.filter { m[$0] == 0 }, conditioning: m.indices.filter { m[$0] == 1 },
                s: layout.dense[k][0], t: layout.dense[k][1], scale: layout.scale?[k])
        }
    }

    /// Number of features D.
    public var dim: Int { configuration.dim }
    /// Number of couplings K.
    public var couplingCount: Int { configuration.couplings }
    /// The 0/1 masks `[K][D]` as scalars.
    public var masks: [[Scalar]] { couplings.map(\.mask) }

    /// Forward (data → latent) on `rows` ≤ `workspace.capacity` rows of normalised input `u` `[rows, D]`.
    ///
    /// Afterwards `workspace.couplingInput(K)` holds z `[rows, D]` and `workspace.logDet` the per-row
    /// Σ_k log|det ∂y_k/∂x_k| (nats); the activations are kept for ``backwardNLL(rows:parameters:gradient:accumulate:workspace:dInput:couplingDone:)``.
    public func forward(
        _ u: UnsafePointer<Scalar>, rows: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>
    ) {
        precondition(rows <= ws.capacity, "forward: \(rows) rows exceed the workspace capacity \(ws.capacity)")
        let D = dim
        ws.couplingInput(0).update(from: u, count: rows * D)
        ws.logDet.base.update(repeating: 0, count: rows)
        for c in couplings {
            c.forward(ws.couplingInput(c.index), rows: rows, parameters: p, workspace: ws,
                      output: ws.couplingInput(c.index + 1), logDet: ws.logDet.base)
        }
    }

    /// Per-row NLL in normalised units after a forward pass: −log N(z; 0, I) − log-det (nats), written
    /// into `nll` `[rows]` when given; returns their sum (accumulated in Double).
    public func negativeLogLikelihood(
        rows: Int, workspace ws: FlowWorkspace<Scalar>, perRow nll: UnsafeMutablePointer<Double>? = nil
    ) -> Double {
        let z = ws.couplingInput(couplingCount), D = dim
        var sum = 0.0
        for i in 0..<rows {
            let v = -StandardNormal.logDensity(z + i * D, dim: D) - Double(ws.logDet[i])
            nll?[i] = v
            sum += v
        }
        return sum
    }

    /// Backward of the summed NLL Σ_rows [½‖z‖² + (D/2) log 2π − log-det] after ``forward(_:rows:parameters:workspace:)``
    /// on the same rows: dL/dz = z, dL/d(log-det) = −1.
    ///
    /// Couplings are differentiated from K−1 down to 0; after coupling k's gradient range
    /// (`layout.couplingRanges[k]`) is final, `couplingDone(k)` is called (the hook for bucketed
    /// allreduce). Gradients overwrite `g` (`accumulate` false) or are added to it. When `dInput` is
    /// given, dL/du `[rows, D]` is written there.
    public func backwardNLL(
        rows: Int, parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>,
        accumulate: Bool, workspace ws: FlowWorkspace<Scalar>, dInput: UnsafeMutablePointer<Scalar>? = nil,
        couplingDone: ((Int) -> Void)? = nil
    ) {
        let D = dim, K = couplingCount
        var dCur = ws.smallBuffer(4), dNext = ws.smallBuffer(5)
        dCur.update(from: ws.couplingInput(K), count: rows * D)  // dL/dz = z
        for k in stride(from: K - 1, through: 0, by: -1) {
            let wantDx = k > 0 || dInput != nil
            couplings[k].backward(
                dCur, dLogDet: -1, input: ws.couplingInput(k), rows: rows, parameters: p, gradient: g,
                accumulate: accumulate, workspace: ws, dx: wantDx ? dNext : nil)
            couplingDone?(k)
            swap(&dCur, &dNext)
        }
        if let dInput { dInput.update(from: dCur, count: rows * D) }
    }

    /// Backward of an arbitrary scalar loss L(z, log-det) given dL/dz `[rows, D]` and a per-row constant
    /// dL/d(log-det), after a forward pass on the same rows. Writes parameter gradients into `g`
    /// (overwrite) and dL/du into `dInput` `[rows, D]`.
    public func backward(
        dz: UnsafePointer<Scalar>, dLogDet: Scalar, rows: Int, parameters p: UnsafePointer<Scalar>,
        gradient g: UnsafeMutablePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        dInput: UnsafeMutablePointer<Scalar>
    ) {
        let D = dim, K = couplingCount
        var dCur = ws.smallBuffer(4), dNext = ws.smallBuffer(5)
        dCur.update(from: dz, count: rows * D)
        for k in stride(from: K - 1, through: 0, by: -1) {
            couplings[k].backward(
                dCur, dLogDet: dLogDet, input: ws.couplingInput(k), rows: rows, parameters: p, gradient: g,
                accumulate: false, workspace: ws, dx: dNext)
            swap(&dCur, &dNext)
        }
        dInput.update(from: dCur, count: rows * D)
    }

    /// Inverse (latent → data, normalised units) on `rows` ≤ capacity rows: reads z `[rows, D]`, writes
    /// u `[rows, D]` (may alias z).
    public func inverse(
        _ z: UnsafePointer<Scalar>, rows: Int, parameters p: UnsafePointer<Scalar>,
        workspace ws: FlowWorkspace<Scalar>, output u: UnsafeMutablePointer<Scalar>
    ) {
        precondition(rows <= ws.capacity, "inverse: \(rows) rows exceed the workspace capacity \(ws.capacity)")
        let D = dim
        let cur = ws.couplingInput(couplingCount)
        cur.update(from: z, count: rows * D)
        for c in couplings.reversed() {
            c.inverse(cur, rows: rows, parameters: p, workspace: ws, output: cur)
        }
        u.update(from: cur, count: rows * D)
    }
}
