import RealModule

/// The binary mask of a convolutional coupling (RealNVP §3.4); b = 1 marks the conditioning part, passed through.
public enum ImageMask: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Spatial checkerboard, the same on every channel: b = 1 on the pixels with (y + x) even when `evenConditions`,
    /// on the odd ones otherwise.
    case checkerboard(evenConditions: Bool)
    /// Channel-wise: b = 1 on the first half of the channels when `firstHalfConditions`, on the second otherwise.
    case channels(firstHalfConditions: Bool)

    /// The mask of the k-th coupling of a stage of one kind: the roles alternate from one coupling to the next.
    public static func alternating(checkerboard: Bool, index k: Int) -> ImageMask {
        checkerboard ? .checkerboard(evenConditions: k % 2 == 0) : .channels(firstHalfConditions: k % 2 == 0)
    }

    /// "checkerboard (even conditions)".
    public var description: String {
        switch self {
        case .checkerboard(let even): "checkerboard (\(even ? "even" : "odd") pixels condition)"
        case .channels(let first): "channel-wise (\(first ? "first" : "second") half conditions)"
        }
    }
}

/// The affine coupling layer of RealNVP on images `[C, H, W]`, with a checkerboard or channel-wise mask and a
/// convolutional ResNet for s and t (``ConvResNet``).
///
/// With mask b (1 = conditioning part):
///
///     (raw_s, raw_t) = ResNet(b ⊙ x)           (checkerboard: all C channels, zeros where b = 0;
///                                               channel-wise: the C/2 conditioning channels)
///     s = scale_c ⊙ tanh(raw_s),  t = raw_t     (on the transformed part, b = 0)
///     y = b ⊙ x + (1 − b) ⊙ (x ⊙ exp(s) + t)                          (forward, data → latent)
///     log|det ∂y/∂x| = Σ_{(1−b)} s                                    (per image, nats)
///     x = b ⊙ y + (1 − b) ⊙ ((y − t) ⊙ exp(−s))                      (inverse)
///
/// Conditional, p(x | c) (with a ``CouplingContext`` of K values per image): the ResNet also reads c, as a learned
/// per-channel bias W_c·c added after its first convolution (``ConvResNet``); the log-det and inverse are those of the
/// coupling given c, and the backward pass adds dL/dc `[n, K]` into the context's gradient buffer when dL/dx is asked
/// for.
///
/// `scale` is a learned per-channel scale initialised to 1, and the ResNet's last convolution is zero-initialised,
/// so a fresh coupling is the identity. Rows have `features` ≥ C·H·W values; the coupling acts on the first C·H·W
/// (``ImageShape``) and passes the rest (channels factored out earlier) through unchanged.
///
/// References: Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017, §3.4 (masked
/// convolutions, eqs. 7–9), §4.1 (ResNet s and t, the scale on tanh).
///
/// Arguments: `shape` `[C, H, W]` (C even for a channel-wise mask); `mask`; `features` D ≥ C·H·W; `channels` C′ and
/// `blocks` B of the ResNet; `context` (nil: unconditional). Tensors: `{name}.net.*` (``ConvResNet``, Ci = C or C/2 → 2·Co, Co = C or C/2), then
/// `{name}.scale` `[Co]` (ones). Workspace, n rows of P = H·W pixels: its own u `[Ci, n, P]` and raw (s, t)
/// `[2·Co, n, P]`; shared scratch `coupling.d_raw` `[2·Co, n, P]`, `coupling.d_u` `[Ci, n, P]` and the ResNet's.
///
/// Example:
///
///     var parameters = ParameterLayout.Builder(), buffers = WorkspaceLayout.Builder()
///     parameters.beginTransform()
///     let coupling = ImageAffineCoupling<Float>(
///         name: "levels.0.couplings.0", shape: ImageShape(channels: 1, height: 28, width: 28),
///         mask: .checkerboard(evenConditions: true), features: 784, channels: 32, blocks: 2,
///         parameters: &parameters, workspace: &buffers)
public struct ImageAffineCoupling<Scalar: FlowScalar>: FlowTransform {
    public let name: String
    public let features: Int
    /// The active part `[C, H, W]`.
    public let shape: ImageShape
    /// The mask.
    public let mask: ImageMask
    let net: ConvResNet
    /// Offset of `{name}.scale` `[Co]`.
    let scale: Int
    /// Channels read by the ResNet (Ci) and transformed (Co), and the first of each.
    let conditioningChannels: Int, transformedChannels: Int
    let firstConditioning: Int, firstTransformed: Int
    let u: WorkspaceBuffer, raw: WorkspaceBuffer, dRaw: WorkspaceBuffer, dU: WorkspaceBuffer

