import RealModule

/// Glow's ActNorm on images: a learned per-channel affine map of the active part `[C, H, W]` of each row.
///
///     y[c, ·] = x[c, ·] · exp(logScale_c) + bias_c      log|det ∂y/∂x| = H·W·Σ_c logScale_c   (per image, nats)
///     x[c, ·] = (y[c, ·] − bias_c) · exp(−logScale_c)   (inverse)
///
/// Initialised to the identity (logScale = 0, bias = 0); a trainer starting a run then sets them from the first global
/// batch (``initialize(from:rows:parameters:)``, via ``FlowNetwork/initializeActNorms(_:rows:parameters:)``). Rows have `features` ≥ C·H·W values; the rest pass through.
///
/// References: Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1×1 Convolutions", NeurIPS 2018, §3.1 and
/// Table 1.
///
/// Arguments: `shape` `[C, H, W]`, `features` D. Tensors: `{name}.log_scale` `[C]`, `{name}.bias` `[C]` (zeros). No
/// workspace.
///
/// Example:
///
///     var parameters = ParameterLayout.Builder(), buffers = WorkspaceLayout.Builder()
///     parameters.beginTransform()
///     let norm = ImageActNorm<Float>(name: "levels.0.actnorms.0", shape: ImageShape(channels: 4, height: 14, width: 14),
///                                    features: 784, parameters: &parameters, workspace: &buffers)
public struct ImageActNorm<Scalar: FlowScalar>: FlowTransform {
    public let name: String
    public let features: Int
    /// The active part `[C, H, W]`.
    public let shape: ImageShape
    /// Offsets of `{name}.log_scale` and `{name}.bias` `[C]`.
    let logScale: Int, bias: Int

    /// Declares the two tensors.
    public init(name: String, shape: ImageShape, features: Int, parameters: inout ParameterLayout.Builder,
                workspace: inout WorkspaceLayout.Builder) {
        precondition(features >= shape.count)
        self.name = name
        self.shape = shape
        self.features = features
        logScale = parameters.tensor("\(name).log_scale", shape: [shape.channels], initializer: .zeros)
        bias = parameters.tensor("\(name).bias", shape: [shape.channels], initializer: .zeros)
    }

    /// Glow's data-dependent initialisation: sets logScale_c = −log σ_c and bias_c = −μ_c/σ_c, μ_c and σ_c the mean and
    /// standard deviation (Bessel-corrected, + 10⁻⁶) of channel c over the `rows` rows of `x` `[rows, D]` and every pixel,
    /// so that this layer's output on them has mean 0 and unit variance per channel. Accumulated in Double in a fixed
    /// order: the same bits wherever it runs.
    public func initialize(from x: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafeMutablePointer<Scalar>) {
        let D = features, P = shape.pixels
        for c in 0..<shape.channels {
            var sum = 0.0, sumSquares = 0.0
            for i in 0..<n {
                let xc = x + i * D + c * P
                for q in 0..<P { sum += Double(xc[q]) }
            }
            let count = Double(n * P), mean = sum / count
            for i in 0..<n {
                let xc = x + i * D + c * P
                for q in 0..<P { let d = Double(xc[q]) - mean; sumSquares += d * d }
            }
            let sd = (sumSquares / max(1, count - 1)).squareRoot() + 1e-6
            p[logScale + c] = Scalar(-Double.log(sd))
            p[bias + c] = Scalar(-mean / sd)
        }
    }

    public func forward(
        _ x: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output y: UnsafeMutablePointer<Scalar>, logDet: UnsafeMutablePointer<Scalar>
    ) {
        let D = features, A = shape.count, P = shape.pixels, ls = p + logScale, b = p + bias
        var sum: Scalar = 0
        for c in 0..<shape.channels { sum += ls[c] }
        let ld = Scalar(P) * sum
        for i in 0..<n {
            for c in 0..<shape.channels {
                // y = x ⊙ exp(logScale_c) + bias_c
                let e = Scalar.exp(ls[c]), xc = x + i * D + c * P, yc = y + i * D + c * P
                for q in 0..<P { yc[q] = xc[q] * e + b[c] }
            }
            (y + i * D + A).update(from: x + i * D + A, count: D - A)
            logDet[i] += ld
        }
    }

    public func backward(
        _ dy: UnsafePointer<Scalar>, dLogDet: Scalar, input x: UnsafePointer<Scalar>, rows n: Int,
        parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>, accumulate: Bool,
        workspace ws: FlowWorkspace<Scalar>, dx: UnsafeMutablePointer<Scalar>?
    ) {
        let D = features, A = shape.count, P = shape.pixels, ls = p + logScale
        let dLs = g + logScale, dB = g + bias
        if !accumulate {
            dLs.update(repeating: 0, count: shape.channels)
            dB.update(repeating: 0, count: shape.channels)
        }
        for c in 0..<shape.channels {
            let e = Scalar.exp(ls[c])
            // y = x·e^ls + b, log-det += P·ls:  d ls = Σ dy·x·e^ls + P·n·dLogDet,  d b = Σ dy,  dx = dy·e^ls
            var gls = dLogDet * Scalar(P * n), gb: Scalar = 0
            for i in 0..<n {
                let off = i * D + c * P
                for q in 0..<P {
                    let d = dy[off + q]
                    gls += d * x[off + q] * e
                    gb += d
                    dx?[off + q] = d * e
                }
            }
            dLs[c] += gls
            dB[c] += gb
        }
        if let dx { for i in 0..<n { (dx + i * D + A).update(from: dy + i * D + A, count: D - A) } }
    }

    public func inverse(
        _ y: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output x: UnsafeMutablePointer<Scalar>
    ) {
        let D = features, A = shape.count, P = shape.pixels, ls = p + logScale, b = p + bias
        for i in 0..<n {
            for c in 0..<shape.channels {
                // x = (y − bias_c) ⊙ exp(−logScale_c)
                let e = Scalar.exp(-ls[c]), off = i * D + c * P
                for q in 0..<P { x[off + q] = (y[off + q] - b[c]) * e }
            }
            if UnsafePointer(x) != y { (x + i * D + A).update(from: y + i * D + A, count: D - A) }
        }
    }
}
