import RealModule

/// Batch normalisation as a flow layer on images (RealNVP's §3.7), per channel of the active part `[C, H, W]` of each
/// row, with a learned scale γ_c = exp(logScale_c) and shift β_c:
///
///     training:    y = (x − μ_c)/√(σ²_c + ε) · γ_c + β_c     μ_c, σ²_c the mean and (biased) variance of channel c over
///                  every pixel of every row of the **global batch** (all workers and ranks: PyTorch's SyncBatchNorm)
///     evaluation:  the same with the running averages μ̄_c, σ̄²_c in place of μ_c, σ²_c
///     log|det ∂y/∂x| = H·W · Σ_c [logScale_c − ½ log(σ²_c + ε)]   per image (nats)
///     inverse (evaluation): x = (y − β_c)/γ_c · √(σ̄²_c + ε) + μ̄_c
///
/// The running averages move after every training step, PyTorch's rule: μ̄ ← (1 − m)·μ̄ + m·μ, σ̄² ← (1 − m)·σ̄² + m·σ²·N/(N − 1)
/// with m = ``momentum`` and N the values per channel in the batch. In training the batch's statistics depend on x, so
/// the log-det and the backward pass include their derivatives (dx below); the batch's per-channel sums come from a
/// ``BatchStatisticsReducer``, so every layout of threads × ranks normalises with the statistics of the same rows.
///
///     backward (training), x̂ = (x − μ)/√(σ² + ε), means over the global batch:
///     dx = γ/√(σ² + ε) · (dy − mean(dy) − x̂·mean(dy·x̂)) − dLogDet · x̂/√(σ² + ε)
///
/// References: Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017, §3.7 and Appendix E
/// (the log-det of batch normalisation); Ioffe & Szegedy, "Batch Normalization", ICML 2015, Algorithm 1 and §3.1
/// (running averages for inference).
///
/// Arguments: `shape` `[C, H, W]`, `features` D ≥ C·H·W (the rest of each row passes through). Tensors:
/// `{name}.log_scale` `[C]`, `{name}.bias` `[C]` (zeros: γ = 1, β = 0), and the untrained running averages
/// `{name}.running_mean` `[C]` (zeros) and `{name}.running_var` `[C]` (ones), PyTorch's names. Workspace: the batch's
/// μ and 1/√(σ² + ε) `[2C]`.
///
/// Example:
///
///     var parameters = ParameterLayout.Builder(), buffers = WorkspaceLayout.Builder()
///     parameters.beginTransform()
///     let norm = ImageBatchNorm<Float>(name: "levels.0.checkerboard.0.batchnorm", shape: ImageShape(channels: 1, height: 28, width: 28),
///                                      features: 784, parameters: &parameters, workspace: &buffers)
public struct ImageBatchNorm<Scalar: FlowScalar>: BatchStatisticsTransform {
    public let name: String
    public let features: Int
    /// The active part `[C, H, W]`.
    public let shape: ImageShape
    /// ε added to every variance (PyTorch's default).
    public static var epsilon: Double { 1e-5 }
    /// The running averages' momentum m (PyTorch's default).
    public static var momentum: Double { 0.1 }
    /// Offsets of the four tensors `[C]`.
    let logScale: Int, bias: Int, runningMean: Int, runningVariance: Int
    /// The batch's μ_c and 1/√(σ²_c + ε) `[2C]` (training passes).
    let batch: WorkspaceBuffer

    /// Declares the tensors and the workspace buffer.
    public init(name: String, shape: ImageShape, features: Int, parameters: inout ParameterLayout.Builder,
                workspace: inout WorkspaceLayout.Builder) {
        precondition(features >= shape.count)
        self.name = name
        self.shape = shape
        self.features = features
        logScale = parameters.tensor("\(name).log_scale", shape: [shape.channels], initializer: .zeros)
        bias = parameters.tensor("\(name).bias", shape: [shape.channels], initializer: .zeros)
        runningMean = parameters.tensor("\(name).running_mean", shape: [shape.channels], initializer: .zeros, trainable: false)
        runningVariance = parameters.tensor("\(name).running_var", shape: [shape.channels], initializer: .ones, trainable: false)
        batch = workspace.scratch("\(name).batch_statistics", perRow: 0, fixed: 2 * shape.channels)
    }

    /// [rows, Σ_c (C values), Σ_c of squares or of products (C values)].
    public var statisticsCount: Int { 1 + 2 * shape.channels }
    /// One image has H·W values per channel: enough unless the image is a single pixel.
    public var minimumRows: Int { shape.pixels >= 2 ? 1 : 2 }

    // MARK: Evaluation: a fixed per-channel affine map of the running averages

