/// A fixed, invertible transform applied to the data before the normaliser and the couplings, whose
/// log-det is part of every reported likelihood: the dequantisation noise (drawn per epoch by the trainer's
/// `EpochData`) and the chain of parameter-free Float64 transforms of ``transforms(features:)``.
///
/// `dequantizeLogit`: for discrete data with `levels` values 0 … levels−1 per feature (RealNVP paper, section
/// 4.1; Theis et al. 2016 for uniform dequantisation):
///
///     x̃ = x + u,  u ~ U[0, 1)                       (dequantisation; bin width 1 in pixel units)
///     y = x̃ / levels                                 log-det −D·log(levels)
///     s = α + (1 − 2α)·y,  z = logit(s)              log-det Σ_j [log(1 − 2α) − log s_j − log(1 − s_j)]
///
/// so log p(x̃) = log p_flow(z) + the log-dets above, and bits/dim = −log p(x̃) / (D·ln 2) is the discrete
/// data's bits/dim (an upper bound by Jensen), with `levels` stated (17 for digits: uniform = log2 17 =
/// 4.09 bits/dim).
public enum Preprocessing: Codable, Hashable, Sendable {
    /// No transform.
    case none
    /// Uniform dequantisation, scaling to [0, 1) and the logit transform with parameter α.
    case dequantizeLogit(levels: Int, alpha: Double)

    /// The digits' default: 17 levels, α = 0.05.
    public static func digits() -> Preprocessing { .dequantizeLogit(levels: 17, alpha: 0.05) }

    /// A one-line description for reports.
    public var summary: String {
        switch self {
        case .none: return "none"
        case let .dequantizeLogit(levels, alpha):
            return "uniform dequantisation of \(levels) levels, scaling to [0, 1), logit with α = \(alpha)"
        }
    }

    /// The discrete levels of `dequantizeLogit` (values 0 … levels − 1), nil for `none`.
    public var levels: Int? { if case let .dequantizeLogit(levels, _) = self { return levels } else { return nil } }
    /// Whether the data are discrete (bits/dim then refers to the discrete data).
    public var isDiscrete: Bool { if case .dequantizeLogit = self { return true } else { return false } }

    /// Checks the parameters.
    /// - Throws: ``FlowConfigurationError``.
    public func validate() throws {
        if case let .dequantizeLogit(levels, alpha) = self {
            if levels < 2 { throw FlowConfigurationError(field: "levels", value: "\(levels)", message: "need at least 2 levels") }
            if !(alpha > 0 && alpha < 0.5) { throw FlowConfigurationError(field: "logit-alpha", value: "\(alpha)", message: "must be in (0, 0.5)") }
        }
    }

    /// The transforms of this preprocessing for data of `features` columns, in chain order (data → latent), ahead of
    /// the network's: ``LogitPreprocessing`` for `dequantizeLogit`, none for `none`. They have no parameters and run
    /// in Float64.
    public func transforms(features: Int) -> [AnyFlowTransform<Double>] {
        switch self {
        case .none: return []
        case let .dequantizeLogit(levels, alpha): return [AnyFlowTransform(LogitPreprocessing(levels: levels, alpha: alpha, features: features))]
        }
    }

    /// Forward on `rows` rows `[rows, D]` of discrete values x with dequantisation noise `noise` (same
    /// shape, in [0, 1); nil = no noise, for already continuous values in [0, levels)): x̃ = x + u, then the
    /// ``transforms(features:)`` in order; writes z and adds the per-row log-det (nats) to `logDet` `[rows]`.
    /// - Returns: false when a value lies outside [0, levels) (the data do not match the declared levels).
    public func forward(_ x: UnsafePointer<Double>, noise: UnsafePointer<Double>?, rows: Int, dim: Int,
                        into z: UnsafeMutablePointer<Double>, logDet: UnsafeMutablePointer<Double>) -> Bool {
        guard case let .dequantizeLogit(levels, _) = self else {
            z.update(from: x, count: rows * dim)
            return true
        }
        // x̃ = x + u, which must lie in [0, levels)
        for e in 0..<(rows * dim) {
            let xt = x[e] + (noise?[e] ?? 0)
            if !(xt >= 0 && xt < Double(levels)) { return false }
            z[e] = xt
        }
        // The chain's forward passes, input and output in distinct buffers (ping-pong), ending in z.
        let chain = transforms(features: dim)
        guard !chain.isEmpty else { return true }
        let other = UnsafeMutablePointer<Double>.allocate(capacity: rows * dim)
        defer { other.deallocate() }
        var current = z, next = other
        Self.withParameterFreeBuffers(rows: rows) { p, ws in
            for t in chain {
                t.forward(current, rows: rows, parameters: p, workspace: ws, output: next, logDet: logDet)
                swap(&current, &next)
            }
        }
        if current != z { z.update(from: current, count: rows * dim) }
        return true
    }

    /// A parameter pointer and a workspace for `rows` rows for the parameter-free ``transforms(features:)`` (which
    /// declare no buffers).
    static func withParameterFreeBuffers<R>(rows: Int, _ body: (UnsafePointer<Double>, FlowWorkspace<Double>) -> R) -> R {
        let none: [Double] = [0]
        return none.withUnsafeBufferPointer {
            body($0.baseAddress!, FlowWorkspace(layout: WorkspaceLayout.Builder().layout(), capacity: max(1, rows)))
        }
    }

