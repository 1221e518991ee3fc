import RealModule

/// The data normaliser as the first transform of a flow: u = (x − mean) / std per feature, with the statistics
/// fitted on the training split (``Normalizer/fit(_:source:)``) and stored with the model, not trained.
///
///     u_j = (x_j − mean_j) / std_j            log|det ∂u/∂x| = −Σ_j log std_j   (the same for every row)
///
/// Its log-det is a ``constantLogDet``; the per-row log-det is untouched. No parameters; no workspace.
///
/// Arguments: `normalizer`, its `mean` and `std` `[D]` in data units.
///
/// Example:
///
///     let standardize = Standardization<Float>(normalizer: Normalizer(mean: [1, 2], std: [0.5, 4]))
public struct Standardization<Scalar: FlowScalar>: FlowTransform {
    public let name = "normalizer"
    public let features: Int
    /// The statistics.
    public let normalizer: Normalizer<Scalar>

    /// The transform of `normalizer`.
    public init(normalizer: Normalizer<Scalar>) {
        self.normalizer = normalizer
        features = normalizer.dim
    }

    public var constantLogDet: Double { normalizer.logDetJacobian }

    public func forward(
        _ x: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output y: UnsafeMutablePointer<Scalar>, logDet: UnsafeMutablePointer<Scalar>
    ) {
        // u = (x − mean) / std
        normalizer.normalize(x, rows: n, into: y)
    }

    public func backward(
        _ dy: UnsafePointer<Scalar>, dLogDet: Scalar, input x: UnsafePointer<Scalar>, rows n: Int,
        parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>, accumulate: Bool,
        workspace ws: FlowWorkspace<Scalar>, dx: UnsafeMutablePointer<Scalar>?
    ) {
        guard let dx else { return }
        // u = (x − mean) / std:  dx = du / std  (the log-det does not depend on x)
        let D = features
        for i in 0..<n { for j in 0..<D { dx[i * D + j] = dy[i * D + j] / normalizer.std[j] } }
    }

    public func inverse(
        _ y: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output x: UnsafeMutablePointer<Scalar>
    ) {
        // x = u·std + mean
        normalizer.denormalize(y, rows: n, into: x)
    }
}
