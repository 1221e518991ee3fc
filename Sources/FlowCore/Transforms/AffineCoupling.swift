import RealModule

/// The affine coupling layer of RealNVP with MLP s and t networks, on rows of D features.
///
/// With mask b (1 = conditioning part, passed through):
///
///     h = b ⊙ x
///     s = scale ⊙ tanh(S(h)) ⊙ (1 − b),  t = T(h) ⊙ (1 − b)
///     y = h + (1 − b) ⊙ (x ⊙ exp(s) + t)                       (forward, data → latent)
///     log|det ∂y/∂x| = Σ_j s_j                                  (per row, nats)
///     x = h + (1 − b) ⊙ ((y − t) ⊙ exp(−s))                    (inverse)
///
/// S and T are each `hiddenLayers` Dense+ReLU layers of width H and a Dense output layer (``MLP``); `scale` is 1
/// unless the coupling has the paper's learnable per-feature scale.
///
/// Conditional (with a ``CouplingContext`` of K values per row): S and T read [b ⊙ x, c], the masked input and the
/// row's context concatenated, so their first layer has D + K inputs (nflows' and zuko's conditional MLP
/// couplings). For a fixed c the coupling is the same bijection in x with the same log-det and inverse; the
/// backward pass also adds dL/dc `[n, K]` into the context's gradient buffer when dL/dx is asked for.
///
/// References: Dinh, Sohl-Dickstein, Bengio, "Density estimation using Real NVP", ICLR 2017, eqs. 7–9.
///
/// Arguments: `mask` `[D]` of 0/1; `hidden` H; `hiddenLayers` L; `learnableScale`.
/// Tensors: `{name}.s.{j}.weight` / `.bias`, `{name}.t.{j}.weight` / `.bias` for j = 0…L (Glorot-uniform weights,
/// zero biases), then `{name}.scale` `[D]` (ones) with a learnable scale.
/// Workspace, n rows: its own h = [b ⊙ x, c] `[n, D + K]`, tanh(S(h)) `[n, D]`, T(h) `[n, D]`, the hidden activations of S and T
/// `[n, H]` each; shared scratch dS, dT `[n, D]`, dhS, dhT `[n, D + K]`, the dense layers' dA0, dA1 `[n, H]` and thin-layer scratch.
///
/// Example:
///
///     var parameters = ParameterLayout.Builder(), buffers = WorkspaceLayout.Builder()
///     let coupling = AffineCoupling<Double>(name: "couplings.0", mask: [0, 1], hidden: 8, hiddenLayers: 2,
///                                           learnableScale: false, parameters: &parameters, workspace: &buffers)
///
/// A conditional coupling on 3 context values: `let c = CouplingContext(features: 3, workspace: &buffers)`, then
/// `AffineCoupling(…, context: c, …)`; write each pass's context into `workspace[c.values]` `[n, 3]` first.
public struct AffineCoupling<Scalar: FlowScalar>: FlowTransform {
    public let name: String
    public let features: Int
    /// 0/1 mask `[D]`.
    public let mask: [Scalar]
    /// Feature indices with b = 0 (transformed) and b = 1 (conditioning).
    let transformed: [Int]
    let conditioning: [Int]
    let s: [DenseSlot]
    let t: [DenseSlot]
    /// Offset of `{name}.scale` `[D]`, or nil (scale ≡ 1).
    let scale: Int?
    /// The flow's context buffers, or nil (unconditional).
    let context: CouplingContext?
    // Own buffers: h = [b ⊙ x, c] `[n, D + K]`, tanh(S(h)), T(h) `[n, D]`; hidden activations `[net][layer]` `[n, H]`.
    let masked: WorkspaceBuffer, sValue: WorkspaceBuffer, tValue: WorkspaceBuffer
    let activations: [[WorkspaceBuffer]]
    // Shared scratch.
    let dS: WorkspaceBuffer, dT: WorkspaceBuffer, dhS: WorkspaceBuffer, dhT: WorkspaceBuffer
    let dA0: WorkspaceBuffer, dA1: WorkspaceBuffer, thin: WorkspaceBuffer

