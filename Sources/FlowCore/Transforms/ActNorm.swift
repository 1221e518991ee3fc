import RealModule

/// Activation normalisation for vectors (Glow's ActNorm): a learned per-feature affine map.
///
///     y_j = x_j · exp(logScale_j) + bias_j        log|det ∂y/∂x| = Σ_j logScale_j   (per row, nats)
///     x_j = (y_j − bias_j) · exp(−logScale_j)     (inverse)
///
/// The scale is parameterised by its logarithm, so it stays positive and the log-det is linear in the
/// parameter. Initialised to the identity (logScale = 0, bias = 0). Glow initialises from the first batch's
/// statistics instead; for vector data the flow's ``Standardization`` has already given every feature mean 0 and
/// variance 1 over the training split, where that initialisation is the identity too. (The data-dependent
/// initialisation over the global batch comes with the image flows, where ActNorm follows every coupling.)
///
/// References: Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1×1 Convolutions", NeurIPS 2018, §3.1
/// and Table 1.
///
/// Arguments: `features` D. Tensors: `{name}.log_scale` `[D]`, `{name}.bias` `[D]` (both zeros). No workspace.
///
/// Example:
///
///     var parameters = ParameterLayout.Builder(), buffers = WorkspaceLayout.Builder()
///     let norm = ActNorm<Float>(name: "actnorms.0", features: 2, parameters: &parameters, workspace: &buffers)
public struct ActNorm<Scalar: FlowScalar>: FlowTransform {
    public let name: String
    public let features: Int
    /// Offsets of `{name}.log_scale` and `{name}.bias`.
    let logScale: Int, bias: Int

    /// Declares the two tensors.
    public init(name: String, features: Int, parameters: inout ParameterLayout.Builder, workspace: inout WorkspaceLayout.Builder) {
        self.name = name
        self.features = features
        logScale = parameters.tensor("\(name).log_scale", shape: [features], initializer: .zeros)
        bias = parameters.tensor("\(name).bias", shape: [features], initializer: .zeros)
    }

    public func forward(
        _ x: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output y: UnsafeMutablePointer<Scalar>, logDet: UnsafeMutablePointer<Scalar>
    ) {
        let D = features, ls = p + logScale, b = p + bias
        var ld: Scalar = 0
        for j in 0..<D { ld += ls[j] }
        for i in 0..<n {
            // y = x ⊙ exp(logScale) + bias
            for j in 0..<D { y[i * D + j] = x[i * D + j] * Scalar.exp(ls[j]) + b[j] }
            logDet[i] += ld
        }
    }

    public func backward(
        _ dy: UnsafePointer<Scalar>, dLogDet: Scalar, input x: UnsafePointer<Scalar>, rows n: Int,
        parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>, accumulate: Bool,
        workspace ws: FlowWorkspace<Scalar>, dx: UnsafeMutablePointer<Scalar>?
    ) {
        let D = features, ls = p + logScale
        let dLs = g + logScale, dB = g + bias
        if !accumulate {
            dLs.update(repeating: 0, count: D)
            dB.update(repeating: 0, count: D)
        }
        for j in 0..<D {
            let e = Scalar.exp(ls[j])
            // y = x·exp(ls) + b:  ∂y/∂ls = x·exp(ls), ∂y/∂b = 1, ∂y/∂x = exp(ls);  log-det += Σ ls (every row)
            var gls = dLogDet * Scalar(n), gb: Scalar = 0
            for i in 0..<n {
                let dyij = dy[i * D + j]
                gls += dyij * x[i * D + j] * e
                gb += dyij
                dx?[i * D + j] = dyij * e
            }
            dLs[j] += gls
            dB[j] += gb
        }
    }

    public func inverse(
        _ y: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output x: UnsafeMutablePointer<Scalar>
    ) {
        let D = features, ls = p + logScale, b = p + bias
        for i in 0..<n {
            // x = (y − bias) ⊙ exp(−logScale)
            for j in 0..<D { x[i * D + j] = (y[i * D + j] - b[j]) * Scalar.exp(-ls[j]) }
        }
    }
}