    /// Checks that discrete data `[rows, D]` (data units, before dequantisation) hold integers in
    /// 0 … levels − 1, row by row in file order; nothing to check without a preprocessing.
    /// - Throws: ``FlowConfigurationError`` (field `levels`) naming the first row and column (1-based) whose value
    ///   is not an integer or lies outside the levels.
    public func validateDiscrete(_ x: Matrix<Double>) throws {
        guard case let .dequantizeLogit(levels, _) = self else { return }
        guard let e = x.values.firstIndex(where: { !($0 >= 0 && $0 < Double(levels)) || $0.rounded() != $0 }) else { return }
        let v = x.values[e]
        let place = "row \(e / x.columns + 1), column \(e % x.columns + 1) holds \(v)"
        throw FlowConfigurationError(field: "levels", value: "\(levels)", message: v >= 0 && v < Double(levels)
            ? "\(place), not an integer; discrete data must be integers in 0…levels−1 (drop --dequantize/--levels for continuous data)"
            : "\(place), outside 0…\(levels - 1); discrete data must be integers in 0…levels−1")
    }

    /// Inverse on `rows` rows `[rows, D]`: the ``transforms(features:)`` inverted in reverse order, giving
    /// continuous x̃ in [0, levels) (for `dequantizeLogit`, x̃ = levels·(sigmoid(z) − α)/(1 − 2α)); `x` may alias `z`.
    public func inverse(_ z: UnsafePointer<Double>, rows: Int, dim: Int, into x: UnsafeMutablePointer<Double>) {
        x.update(from: z, count: rows * dim)
        let chain = transforms(features: dim)
        guard !chain.isEmpty else { return }
        Self.withParameterFreeBuffers(rows: rows) { p, ws in
            for t in chain.reversed() { t.inverse(x, rows: rows, parameters: p, workspace: ws, output: x) }
        }
    }

    /// The flow's input space (after this preprocessing) back to data space: rows `[n, D]` of any precision,
    /// undone in Double.
    public func dataSpace<S: FlowScalar>(_ x: Matrix<S>) -> Matrix<Double> { inverse(x.converted(to: Double.self)) }

    /// Array convenience of ``inverse(_:rows:dim:into:)``: data-space values for z `[rows, D]`.
    public func inverse(_ z: Matrix<Double>) -> Matrix<Double> {
        if self == .none { return z }
        var x = z
        z.values.withUnsafeBufferPointer { src in
            x.values.withUnsafeMutableBufferPointer { inverse(src.baseAddress!, rows: z.rows, dim: z.columns, into: $0.baseAddress!) }
        }
        return x
    }

    /// Array convenience: z `[rows, D]` and per-row log-det for x (and optional noise) `[rows, D]`.
    /// - Throws: ``FlowConfigurationError`` naming the first value outside [0, levels).
    public func forward(_ x: Matrix<Double>, noise: [Double]? = nil) throws -> (z: Matrix<Double>, logDet: [Double]) {
        var z = x
        var ld = [Double](repeating: 0, count: x.rows)
        let ok = x.values.withUnsafeBufferPointer { xb in
            z.values.withUnsafeMutableBufferPointer { zb in
                ld.withUnsafeMutableBufferPointer { lb in
                    if let noise {
                        return noise.withUnsafeBufferPointer { nb in
                            forward(xb.baseAddress!, noise: nb.baseAddress!, rows: x.rows, dim: x.columns, into: zb.baseAddress!, logDet: lb.baseAddress!)
                        }
                    }
                    return forward(xb.baseAddress!, noise: nil, rows: x.rows, dim: x.columns, into: zb.baseAddress!, logDet: lb.baseAddress!)
                }
            }
        }
        if !ok, case let .dequantizeLogit(levels, _) = self {
            let bad = x.values.indices.first { e in
                let v = x.values[e] + (noise?[e] ?? 0)
                return !(v >= 0 && v < Double(levels))
            } ?? 0
            throw FlowConfigurationError(field: "levels", value: "\(levels)",
                message: "row \(bad / x.columns + 1), column \(bad % x.columns + 1) holds \(x.values[bad]), outside 0…\(levels - 1); discrete data must be integers in 0…levels−1")
        }
        return (z, ld)
    }

    /// The preprocessing of a conditional flow's input rows [x, c] `[rows, D + K]`: x (the first `features` = D
    /// columns, with `noise` `[rows · D]`) is preprocessed, the context c passes unchanged.
    /// - Throws: as ``forward(_:noise:)``, naming columns of x.
    public func forward(rows: Matrix<Double>, features D: Int, noise: [Double]?) throws -> (z: Matrix<Double>, logDet: [Double]) {
        if D == rows.columns { return try forward(rows, noise: noise) }
        if self == .none { return (rows, Array(repeating: 0, count: rows.rows)) }
        let (z, ld) = try forward(rows.columns(0..<D), noise: noise)
        return (Matrix.concatenatingColumns(z, rows.columns(D..<rows.columns)), ld)
    }

    /// Uniform dequantisation noise `[rows · D]` in [0, 1) for rows `firstRow ..< firstRow + rows`, from
    /// (seed, purpose `.dequantization`, substream): the training split uses substream = epoch, evaluation a
    /// fixed substream.
    public static func noise(seed: UInt64, substream: UInt32, rows: Int, dim: Int, firstRow: Int = 0) -> [Double] {
        let stream = RandomStream(seed: seed, purpose: .dequantization, substream: substream)
        return (0..<(rows * dim)).map { stream.uniform(UInt64(firstRow * dim + $0)) }
    }

    /// The substream of the fixed evaluation noise.
    public static let evaluationSubstream: UInt32 = 0xFFFF_FFFF
}