    /// Declares the coupling's tensors and buffers; with `context`, S and T also read the context c `[n, K]`.
    public init(name: String, mask m: [Int], hidden H: Int, hiddenLayers L: Int, learnableScale: Bool,
                context: CouplingContext? = nil,
                parameters: inout ParameterLayout.Builder, workspace: inout WorkspaceLayout.Builder) {
        let D = m.count
        let W = D + (context?.features ?? 0)
        self.context = context
        self.name = name
        features = D
        mask = m.map { Scalar($0) }
        transformed = m.indices.filter { m[$0] == 0 }
        conditioning = m.indices.filter { m[$0] == 1 }
        var nets: [[DenseSlot]] = []
        for net in ["s", "t"] {
            nets.append((0...L).map { j in
                parameters.dense("\(name).\(net).\(j)", inputs: j == 0 ? W : H, outputs: j == L ? D : H)
            })
        }
        s = nets[0]
        t = nets[1]
        scale = learnableScale ? parameters.tensor("\(name).scale", shape: [D], initializer: .ones) : nil
        masked = workspace.buffer("\(name).masked", perRow: W)
        sValue = workspace.buffer("\(name).tanh_s", perRow: D)
        tValue = workspace.buffer("\(name).t", perRow: D)
        activations = ["s", "t"].map { net in (0..<L).map { l in workspace.buffer("\(name).\(net).act.\(l)", perRow: H) } }
        dS = workspace.scratch("coupling.dS", perRow: D)
        dT = workspace.scratch("coupling.dT", perRow: D)
        dhS = workspace.scratch("coupling.dhS", perRow: W)
        dhT = workspace.scratch("coupling.dhT", perRow: W)
        dA0 = workspace.scratch("dense.dA0", perRow: H)
        dA1 = workspace.scratch("dense.dA1", perRow: H)
        thin = workspace.scratch("dense.thin", perRow: 0, fixed: Dense.thin * max(H, W))
    }

    /// S(h) and T(h) on n rows of h = [b ⊙ x, c] (from `x` and the context buffer): tanh(S(h)) into sValue
    /// (unmasked, unscaled), T(h) into tValue.
    @inline(__always)
    func networks(_ x: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>) {
        let D = features
        let h = ws[masked]
        if let context {
            let K = context.features, W = D + K, c = ws[context.values]
            for i in 0..<n {
                for j in 0..<D { h[i * W + j] = x[i * D + j] * mask[j] }
                for k in 0..<K { h[i * W + D + k] = c[i * K + k] }
            }
        } else {
            for i in 0..<n { for j in 0..<D { h[i * D + j] = x[i * D + j] * mask[j] } }
        }
        let sv = ws[sValue], tv = ws[tValue], th = ws[thin]
        MLP.forward(s, parameters: p, input: h, rows: n, activations: { ws[activations[0][$0]] }, output: sv, thin: th)
        MLP.forward(t, parameters: p, input: h, rows: n, activations: { ws[activations[1][$0]] }, output: tv, thin: th)
    }

    public func forward(
        _ x: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>,
        workspace ws: FlowWorkspace<Scalar>, output y: UnsafeMutablePointer<Scalar>,
        logDet: UnsafeMutablePointer<Scalar>
    ) {
        let D = features
        networks(x, rows: n, parameters: p, workspace: ws)
        let sv = ws[sValue], tv = ws[tValue]
        for e in 0..<(n * D) { sv[e] = Scalar.tanh(sv[e]) }
        let sc = scale.map { p + $0 }
        for i in 0..<n {
            let r = i * D
            var ld: Scalar = 0
            for j in conditioning { y[r + j] = x[r + j] }
            for j in transformed {
                let sj = sc.map { $0[j] * sv[r + j] } ?? sv[r + j]
                // y = x ⊙ exp(s) + t on the transformed part
                y[r + j] = x[r + j] * Scalar.exp(sj) + tv[r + j]
                ld += sj
            }
            logDet[i] += ld
        }
    }