    /// Declares the coupling's tensors and buffers.
    public init(name: String, shape: ImageShape, mask: ImageMask, features: Int, channels: Int, blocks: Int,
                context: CouplingContext? = nil,
                parameters: inout ParameterLayout.Builder, workspace: inout WorkspaceLayout.Builder) {
        precondition(features >= shape.count, "\(name): \(features) features cannot hold an image of \(shape)")
        self.name = name
        self.features = features
        self.shape = shape
        self.mask = mask
        switch mask {
        case .checkerboard:
            conditioningChannels = shape.channels
            transformedChannels = shape.channels
            firstConditioning = 0
            firstTransformed = 0
        case .channels(let firstHalf):
            precondition(shape.channels % 2 == 0, "\(name): a channel-wise mask needs an even number of channels, not \(shape.channels)")
            let half = shape.channels / 2
            conditioningChannels = half
            transformedChannels = half
            firstConditioning = firstHalf ? 0 : half
            firstTransformed = firstHalf ? half : 0
        }
        let P = shape.pixels
        net = ConvResNet(name: "\(name).net", inputs: conditioningChannels, channels: channels, blocks: blocks,
                         outputs: 2 * transformedChannels, height: shape.height, width: shape.width,
                         context: context, parameters: &parameters, workspace: &workspace)
        scale = parameters.tensor("\(name).scale", shape: [transformedChannels], initializer: .ones)
        u = workspace.buffer("\(name).u", perRow: conditioningChannels * P)
        raw = workspace.buffer("\(name).raw", perRow: 2 * transformedChannels * P)
        dRaw = workspace.scratch("coupling.d_raw", perRow: 2 * transformedChannels * P)
        dU = workspace.scratch("coupling.d_u", perRow: conditioningChannels * P)
    }

    /// Whether pixel p = y·W + x of a transformed channel is transformed (b = 0).
    @inline(__always)
    func isTransformed(pixel p: Int) -> Bool {
        switch mask {
        case .checkerboard(let even):
            let parity = (p / shape.width + p % shape.width) & 1
            return (parity == 0) != even
        case .channels:
            return true
        }
    }

    /// Whether pixel p of a conditioning channel conditions (b = 1): every pixel of a channel-wise mask's
    /// conditioning half, the other parity of a checkerboard.
    @inline(__always)
    func isConditioning(pixel p: Int) -> Bool {
        switch mask {
        case .checkerboard: return !isTransformed(pixel: p)
        case .channels: return true
        }
    }

    /// The ResNet's input u = b ⊙ x `[Ci, n, P]` from rows `[n, D]` (channel-major batch layout): the conditioning
    /// channels, with the transformed pixels of a checkerboard zeroed.
    func gatherConditioning(_ x: UnsafePointer<Scalar>, rows n: Int, into u: UnsafeMutablePointer<Scalar>) {
        let P = shape.pixels, D = features
        for c in 0..<conditioningChannels {
            for i in 0..<n {
                let src = x + i * D + (firstConditioning + c) * P, dst = u + (c * n + i) * P
                for p in 0..<P { dst[p] = isConditioning(pixel: p) ? src[p] : 0 }
            }
        }
    }

    /// The extent of a pass on n rows.
    @inline(__always)
    func extent(_ n: Int) -> Convolution3x3.Extent { .init(images: n, height: shape.height, width: shape.width) }

    public func forward(
        _ x: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output y: UnsafeMutablePointer<Scalar>, logDet: UnsafeMutablePointer<Scalar>
    ) {
        let P = shape.pixels, D = features, Co = transformedChannels, u = ws[self.u], raw = ws[self.raw], sc = p + scale
        gatherConditioning(x, rows: n, into: u)
        net.forward(u, extent: extent(n), parameters: p, workspace: ws, output: raw)
        y.update(from: x, count: n * D)
        for k in 0..<Co {
            for i in 0..<n {
                let rs = raw + (k * n + i) * P, rt = raw + ((Co + k) * n + i) * P
                let xi = x + i * D + (firstTransformed + k) * P, yi = y + i * D + (firstTransformed + k) * P
                var ld: Scalar = 0
                for q in 0..<P where isTransformed(pixel: q) {
                    // s = scale ⊙ tanh(raw_s), t = raw_t;  y = x ⊙ exp(s) + t;  log-det += s
                    let s = sc[k] * Scalar.tanh(rs[q])
                    yi[q] = xi[q] * Scalar.exp(s) + rt[q]
                    ld += s
                }
                logDet[i] += ld
            }
        }
    }

