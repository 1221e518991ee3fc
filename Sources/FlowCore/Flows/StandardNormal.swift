import RealModule

/// The base distribution N(0, I) in D dimensions.
public enum StandardNormal {
    /// log(2π).
    public static let logTwoPi: Double = Double.log(2 * Double.pi)

    /// log N(z; 0, I) = −½‖z‖² − (D/2)·log 2π, in nats, for one row `z` `[D]`, accumulated in Double.
    @inlinable
    public static func logDensity<Scalar: FlowScalar>(_ z: UnsafePointer<Scalar>, dim: Int) -> Double {
        var sq = 0.0
        for j in 0..<dim {
            let v = Double(z[j])
            sq += v * v
        }
        return -0.5 * sq - 0.5 * Double(dim) * logTwoPi
    }

    /// Draws `rows` samples z ~ N(0, τ²I), `[rows, D]` row-major, with z[i, j] = τ·normal(seed, sampling,
    /// index = (firstRow + i)·D + j): row i's noise depends only on (seed, i), however the rows are split.
    public static func sample<Scalar: FlowScalar>(
        rows: Int, dim: Int, seed: UInt64, temperature: Double, firstRow: Int = 0,
        into z: UnsafeMutablePointer<Scalar>
    ) {
        let stream = RandomStream(seed: seed, purpose: .sampling)
        for i in 0..<rows {
            for j in 0..<dim {
                let index = UInt64((firstRow + i) * dim + j)
                z[i * dim + j] = Scalar(temperature * stream.normal(index))
            }
        }
    }
}
