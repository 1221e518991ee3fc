/// The s/t network of RealNVP's convolutional couplings: a small ResNet of 3×3 convolutions (stride 1, padding 1).
///
///     h_0     = conv_in(u) + W_c·c                          Ci → C  (W_c·c `[C]` per image: conditional only)
///     h_{b+1} = h_b + conv2_b(relu(conv1_b(relu(h_b))))      C → C → C, b = 0 … B−1
///     out     = conv_out(relu(h_B))                          C → Co (zero-initialised: a fresh coupling is the identity)
///
/// Every buffer is in the channel-major batch layout `[channels, n, H, W]` (``Convolution3x3``).
///
/// Buffers, n images of P = H·W pixels: the input u `[Ci, n, P]` and output `[Co, n, P]` belong to the caller; its own
/// kept activations r1_b = relu(h_b) and r2_b = relu(conv1_b(r1_b)) `[C, n, P]` per block and rF = relu(h_B)
/// `[C, n, P]` (a ReLU's derivative is read from its output: r > 0); shared scratch `resnet.a`, `resnet.b`,
/// `resnet.c` `[C, n, P]` (the forward trunk h; the backward dh and temporaries) and `conv.scratch` (``Convolution3x3/scratchCount(channels:height:width:)``, fixed).
///
/// References: Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017, §4.1 (deep
/// convolutional residual networks for s and t); He et al., "Deep Residual Learning", CVPR 2016.
///
/// Conditional (a ``CouplingContext`` of K values per image): the context enters as a learned per-channel bias of
/// the first convolution's output, W_c·c with W_c `[C, K]` (as conditional Glow and FrEIA's conditional couplings
/// add a projection of c to a hidden layer). It costs C·K multiply-adds per image, against 9·P·C·K for c broadcast
/// as K extra input channels of `conv_in` (which would also differ from it only at the zero-padded border).
///
/// W_c starts at zero, so a fresh conditional network computes what the unconditional one computes and learns to
/// use c (as the zero last convolution makes a fresh coupling the identity). Measured on Fashion-MNIST
/// (BENCHMARKS.md §13): with PyTorch's `Linear` initialisation U(±1/√K) instead, one epoch of class-conditional
/// `realnvp-small` ended 0.16 bits/dim worse than the unconditional model (3.619 against 3.459 test bits/dim);
/// zero-initialised, 3.446 (and 3.482, 3.506 at seeds 1, 2 against the unconditional 3.460, 3.501).
///
/// Tensors: `{name}.in`, `{name}.blocks.{b}.conv1`, `{name}.blocks.{b}.conv2`, `{name}.out` (each `.weight`
/// `[Co, Ci, 3, 3]`, `.bias` `[Co]`); conditional: `{name}.context.weight` `[C, K]` (zeros).
struct ConvResNet: Sendable {
    let inputs: Int, channels: Int, outputs: Int, blocks: Int
    let convIn: ConvSlot, convOut: ConvSlot
    /// The context buffers and the offset of `{name}.context.weight` `[C, K]` (conditional only).
    let context: CouplingContext?, contextWeight: Int
    let conv1: [ConvSlot], conv2: [ConvSlot]
    let r1: [WorkspaceBuffer], r2: [WorkspaceBuffer], rF: WorkspaceBuffer
    let a: WorkspaceBuffer, b: WorkspaceBuffer, c: WorkspaceBuffer, cols: WorkspaceBuffer

