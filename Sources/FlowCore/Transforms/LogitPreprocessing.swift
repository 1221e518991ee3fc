import RealModule

/// The logit preprocessing of discrete data after uniform dequantisation (RealNVP paper, §4.1): dequantised values
/// x̃ ∈ [0, levels) are scaled to [0, 1), pulled away from the boundaries by α and mapped to the real line.
///
///     s_j = α + (1 − 2α)·x̃_j / levels,   z_j = logit(s_j) = log s_j − log(1 − s_j)
///     log|det ∂z/∂x̃| = D·(log(1 − 2α) − log levels) − Σ_j [log s_j + log(1 − s_j)]      (nats, per row)
///     inverse: x̃_j = levels·(sigmoid(z_j) − α)/(1 − 2α)
///
/// The first transform of a discrete data set's chain, ahead of the network's (``Preprocessing/transforms(features:)``).
/// It has no parameters and runs in Float64, once per epoch over the whole training split (and once per evaluation),
/// so the network's Float passes never see the logit's large values near 0 and 1 rounded; for the same reason its
/// constant part is kept inside the per-row log-det (``constantLogDet`` is 0), which in Float64 costs no digits.
///
/// References: Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017, §4.1; Theis, van den
/// Oord & Bethge, "A note on the evaluation of generative models", ICLR 2016 (uniform dequantisation).
///
/// Arguments: `levels` discrete values per feature (17 for the digits, 256 for 8-bit images), `alpha` in (0, 0.5),
/// `features` D.
///
/// Example:
///
///     let logit = LogitPreprocessing(levels: 17, alpha: 0.05, features: 64)
///     // forward on x̃ `[n, 64]` in [0, 17): z `[n, 64]`, and the per-row log-det added to logDet `[n]`
public struct LogitPreprocessing: FlowTransform {
    public typealias Scalar = Double
    public let name = "preprocessing.logit"
    public let features: Int
    /// Discrete values per feature.
    public let levels: Int
    /// The boundary margin α.
    public let alpha: Double

    /// The transform for data of `features` columns with `levels` values each.
    public init(levels: Int, alpha: Double, features: Int) {
        self.levels = levels
        self.alpha = alpha
        self.features = features
    }

    public func forward(
        _ x: UnsafePointer<Double>, rows n: Int, parameters p: UnsafePointer<Double>, workspace ws: FlowWorkspace<Double>,
        output z: UnsafeMutablePointer<Double>, logDet: UnsafeMutablePointer<Double>
    ) {
        let L = Double(levels), D = features
        let constant = Double(D) * (Double.log(1 - 2 * alpha) - Double.log(L))
        for i in 0..<n {
            var ld = constant
            for j in 0..<D {
                let e = i * D + j
                let s = alpha + (1 - 2 * alpha) * (x[e] / L)
                z[e] = Double.log(s) - Double.log(onePlus: -s)
                ld -= Double.log(s) + Double.log(onePlus: -s)
            }
            logDet[i] += ld
        }
    }

    public func backward(
        _ dz: UnsafePointer<Double>, dLogDet: Double, input x: UnsafePointer<Double>, rows n: Int,
        parameters p: UnsafePointer<Double>, gradient g: UnsafeMutablePointer<Double>, accumulate: Bool,
        workspace ws: FlowWorkspace<Double>, dx: UnsafeMutablePointer<Double>?
    ) {
        guard let dx else { return }
        // z = log s − log(1 − s), s = α + c·x̃, c = (1 − 2α)/levels:  ∂z/∂x̃ = c / (s(1 − s))
        // log-det ∋ −log s − log(1 − s):  ∂/∂x̃ = −c·(1 − 2s) / (s(1 − s))
        let c = (1 - 2 * alpha) / Double(levels)
        for e in 0..<(n * features) {
            let s = alpha + (1 - 2 * alpha) * (x[e] / Double(levels))
            let q = c / (s * (1 - s))
            dx[e] = dz[e] * q - dLogDet * q * (1 - 2 * s)
        }
    }

    public func inverse(
        _ z: UnsafePointer<Double>, rows n: Int, parameters p: UnsafePointer<Double>, workspace ws: FlowWorkspace<Double>,
        output x: UnsafeMutablePointer<Double>
    ) {
        // x̃ = levels·(sigmoid(z) − α)/(1 − 2α)
        for e in 0..<(n * features) {
            let s = 1 / (1 + Double.exp(-z[e]))
            x[e] = Double(levels) * (s - alpha) / (1 - 2 * alpha)
        }
    }
}
