import RealModule

/// A Gaussian density fitted by maximum likelihood, the baseline a flow should beat: diagonal (independent
/// features) or full covariance. Fitted and evaluated in Double.
public struct GaussianBaseline: Sendable {
    /// Mean `[D]`.
    public let mean: [Double]
    /// Lower-triangular Cholesky factor L of the covariance Σ = L·Lᵀ, `[D, D]` row-major (diagonal: only the
    /// diagonal is non-zero).
    public let cholesky: [Double]
    /// Number of features.
    public let dim: Int

    /// Fits mean and covariance (population, ddof = 0) to `x` `[rows, D]`; `diagonal` keeps only the variances.
    /// - Throws: ``NormalizerError`` when the covariance is singular (a constant feature or dependent features).
    public init(fitting x: Matrix<Double>, diagonal: Bool) throws {
        let n = x.rows, d = x.columns
        guard n > 0 else { throw NormalizerError(message: "cannot fit a Gaussian on 0 rows") }
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += x.values[i * d + j] } }
        for j in 0..<d { mean[j] /= Double(n) }
        var cov = [Double](repeating: 0, count: d * d)
        for i in 0..<n {
            for a in 0..<d {
                let ea = x.values[i * d + a] - mean[a]
                if diagonal { cov[a * d + a] += ea * ea; continue }
                for b in 0...a { cov[a * d + b] += ea * (x.values[i * d + b] - mean[b]) }
            }
        }
        for a in 0..<d { for b in 0...a { cov[a * d + b] /= Double(n) } }
        // Cholesky–Banachiewicz on the lower triangle.
        var L = [Double](repeating: 0, count: d * d)
        for a in 0..<d {
            for b in 0...a {
                var s = cov[a * d + b]
                for k in 0..<b { s -= L[a * d + k] * L[b * d + k] }
                if a == b {
                    guard s > 0 else {
                        throw NormalizerError(message: "the covariance is singular at feature \(a + 1): a \(diagonal ? "constant" : "constant or linearly dependent") feature")
                    }
                    L[a * d + a] = s.squareRoot()
                } else {
                    L[a * d + b] = s / L[b * d + b]
                }
            }
        }
        self.mean = mean
        cholesky = L
        dim = d
    }

    /// log N(x; μ, Σ) for every row of `x` `[rows, D]` (nats).
    public func logDensity(_ x: Matrix<Double>) -> [Double] {
        let d = dim
        var logDetHalf = 0.0
        for a in 0..<d { logDetHalf += Double.log(cholesky[a * d + a]) }
        let constant = -0.5 * Double(d) * StandardNormal.logTwoPi - logDetHalf
        var y = [Double](repeating: 0, count: d)
        return (0..<x.rows).map { i in
            // Solve L·y = x − μ by forward substitution; log N = −½‖y‖² − log|L| − (D/2)·log 2π.
            var q = 0.0
            for a in 0..<d {
                var s = x.values[i * d + a] - mean[a]
                for k in 0..<a { s -= cholesky[a * d + k] * y[k] }
                y[a] = s / cholesky[a * d + a]
                q += y[a] * y[a]
            }
            return constant - 0.5 * q
        }
    }
}