    /// Declares the network's tensors and buffers for images of `pixels` P = H·W.
    init(name: String, inputs ci: Int, channels C: Int, blocks B: Int, outputs co: Int, height: Int, width: Int,
         context: CouplingContext? = nil,
         parameters: inout ParameterLayout.Builder, workspace: inout WorkspaceLayout.Builder) {
        inputs = ci; channels = C; outputs = co; blocks = B
        let P = height * width
        convIn = parameters.conv3x3("\(name).in", inputs: ci, outputs: C)
        self.context = context
        if let context {
            let K = context.features
            contextWeight = parameters.tensor("\(name).context.weight", shape: [C, K],
                                              initializer: .zeros)
        } else {
            contextWeight = 0
        }
        var c1: [ConvSlot] = [], c2: [ConvSlot] = []
        for k in 0..<B {
            c1.append(parameters.conv3x3("\(name).blocks.\(k).conv1", inputs: C, outputs: C))
            c2.append(parameters.conv3x3("\(name).blocks.\(k).conv2", inputs: C, outputs: C))
        }
        conv1 = c1; conv2 = c2
        convOut = parameters.conv3x3("\(name).out", inputs: C, outputs: co, zeroInitialized: true)
        r1 = (0..<B).map { workspace.buffer("\(name).blocks.\($0).r1", perRow: C * P) }
        r2 = (0..<B).map { workspace.buffer("\(name).blocks.\($0).r2", perRow: C * P) }
        rF = workspace.buffer("\(name).r_final", perRow: C * P)
        a = workspace.scratch("resnet.a", perRow: C * P)
        b = workspace.scratch("resnet.b", perRow: C * P)
        c = workspace.scratch("resnet.c", perRow: C * P)
        cols = workspace.scratch("conv.scratch", perRow: 0,
                                 fixed: Convolution3x3.scratchCount(channels: max(ci, C, co), height: height, width: width))
    }

    /// Forward on u `[Ci, n, H, W]` → `output` `[Co, n, H, W]`, keeping what ``backward`` reads.
    func forward<S: FlowScalar>(_ u: UnsafePointer<S>, extent e: Convolution3x3.Extent, parameters p: UnsafePointer<S>,
                                workspace ws: FlowWorkspace<S>, output: UnsafeMutablePointer<S>) {
        let C = channels, count = C * e.plane, h = ws[a], cols = ws[self.cols]
        // h_0 = conv_in(u)
        Convolution3x3.forward(u, inputChannels: inputs, extent: e, weight: p + convIn.weight, bias: p + convIn.bias,
                               outputChannels: C, into: h, scratch: cols)
        if let context {
            // h_0 += W_c·c, image i's bias on every pixel of channel j
            let K = context.features, c = ws[context.values], wc = p + contextWeight, P = e.height * e.width
            for j in 0..<C {
                for i in 0..<e.images {
                    var bias: S = 0
                    for k in 0..<K { bias += wc[j * K + k] * c[i * K + k] }
                    let hi = h + (j * e.images + i) * P
                    for q in 0..<P { hi[q] += bias }
                }
            }
        }
        for k in 0..<blocks {
            let r1 = ws[self.r1[k]], r2 = ws[self.r2[k]]
            // r1 = relu(h_b); r2 = relu(conv1(r1)); h_{b+1} = h_b + conv2(r2)
            Self.relu(h, into: r1, count: count)
            Convolution3x3.forward(r1, inputChannels: C, extent: e, weight: p + conv1[k].weight, bias: p + conv1[k].bias,
                                   outputChannels: C, into: r2, scratch: cols)
            VectorKernels.relu(r2, count: count)
            Convolution3x3.forward(r2, inputChannels: C, extent: e, weight: p + conv2[k].weight, bias: p + conv2[k].bias,
                                   outputChannels: C, into: h, accumulate: true, scratch: cols)
        }
        // out = conv_out(relu(h_B))
        let rF = ws[self.rF]
        Self.relu(h, into: rF, count: count)
        Convolution3x3.forward(rF, inputChannels: C, extent: e, weight: p + convOut.weight, bias: p + convOut.bias,
                               outputChannels: outputs, into: output, scratch: cols)
    }