    public func forward(
        _ x: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output y: UnsafeMutablePointer<Scalar>, logDet: UnsafeMutablePointer<Scalar>
    ) {
        let D = features, A = shape.count, P = shape.pixels, C = shape.channels
        var ld: Scalar = 0
        for c in 0..<C { ld += p[logScale + c] - Scalar.log(p[runningVariance + c] + Scalar(Self.epsilon)) / 2 }
        ld *= Scalar(P)
        for i in 0..<n {
            for c in 0..<C {
                // y = (x − μ̄_c) · γ_c/√(σ̄²_c + ε) + β_c
                let a = Scalar.exp(p[logScale + c]) / (p[runningVariance + c] + Scalar(Self.epsilon)).squareRoot()
                let m = p[runningMean + c], b = p[bias + c], off = i * D + c * P
                for q in 0..<P { y[off + q] = (x[off + q] - m) * a + b }
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
        let D = features, A = shape.count, P = shape.pixels, C = shape.channels
        clearGradient(g, accumulate: accumulate)
        for c in 0..<C {
            let v = p[runningVariance + c] + Scalar(Self.epsilon), m = p[runningMean + c]
            let a = Scalar.exp(p[logScale + c]) / v.squareRoot()
            // y = (x − μ̄)·a + β, a = e^logScale/√(σ̄² + ε), log-det += P·(logScale − ½ log(σ̄² + ε)):
            // d logScale = Σ dy·(x − μ̄)·a + n·P·dLogDet;  d β = Σ dy;  d μ̄ = −Σ dy·a;
            // d σ̄² = −Σ dy·(x − μ̄)·a/(2(σ̄² + ε)) − n·P·dLogDet/(2(σ̄² + ε));  dx = dy·a
            var gls = dLogDet * Scalar(P * n), gb: Scalar = 0, gxc: Scalar = 0
            for i in 0..<n {
                let off = i * D + c * P
                for q in 0..<P {
                    let d = dy[off + q], xc = x[off + q] - m
                    gxc += d * xc
                    gb += d
                    dx?[off + q] = d * a
                }
            }
            gls += gxc * a
            g[logScale + c] += gls
            g[bias + c] += gb
            g[runningMean + c] += -gb * a
            g[runningVariance + c] += -(gxc * a + dLogDet * Scalar(P * n)) / (2 * v)
        }
        if let dx { for i in 0..<n { (dx + i * D + A).update(from: dy + i * D + A, count: D - A) } }
    }

    public func inverse(
        _ y: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output x: UnsafeMutablePointer<Scalar>
    ) {
        let D = features, A = shape.count, P = shape.pixels, C = shape.channels
        for i in 0..<n {
            for c in 0..<C {
                // x = (y − β_c) · √(σ̄²_c + ε)/γ_c + μ̄_c
                let r = (p[runningVariance + c] + Scalar(Self.epsilon)).squareRoot() * Scalar.exp(-p[logScale + c])
                let m = p[runningMean + c], b = p[bias + c], off = i * D + c * P
                for q in 0..<P { x[off + q] = (y[off + q] - b) * r + m }
            }
            if UnsafePointer(x) != y { (x + i * D + A).update(from: y + i * D + A, count: D - A) }
        }
    }

    // MARK: Training: the global batch's statistics

    public func forwardStatistics(_ x: UnsafePointer<Scalar>, rows n: Int, into s: UnsafeMutablePointer<Double>) {
        let D = features, P = shape.pixels, C = shape.channels
        s[0] = Double(n)
        for c in 0..<C {
            var sum = 0.0, squares = 0.0
            for i in 0..<n {
                let xc = x + i * D + c * P
                for q in 0..<P { let v = Double(xc[q]); sum += v; squares += v * v }
            }
            s[1 + c] = sum
            s[1 + C + c] = squares
        }
    }

    /// μ_c and σ²_c (biased) of the batch from forward totals, and N, the values per channel.
    func moments(_ totals: UnsafePointer<Double>, channel c: Int) -> (mean: Double, variance: Double, count: Double) {
        let C = shape.channels, N = totals[0] * Double(shape.pixels)
        guard N > 0 else { return (0, 0, 0) }
        let mean = totals[1 + c] / N
        return (mean, max(totals[1 + C + c] / N - mean * mean, 0), N)
    }

    public func forward(
        _ x: UnsafePointer<Scalar>, rows n: Int, batchTotals totals: UnsafePointer<Double>, parameters p: UnsafePointer<Scalar>,
        workspace ws: FlowWorkspace<Scalar>, output y: UnsafeMutablePointer<Scalar>, logDet: UnsafeMutablePointer<Scalar>
    ) {
        let D = features, A = shape.count, P = shape.pixels, C = shape.channels, stats = ws[batch]
        var ld = 0.0
        for c in 0..<C {
            let (mean, variance, _) = moments(totals, channel: c)
            let invStd = 1 / (variance + Self.epsilon).squareRoot()
            stats[c] = Scalar(mean)
            stats[C + c] = Scalar(invStd)
            ld += Double(p[logScale + c]) + Double.log(invStd)
        }
        let rowLogDet = Scalar(Double(P) * ld)
        for i in 0..<n {
            for c in 0..<C {
                // y = (x − μ_c) · γ_c/√(σ²_c + ε) + β_c
                let a = Scalar.exp(p[logScale + c]) * stats[C + c], m = stats[c], b = p[bias + c], off = i * D + c * P
                for q in 0..<P { y[off + q] = (x[off + q] - m) * a + b }
            }
            (y + i * D + A).update(from: x + i * D + A, count: D - A)
            logDet[i] += rowLogDet
        }
    }

    public func backwardStatistics(
        _ dy: UnsafePointer<Scalar>, input x: UnsafePointer<Scalar>, rows n: Int, workspace ws: FlowWorkspace<Scalar>,
        into s: UnsafeMutablePointer<Double>
    ) {
        let D = features, P = shape.pixels, C = shape.channels, stats = ws[batch]
        s[0] = Double(n)
        for c in 0..<C {
            let m = stats[c], invStd = stats[C + c]
            var sum = 0.0, products = 0.0
            for i in 0..<n {
                let off = i * D + c * P
                for q in 0..<P {
                    let d = Double(dy[off + q])
                    sum += d
                    products += d * Double((x[off + q] - m) * invStd)
                }
            }
            s[1 + c] = sum
            s[1 + C + c] = products
        }
    }

    public func backward(
        _ dy: UnsafePointer<Scalar>, dLogDet: Scalar, input x: UnsafePointer<Scalar>, rows n: Int,
        batchTotals totals: UnsafePointer<Double>, parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>,
        accumulate: Bool, workspace ws: FlowWorkspace<Scalar>, dx: UnsafeMutablePointer<Scalar>?
    ) {
        let D = features, A = shape.count, P = shape.pixels, C = shape.channels, stats = ws[batch]
        let N = totals[0] * Double(P)
        clearGradient(g, accumulate: accumulate)
        for c in 0..<C {
            let m = stats[c], invStd = stats[C + c], gamma = Scalar.exp(p[logScale + c])
            let meanDy = Scalar(N > 0 ? totals[1 + c] / N : 0), meanDyXhat = Scalar(N > 0 ? totals[1 + C + c] / N : 0)
            let a = gamma * invStd
            // y = x̂·γ + β, log-det += P·(logScale − ½ log(σ² + ε)), with μ and σ² functions of every x of the batch:
            // d logScale = Σ dy·x̂·γ + n·P·dLogDet;  d β = Σ dy;
            // dx = γ/√(σ² + ε)·(dy − mean(dy) − x̂·mean(dy·x̂)) − dLogDet·x̂/√(σ² + ε)
            var gxh: Scalar = 0, gb: Scalar = 0
            for i in 0..<n {
                let off = i * D + c * P
                for q in 0..<P {
                    let d = dy[off + q], xh = (x[off + q] - m) * invStd
                    gxh += d * xh
                    gb += d
                    dx?[off + q] = a * (d - meanDy - xh * meanDyXhat) - dLogDet * xh * invStd
                }
            }
            g[logScale + c] += gxh * gamma + dLogDet * Scalar(P * n)
            g[bias + c] += gb
        }
        if let dx { for i in 0..<n { (dx + i * D + A).update(from: dy + i * D + A, count: D - A) } }
    }

    public func updateRunningAverages(forwardTotals totals: UnsafePointer<Double>, parameters p: UnsafeMutablePointer<Scalar>) {
        for c in 0..<shape.channels {
            guard let (mean, variance) = runningAverages(totals, channel: c, parameters: p) else { continue }
            p[runningMean + c] = Scalar(mean)
            p[runningVariance + c] = Scalar(variance)
        }
    }

    public func runningAveragesStayFinite(forwardTotals totals: UnsafePointer<Double>, parameters p: UnsafePointer<Scalar>) -> Bool {
        for c in 0..<shape.channels {
            guard let (mean, variance) = runningAverages(totals, channel: c, parameters: p) else { continue }
            if !Scalar(mean).isFinite || !Scalar(variance).isFinite { return false }
        }
        return true
    }

    /// Channel c's running averages after a step with forward `totals` (nil for fewer than two values).
    func runningAverages(_ totals: UnsafePointer<Double>, channel c: Int, parameters p: UnsafePointer<Scalar>) -> (mean: Double, variance: Double)? {
        let m = Self.momentum, (mean, variance, N) = moments(totals, channel: c)
        guard N > 1 else { return nil }
        return ((1 - m) * Double(p[runningMean + c]) + m * mean, (1 - m) * Double(p[runningVariance + c]) + m * variance * N / (N - 1))
    }

    /// Zeroes the four tensors' gradients unless accumulating (the running averages' stay zero in training).
    func clearGradient(_ g: UnsafeMutablePointer<Scalar>, accumulate: Bool) {
        guard !accumulate else { return }
        let C = shape.channels
        (g + logScale).update(repeating: 0, count: C)
        (g + bias).update(repeating: 0, count: C)
        (g + runningMean).update(repeating: 0, count: C)
        (g + runningVariance).update(repeating: 0, count: C)
    }
}
