import RealModule

/// The affine coupling layer of RealNVP (Dinh et al. 2017, eqs. 7–9), with mask b (1 = conditioning
/// part, passed through):
///
///     h = b ⊙ x
///     s = scale ⊙ tanh(S(h)) ⊙ (1 − b),  t = T(h) ⊙ (1 − b)
///     y = h + (1 − b) ⊙ (x ⊙ exp(s) + t)                       (forward, data → latent)
///     log|det ∂y/∂x| = Σ_j s_j                                  (per row, nats)
///     x = h + (1 − b) ⊙ ((y − t) ⊙ exp(−s))                    (inverse)
///
/// `scale` is 1 unless the configuration has a learnable scale. Buffers, row-major, n rows:
/// x, y, dy, dx `[n, D]`; the workspace keeps h, tanh(S(h)), T(h) and the hidden activations of coupling k.
struct AffineCoupling<Scalar: FlowScalar> {
    let index: Int
    /// 0/1 mask `[D]`.
    let mask: [Scalar]
    /// Feature indices with b = 0 (transformed) and b = 1 (conditioning).
    let transformed: [Int]
    let conditioning: [Int]
    let s: [DenseSlot]
    let t: [DenseSlot]
    /// Offset of `couplings.{k}.scale` `[D]`, or nil (scale ≡ 1).
    let scale: Int?

    /// Forward on n rows: reads x, writes y and adds the per-row log-det to `logDet` `[n]`.
    func forward(
        _ x: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>,
        workspace ws: FlowWorkspace<Scalar>, output y: UnsafeMutablePointer<Scalar>,
        logDet: UnsafeMutablePointer<Scalar>
    ) {
        let D = ws.D, k = index
        let h = ws.maskedInput(k)
        for i in 0..<n { for j in 0..<D { h[i * D + j] = x[i * D + j] * mask[j] } }
        let sv = ws.sValue(k), tv = ws.tValue(k)
        MLP.forward(s, parameters: p, input: h, rows: n, activations: { ws.activation(k, 0, $0) }, output: sv, thin: ws.thin.base)
        MLP.forward(t, parameters: p, input: h, rows: n, activations: { ws.activation(k, 1, $0) }, output: tv, thin: ws.thin.base)
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

    /// Backward on n rows after ``forward(_:rows:parameters:workspace:output:logDet:)`` on the same rows.
    ///
    /// Given dy = dL/dy `[n, D]` and the per-row dL/d(log-det) `dLogDet` (a constant for the NLL: −1 per
    /// row, so it is passed as one scalar), writes the parameter gradients of this coupling into `g`
    /// (overwrite or accumulate) and, when `dx` is given, dL/dx `[n, D]`.
    func backward(
        _ dy: UnsafePointer<Scalar>, dLogDet: Scalar, input x: UnsafePointer<Scalar>, rows n: Int,
        parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>, accumulate: Bool,
        workspace ws: FlowWorkspace<Scalar>, dx: UnsafeMutablePointer<Scalar>?
    ) {
        let D = ws.D, k = index
        let sv = ws.sValue(k)
        let dS = ws.smallBuffer(0), dT = ws.smallBuffer(1)
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
        let h = UnsafePointer(ws.maskedInput(k))
        let dhS: UnsafeMutablePointer<Scalar>? = dx == nil ? nil : ws.smallBuffer(2)
        let dhT: UnsafeMutablePointer<Scalar>? = dx == nil ? nil : ws.smallBuffer(3)
        MLP.backward(s, parameters: p, gradient: g, accumulate: accumulate, input: h, rows: n,
                     activations: { ws.activation(k, 0, $0) }, dOutput: dS, dInput: dhS,
                     scratch0: ws.dA(0), scratch1: ws.dA(1), thin: ws.thin.base)
        MLP.backward(t, parameters: p, gradient: g, accumulate: accumulate, input: h, rows: n,
                     activations: { ws.activation(k, 1, $0) }, dOutput: dT, dInput: dhT,
                     scratch0: ws.dA(0), scratch1: ws.dA(1), thin: ws.thin.base)
        if let dx, let dhS, let dhT {
            // h = b ⊙ x feeds both networks: dx += b ⊙ (dh_s + dh_t)
            for i in 0..<n {
                let r = i * D
                for j in conditioning { dx[r + j] += dhS[r + j] + dhT[r + j] }
            }
        }
    }

    /// Inverse on n rows: reads y, writes x (may alias y). Uses the workspace's coupling-k buffers.
    func inverse(
        _ y: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>,
        workspace ws: FlowWorkspace<Scalar>, output x: UnsafeMutablePointer<Scalar>
    ) {
        let D = ws.D, k = index
        let h = ws.maskedInput(k)
        for i in 0..<n { for j in 0..<D { h[i * D + j] = y[i * D + j] * mask[j] } }
        let sv = ws.sValue(k), tv = ws.tValue(k)
        MLP.forward(s, parameters: p, input: h, rows: n, activations: { ws.activation(k, 0, $0) }, output: sv, thin: ws.thin.base)
        MLP.forward(t, parameters: p, input: h, rows: n, activations: { ws.activation(k, 1, $0) }, output: tv, thin: ws.thin.base)
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