    /// Backward from dL/d output `dOutput` `[Co, n, H, W]` after ``forward`` on the same u: parameter gradients into `g`
    /// (overwritten, or added when `accumulate`), dL/du `[Ci, n, H, W]` into `dInput` (overwritten) when given.
    func backward<S: FlowScalar>(_ dOutput: UnsafePointer<S>, input u: UnsafePointer<S>, extent e: Convolution3x3.Extent,
                                 parameters p: UnsafePointer<S>, gradient g: UnsafeMutablePointer<S>, accumulate: Bool,
                                 workspace ws: FlowWorkspace<S>, dInput: UnsafeMutablePointer<S>?) {
        let C = channels, count = C * e.plane, cols = ws[self.cols]
        let dh = ws[a], d1 = ws[b], d2 = ws[c]
        // out = conv_out(rF), rF = relu(h_B)  ⇒  dh_B = (conv_outᵀ dOut) ⊙ [rF > 0]
        let rF = ws[self.rF]
        Convolution3x3.backward(dOutput, input: rF, inputChannels: C, extent: e, weight: p + convOut.weight,
                                outputChannels: outputs, dWeight: g + convOut.weight, dBias: g + convOut.bias,
                                accumulate: accumulate, dx: dh, scratch: cols)
        Self.reluMask(dh, output: rF, count: count)
        for k in stride(from: blocks - 1, through: 0, by: -1) {
            let r1 = ws[self.r1[k]], r2 = ws[self.r2[k]]
            // h_{b+1} = h_b + conv2(r2)  ⇒  dr2 = conv2ᵀ dh_{b+1};  r2 = relu(conv1(r1))  ⇒  dc1 = dr2 ⊙ [r2 > 0]
            Convolution3x3.backward(dh, input: r2, inputChannels: C, extent: e, weight: p + conv2[k].weight,
                                    outputChannels: C, dWeight: g + conv2[k].weight, dBias: g + conv2[k].bias,
                                    accumulate: accumulate, dx: d1, scratch: cols)
            Self.reluMask(d1, output: r2, count: count)
            // r1 = relu(h_b)  ⇒  dh_b = dh_{b+1} + (conv1ᵀ dc1) ⊙ [r1 > 0]
            Convolution3x3.backward(d1, input: r1, inputChannels: C, extent: e, weight: p + conv1[k].weight,
                                    outputChannels: C, dWeight: g + conv1[k].weight, dBias: g + conv1[k].bias,
                                    accumulate: accumulate, dx: d2, scratch: cols)
            for j in 0..<count { dh[j] += r1[j] > 0 ? d2[j] : 0 }  // branch-free: vectorises
        }
        if let context {
            // h_0 = conv_in(u) + W_c·c  ⇒  dW_c[j, k] += Σ_i S_ji·c_ik, dc_ik += Σ_j W_c[j, k]·S_ji, S_ji = Σ_pixels dh_0
            let K = context.features, c = ws[context.values], dc = ws[context.gradient]
            let wc = p + contextWeight, dWc = g + contextWeight, P = e.height * e.width
            if !accumulate { dWc.update(repeating: 0, count: C * K) }
            for j in 0..<C {
                for i in 0..<e.images {
                    let dhi = dh + (j * e.images + i) * P
                    var sum: S = 0
                    for q in 0..<P { sum += dhi[q] }
                    for k in 0..<K { dWc[j * K + k] += sum * c[i * K + k] }
                    if dInput != nil { for k in 0..<K { dc[i * K + k] += wc[j * K + k] * sum } }
                }
            }
        }
        // h_0 = conv_in(u)
        Convolution3x3.backward(dh, input: u, inputChannels: inputs, extent: e, weight: p + convIn.weight,
                                outputChannels: C, dWeight: g + convIn.weight, dBias: g + convIn.bias,
                                accumulate: accumulate, dx: dInput, scratch: cols)
    }

    /// r = max(h, 0) (NaN propagates).
    @inline(__always)
    static func relu<S: FlowScalar>(_ h: UnsafePointer<S>, into r: UnsafeMutablePointer<S>, count: Int) {
        for j in 0..<count { r[j] = h[j] < 0 ? 0 : h[j] }
    }

    /// d ⊙= [r > 0], r a ReLU's output.
    @inline(__always)
    static func reluMask<S: FlowScalar>(_ d: UnsafeMutablePointer<S>, output r: UnsafePointer<S>, count: Int) {
        for j in 0..<count { d[j] = r[j] > 0 ? d[j] : 0 }
    }

    /// Multiply-adds of one forward pass per image of P pixels.
    func multiplyAddsPerImage(pixels P: Int) -> Int {
        9 * P * (inputs * channels + 2 * blocks * channels * channels + channels * outputs) + channels * (context?.features ?? 0)
    }
}
