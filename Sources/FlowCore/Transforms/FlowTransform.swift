/// One invertible layer of a flow (zuko's and nflows' `Transform`, with llm.c's buffer discipline): a bijection
/// y = f(x) on rows of `features` values, data → latent, with its log-det-Jacobian.
///
/// A transform is built once per flow: its `init` declares its parameter tensors to a
/// ``ParameterLayout/Builder`` (name, shape, initialiser; it keeps the offsets it gets back) and the buffers it
/// needs to a ``WorkspaceLayout/Builder`` (kept activations and shared scratch). Its passes then run on raw
/// row-major buffers supplied by the caller: the flat parameters and gradients, and a ``FlowWorkspace`` per
/// worker, so that one transform serves every worker thread and a pass allocates nothing.
///
/// Shapes (n rows ≤ the workspace's capacity, D = `features`): x, y, dy, dx `[n, D]`; `logDet` `[n]` (nats).
///
/// To add a transform: one file with a type conforming to this protocol (and its shared tests, see
/// `Tests/FlowCoreTests/TransformTests.swift`), and one line where ``FlowNetwork`` builds its chain.
public protocol FlowTransform<Scalar>: Sendable {
    /// Float for training, Double for reference checks.
    associatedtype Scalar: FlowScalar

    /// The prefix of its tensors' names in checkpoints, e.g. `couplings.3`.
    var name: String { get }
    /// Features per row D of its input and output.
    var features: Int { get }
    /// A per-row log-det (nats) that depends neither on the row nor on any parameter, e.g. −Σ_j log std_j of the
    /// normaliser. Kept apart from the per-row log-dets (in Double, added once) so that it costs no rounding.
    var constantLogDet: Double { get }

    /// Forward (data → latent) on n rows: reads x, writes y, adds the per-row log|det ∂y/∂x| (nats, without
    /// ``constantLogDet``) to `logDet` `[n]`, and keeps in the workspace what ``backward`` needs.
    func forward(
        _ x: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output y: UnsafeMutablePointer<Scalar>, logDet: UnsafeMutablePointer<Scalar>)

    /// Backward after ``forward`` on the same rows (x is that pass's input): given dL/dy `dy` `[n, D]` and a
    /// dL/d(log-det) that is the same for every row (−1 for the NLL), writes this transform's parameter gradients
    /// into `g` (overwriting, or adding when `accumulate`) and, when `dx` is given, dL/dx `[n, D]`.
    func backward(
        _ dy: UnsafePointer<Scalar>, dLogDet: Scalar, input x: UnsafePointer<Scalar>, rows n: Int,
        parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>, accumulate: Bool,
        workspace ws: FlowWorkspace<Scalar>, dx: UnsafeMutablePointer<Scalar>?)

    /// Inverse (latent → data) on n rows: reads y, writes x; `x` may alias `y`.
    func inverse(
        _ y: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output x: UnsafeMutablePointer<Scalar>)
}

extension FlowTransform {
    /// No constant log-det by default.
    public var constantLogDet: Double { 0 }
}

/// A ``FlowTransform`` with its concrete type erased, as a flow's chain stores it.
///
/// The passes are closures made in ``init(_:)``, so they are the transform's own code specialised for its
/// concrete type wherever the flow was built (a call through an `any FlowTransform` existential would run the
/// generic, unspecialised code of a generic transform: every element operation through a witness table).
public struct AnyFlowTransform<Scalar: FlowScalar>: Sendable {
    /// The wrapped transform, for inspection.
    public let base: any FlowTransform<Scalar>
    let forwardPass: @Sendable (UnsafePointer<Scalar>, Int, UnsafePointer<Scalar>, FlowWorkspace<Scalar>,
                                UnsafeMutablePointer<Scalar>, UnsafeMutablePointer<Scalar>) -> Void
    let backwardPass: @Sendable (UnsafePointer<Scalar>, Scalar, UnsafePointer<Scalar>, Int, UnsafePointer<Scalar>,
                                 UnsafeMutablePointer<Scalar>, Bool, FlowWorkspace<Scalar>, UnsafeMutablePointer<Scalar>?) -> Void
    let inversePass: @Sendable (UnsafePointer<Scalar>, Int, UnsafePointer<Scalar>, FlowWorkspace<Scalar>,
                                UnsafeMutablePointer<Scalar>) -> Void

    /// The training passes of a transform with batch statistics, nil for every other transform.
    public let batchStatistics: BatchStatisticsPasses<Scalar>?

    /// Wraps `transform`.
    public init<T: FlowTransform>(_ transform: T) where T.Scalar == Scalar {
        self.init(transform, batchStatistics: nil)
    }

    /// Wraps `transform` with its training passes that read the global batch's statistics.
    public init<T: BatchStatisticsTransform>(_ transform: T) where T.Scalar == Scalar {
        self.init(transform, batchStatistics: BatchStatisticsPasses(transform))
    }