    public func backward(
        _ dy: UnsafePointer<Scalar>, dLogDet: Scalar, input x: UnsafePointer<Scalar>, rows n: Int,
        parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>, accumulate: Bool,
        workspace ws: FlowWorkspace<Scalar>, dx: UnsafeMutablePointer<Scalar>?
    ) {
        let P = shape.pixels, D = features, Co = transformedChannels
        let raw = ws[self.raw], dRaw = ws[self.dRaw], sc = p + scale, dScale = g + scale
        if !accumulate { dScale.update(repeating: 0, count: Co) }
        // The identity part first: dx = dy, then the transformed part overwritten and the ResNet's path added.
        dx?.update(from: dy, count: n * D)
        for k in 0..<Co {
            var gScale: Scalar = 0
            for i in 0..<n {
                let rs = raw + (k * n + i) * P
                let drs = dRaw + (k * n + i) * P, drt = dRaw + ((Co + k) * n + i) * P
                let off = i * D + (firstTransformed + k) * P
                let xi = x + off, dyi = dy + off
                for q in 0..<P {
                    guard isTransformed(pixel: q) else { drs[q] = 0; drt[q] = 0; continue }
                    // y = x·e^s + t, s = scale·tanh(raw_s), log-det += s:
                    //   dL/ds = dy·x·e^s + dLogDet;  d raw_s = dL/ds·scale·(1 − tanh²);  d scale += dL/ds·tanh;
                    //   d raw_t = dy;  dx = dy·e^s
                    let th = Scalar.tanh(rs[q]), e = Scalar.exp(sc[k] * th)
                    let ds = dyi[q] * xi[q] * e + dLogDet
                    drs[q] = ds * sc[k] * (1 - th * th)
                    drt[q] = dyi[q]
                    gScale += ds * th
                    dx?[off + q] = dyi[q] * e
                }
            }
            dScale[k] += gScale
        }
        let dU: UnsafeMutablePointer<Scalar>? = dx == nil ? nil : ws[self.dU]
        net.backward(dRaw, input: ws[u], extent: extent(n), parameters: p, gradient: g, accumulate: accumulate,
                     workspace: ws, dInput: dU)
        guard let dx, let dU else { return }
        // u = b ⊙ x  ⇒  dx += du on the conditioning part
        for c in 0..<conditioningChannels {
            for i in 0..<n {
                let src = dU + (c * n + i) * P, dst = dx + i * D + (firstConditioning + c) * P
                for q in 0..<P where isConditioning(pixel: q) { dst[q] += src[q] }
            }
        }
    }

    public func inverse(
        _ y: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output x: UnsafeMutablePointer<Scalar>
    ) {
        let P = shape.pixels, D = features, Co = transformedChannels, u = ws[self.u], raw = ws[self.raw], sc = p + scale
        // b ⊙ y = b ⊙ x: the ResNet sees what it saw in the forward pass (read before x, which may alias y, is written).
        gatherConditioning(y, rows: n, into: u)
        net.forward(u, extent: extent(n), parameters: p, workspace: ws, output: raw)
        if UnsafePointer(x) != y { x.update(from: y, count: n * D) }
        for k in 0..<Co {
            for i in 0..<n {
                let rs = raw + (k * n + i) * P, rt = raw + ((Co + k) * n + i) * P
                let xi = x + i * D + (firstTransformed + k) * P
                for q in 0..<P where isTransformed(pixel: q) {
                    // x = (y − t) ⊙ exp(−s)
                    xi[q] = (xi[q] - rt[q]) * Scalar.exp(-sc[k] * Scalar.tanh(rs[q]))
                }
            }
        }
    }

    /// Multiply-adds of the ResNet's forward pass per image.
    public var multiplyAddsPerImage: Int { net.multiplyAddsPerImage(pixels: shape.pixels) }
}
