import RealModule

/// Per-feature standardisation u = (x − mean) / std, fitted on the training split and stored with the
/// model (`normalizer.mean`, `normalizer.std`, each `[D]`).
///
/// Its log-det-Jacobian is −Σ_j log std_j (nats), the same for every row; every log-likelihood reported
/// in data units includes it.
public struct Normalizer<Scalar: FlowScalar>: Sendable, Equatable {
    /// Per-feature mean `[D]` (data units).
    public var mean: [Scalar]
    /// Per-feature population standard deviation `[D]` (data units, > 0).
    public var std: [Scalar]

    /// A normaliser with the given statistics.
    public init(mean: [Scalar], std: [Scalar]) {
        precondition(mean.count == std.count)
        self.mean = mean
        self.std = std
    }

    /// The identity (mean 0, std 1) for `dim` features.
    public static func identity(dim: Int) -> Normalizer {
        Normalizer(mean: Array(repeating: 0, count: dim), std: Array(repeating: 1, count: dim))
    }

    /// Fits mean and population standard deviation (ddof = 0, as `keras.layers.Normalization.adapt`) in
    /// Double precision on `data` `[rows, D]`. Two passes; when a sum overflows Double (values near
    /// `Double.greatestFiniteMagnitude`), that feature is recomputed on values scaled by its largest magnitude.
    /// - Parameters:
    ///   - source: the data's file or data set, named in errors.
    ///   - allowConstant: a constant column gets std 1 instead of an error (a conditional flow's context, which
    ///     has no density of its own).
    /// - Throws: ``NormalizerError`` when there are no rows, a feature is constant (std = 0: no density; unless
    ///   `allowConstant`), or a feature's standard deviation is not finite or beyond `Scalar`'s range.
    public static func fit<T: BinaryFloatingPoint>(_ data: Matrix<T>, source: String? = nil, allowConstant: Bool = false) throws -> Normalizer {
        let n = data.rows, d = data.columns
        func failure(_ message: String) -> NormalizerError { NormalizerError(message: message, source: source) }
        guard n > 0 else { throw failure("cannot fit the normaliser on 0 rows") }
        func x(_ i: Int, _ j: Int) -> Double { Double(data.values[i * d + j]) }
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += x(i, j) } }
        for j in 0..<d { mean[j] /= Double(n) }
        var variance = [Double](repeating: 0, count: d)
        for i in 0..<n {
            for j in 0..<d {
                let e = x(i, j) - mean[j]
                variance[j] += e * e
            }
        }
        var std = [Scalar]()
        for j in 0..<d {
            var s = (variance[j] / Double(n)).squareRoot()
            if !mean[j].isFinite || !s.isFinite {
                // A sum overflowed: the same two passes on x / c, with c the column's largest magnitude.
                var c = 0.0
                for i in 0..<n { c = max(c, x(i, j).magnitude) }
                var m = 0.0, v = 0.0
                if c.isFinite {
                    for i in 0..<n { m += x(i, j) / c }
                    m /= Double(n)
                    for i in 0..<n { let e = x(i, j) / c - m; v += e * e }
                }
                mean[j] = m * c
                s = (v / Double(n)).squareRoot() * c
            }
            guard s.isFinite, mean[j].isFinite else {
                throw failure("feature \(j + 1) (1-based column): the mean or standard deviation is not finite (a value is NaN, ±Inf or near Double's limit)")
            }
            guard Scalar(s).isFinite else {
                throw failure("feature \(j + 1) (1-based column): the standard deviation \(s) is beyond \(Scalar.self)'s range (\(Scalar.greatestFiniteMagnitude)); rescale the column")
            }
            if allowConstant, !(s > 0 && Scalar(s) > 0) { s = 1 }
            guard s > 0, Scalar(s) > 0 else {
                throw failure("feature \(j + 1) (1-based column) is constant in the training split (std = 0); "
                        + "a density on it is degenerate: drop the column")
            }
            std.append(Scalar(s))
        }
        return Normalizer(mean: mean.map { Scalar($0) }, std: std)
    }

    /// Number of features.
    public var dim: Int { mean.count }

    /// log|det ∂u/∂x| = −Σ_j log std_j (nats), identical for every row.
    public var logDetJacobian: Double { -std.reduce(0.0) { $0 + Double.log(Double($1)) } }

    /// u = (x − mean) / std for `rows` rows `[rows, D]`, from `x` into `u` (may alias).
    public func normalize(_ x: UnsafePointer<Scalar>, rows: Int, into u: UnsafeMutablePointer<Scalar>) {
        let d = dim
        for i in 0..<rows {
            for j in 0..<d { u[i * d + j] = (x[i * d + j] - mean[j]) / std[j] }
        }
    }

    /// x = u·std + mean for `rows` rows `[rows, D]`, from `u` into `x` (may alias).
    public func denormalize(_ u: UnsafePointer<Scalar>, rows: Int, into x: UnsafeMutablePointer<Scalar>) {
        let d = dim
        for i in 0..<rows {
            for j in 0..<d { x[i * d + j] = u[i * d + j] * std[j] + mean[j] }
        }
    }

    /// The normalised copy of `x` `[rows, D]`.
    public func normalize(_ x: Matrix<Scalar>) -> Matrix<Scalar> {
        var out = x
        x.values.withUnsafeBufferPointer { src in
            out.values.withUnsafeMutableBufferPointer { dst in
                normalize(src.baseAddress!, rows: x.rows, into: dst.baseAddress!)
            }
        }
        return out
    }

    /// The data-space copy of normalised `u` `[rows, D]`.
    public func denormalize(_ u: Matrix<Scalar>) -> Matrix<Scalar> {
        var out = u
        u.values.withUnsafeBufferPointer { src in
            out.values.withUnsafeMutableBufferPointer { dst in
                denormalize(src.baseAddress!, rows: u.rows, into: dst.baseAddress!)
            }
        }
        return out
    }
}

/// The normaliser cannot be fitted.
public struct NormalizerError: Error, CustomStringConvertible, Sendable {
    /// What is wrong.
    public var message: String
    /// The data's file or data set, when known.
    public var source: String?

    /// An error about `source`'s data.
    public init(message: String, source: String? = nil) {
        self.message = message
        self.source = source
    }

    /// `source: message`, or the message alone.
    public var description: String { source.map { "\($0): \(message)" } ?? message }
}