    init<T: FlowTransform>(_ transform: T, batchStatistics: BatchStatisticsPasses<Scalar>?) where T.Scalar == Scalar {
        self.batchStatistics = batchStatistics
        base = transform
        forwardPass = { transform.forward($0, rows: $1, parameters: $2, workspace: $3, output: $4, logDet: $5) }
        backwardPass = {
            transform.backward($0, dLogDet: $1, input: $2, rows: $3, parameters: $4, gradient: $5, accumulate: $6,
                               workspace: $7, dx: $8)
        }
        inversePass = { transform.inverse($0, rows: $1, parameters: $2, workspace: $3, output: $4) }
    }

    /// See ``FlowTransform/name``.
    public var name: String { base.name }
    /// See ``FlowTransform/features``.
    public var features: Int { base.features }
    /// See ``FlowTransform/constantLogDet``.
    public var constantLogDet: Double { base.constantLogDet }

    /// See ``FlowTransform/forward(_:rows:parameters:workspace:output:logDet:)``.
    @inline(__always)
    public func forward(
        _ x: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output y: UnsafeMutablePointer<Scalar>, logDet: UnsafeMutablePointer<Scalar>
    ) { forwardPass(x, n, p, ws, y, logDet) }

    /// See ``FlowTransform/backward(_:dLogDet:input:rows:parameters:gradient:accumulate:workspace:dx:)``.
    @inline(__always)
    public func backward(
        _ dy: UnsafePointer<Scalar>, dLogDet: Scalar, input x: UnsafePointer<Scalar>, rows n: Int,
        parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>, accumulate: Bool,
        workspace ws: FlowWorkspace<Scalar>, dx: UnsafeMutablePointer<Scalar>?
    ) { backwardPass(dy, dLogDet, x, n, p, g, accumulate, ws, dx) }

    /// See ``FlowTransform/inverse(_:rows:parameters:workspace:output:)``.
    @inline(__always)
    public func inverse(
        _ y: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output x: UnsafeMutablePointer<Scalar>
    ) { inversePass(y, n, p, ws, x) }
}

/// The training passes of a ``BatchStatisticsTransform`` with its concrete type erased (closures made where the
/// transform's type is known, like ``AnyFlowTransform``'s).
public struct BatchStatisticsPasses<Scalar: FlowScalar>: Sendable {
    /// See ``BatchStatisticsTransform/statisticsCount``.
    public let count: Int
    /// See ``BatchStatisticsTransform/minimumRows``.
    public let minimumRows: Int
    let forwardStatistics: @Sendable (UnsafePointer<Scalar>, Int, UnsafeMutablePointer<Double>) -> Void
    let forward: @Sendable (UnsafePointer<Scalar>, Int, UnsafePointer<Double>, UnsafePointer<Scalar>, FlowWorkspace<Scalar>,
                            UnsafeMutablePointer<Scalar>, UnsafeMutablePointer<Scalar>) -> Void
    let backwardStatistics: @Sendable (UnsafePointer<Scalar>, UnsafePointer<Scalar>, Int, FlowWorkspace<Scalar>,
                                       UnsafeMutablePointer<Double>) -> Void
    let backward: @Sendable (UnsafePointer<Scalar>, Scalar, UnsafePointer<Scalar>, Int, UnsafePointer<Double>, UnsafePointer<Scalar>,
                             UnsafeMutablePointer<Scalar>, Bool, FlowWorkspace<Scalar>, UnsafeMutablePointer<Scalar>?) -> Void
    let updateRunningAverages: @Sendable (UnsafePointer<Double>, UnsafeMutablePointer<Scalar>) -> Void
    let runningAveragesStayFinite: @Sendable (UnsafePointer<Double>, UnsafePointer<Scalar>) -> Bool

    init<T: BatchStatisticsTransform>(_ t: T) where T.Scalar == Scalar {
        count = t.statisticsCount
        minimumRows = t.minimumRows
        forwardStatistics = { t.forwardStatistics($0, rows: $1, into: $2) }
        forward = { t.forward($0, rows: $1, batchTotals: $2, parameters: $3, workspace: $4, output: $5, logDet: $6) }
        backwardStatistics = { t.backwardStatistics($0, input: $1, rows: $2, workspace: $3, into: $4) }
        backward = {
            t.backward($0, dLogDet: $1, input: $2, rows: $3, batchTotals: $4, parameters: $5, gradient: $6, accumulate: $7,
                       workspace: $8, dx: $9)
        }
        updateRunningAverages = { t.updateRunningAverages(forwardTotals: $0, parameters: $1) }
        runningAveragesStayFinite = { t.runningAveragesStayFinite(forwardTotals: $0, parameters: $1) }
    }
}