    public func backward(
        _ dy: UnsafePointer<Scalar>, dLogDet: Scalar, input x: UnsafePointer<Scalar>, rows n: Int,
        parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>, accumulate: Bool,
        workspace ws: FlowWorkspace<Scalar>, dx: UnsafeMutablePointer<Scalar>?
    ) {
        let D = features
        let sv = ws[sValue]
        let dS = ws[self.dS], dT = ws[self.dT]
        let sc = scale.map { p + $0 }
        let dScale = scale.map { g + $0 }
        if let dScale, !accumulate { dScale.update(repeating: 0, count: D) }
        for i in 0..<n {
            let r = i * D
            for j in conditioning {
                dS[r + j] = 0
                dT[r + j] = 0
                dx?[r + j] = dy[r + j]
            }
            for j in transformed {
                let th = sv[r + j]
                let a = sc?[j] ?? 1
                let e = Scalar.exp(a * th)
                // y = x·exp(s) + t:  ∂y/∂x = exp(s), ∂y/∂s = x·exp(s), ∂y/∂t = 1;  log-det += s
                let ds = dy[r + j] * x[r + j] * e + dLogDet
                dx?[r + j] = dy[r + j] * e
                dT[r + j] = dy[r + j]
                // s = a·tanh(u):  ∂s/∂u = a·(1 − tanh²u),  ∂s/∂a = tanh u
                dS[r + j] = ds * a * (1 - th * th)
                if let dScale { dScale[j] += ds * th }
            }
        }
        let h = UnsafePointer(ws[masked])
        let dhS: UnsafeMutablePointer<Scalar>? = dx == nil ? nil : ws[self.dhS]
        let dhT: UnsafeMutablePointer<Scalar>? = dx == nil ? nil : ws[self.dhT]
        let a0 = ws[dA0], a1 = ws[dA1], th = ws[thin]
        MLP.backward(s, parameters: p, gradient: g, accumulate: accumulate, input: h, rows: n,
                     activations: { ws[activations[0][$0]] }, dOutput: dS, dInput: dhS,
                     scratch0: a0, scratch1: a1, thin: th)
        MLP.backward(t, parameters: p, gradient: g, accumulate: accumulate, input: h, rows: n,
                     activations: { ws[activations[1][$0]] }, dOutput: dT, dInput: dhT,
                     scratch0: a0, scratch1: a1, thin: th)
        if let dx, let dhS, let dhT {
            // h = [b ⊙ x, c] feeds both networks: dx += b ⊙ (dh_s + dh_t)[:, :D],  dc += (dh_s + dh_t)[:, D:]
            let K = context?.features ?? 0, W = D + K
            for i in 0..<n {
                let r = i * D, rh = i * W
                for j in conditioning { dx[r + j] += dhS[rh + j] + dhT[rh + j] }
            }
            if let context {
                let dc = ws[context.gradient]
                for i in 0..<n {
                    for k in 0..<K { dc[i * K + k] += dhS[i * W + D + k] + dhT[i * W + D + k] }
                }
            }
        }
    }

    public func inverse(
        _ y: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>,
        workspace ws: FlowWorkspace<Scalar>, output x: UnsafeMutablePointer<Scalar>
    ) {
        let D = features
        // b ⊙ y = b ⊙ x: the networks see the same input as in the forward pass.
        networks(y, rows: n, parameters: p, workspace: ws)
        let sv = ws[sValue], tv = ws[tValue]
        let sc = scale.map { p + $0 }
        for i in 0..<n {
            let r = i * D
            for j in conditioning { x[r + j] = y[r + j] }
            for j in transformed {
                let sj = (sc?[j] ?? 1) * Scalar.tanh(sv[r + j])
                // x = (y − t) ⊙ exp(−s) on the transformed part
                x[r + j] = (y[r + j] - tv[r + j]) * Scalar.exp(-sj)
            }
        }
    }
}

/// The context c of a conditional flow as its couplings read it: K values per row in a buffer the flow fills
/// before each pass (`values` `[n, K]`, standardised), and the buffer its couplings' backward passes add dL/dc into
/// (`gradient` `[n, K]`, zeroed by the flow before a backward pass). Declared once per flow and shared by every
/// coupling.
public struct CouplingContext: Hashable, Sendable {
    /// Context values per row K (≥ 1).
    public let features: Int
    /// c `[n, K]`.
    public let values: WorkspaceBuffer
    /// dL/dc `[n, K]`.
    public let gradient: WorkspaceBuffer

    /// Declares the two buffers of a context of `features` values per row.
    public init(features: Int, workspace: inout WorkspaceLayout.Builder) {
        precondition(features >= 1, "CouplingContext: need at least 1 context value per row")
        self.features = features
        values = workspace.buffer("flow.context", perRow: features)
        gradient = workspace.buffer("flow.d_context", perRow: features)
    }
}
