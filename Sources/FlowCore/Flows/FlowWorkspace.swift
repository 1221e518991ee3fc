/// Every activation and gradient buffer one worker needs to run a RealNVP forward and backward pass
/// on up to `capacity` rows, allocated once (64-byte aligned) and reused by every step.
///
/// Buffers, all row-major (K couplings, D features, H hidden units, L hidden layers, n = capacity):
/// - `coupling input k`  `[n, D]`, k = 0…K: x₀ = normalised data, x_K = z (latent)
/// - `masked input k`    `[n, D]`: b_k ⊙ x_k, the input of s and t
/// - `activation k, net, l` `[n, H]`: post-ReLU hidden layer l of s (net 0) or t (net 1) of coupling k
/// - `sValue k` `[n, D]`: tanh(S(b⊙x)) before masking and scaling; `tValue k` `[n, D]`: T(b⊙x)
/// - `logDet` `[n]`: Σ over couplings of the per-row log-det-Jacobian (nats)
/// - backward scratch: `dA0`, `dA1` `[n, H]`; `dS`, `dT`, `dhS`, `dhT`, `dCurrent`, `dNext` `[n, D]`;
///   `thin` `[4·max(H, D)]` for the thin-layer kernels
public final class FlowWorkspace<Scalar: FlowScalar>: @unchecked Sendable {
    /// Maximum rows per pass.
    public let capacity: Int
    let D: Int, H: Int, L: Int, K: Int
    let inputs: AlignedBuffer<Scalar>
    let masked: AlignedBuffer<Scalar>
    let acts: AlignedBuffer<Scalar>
    let sValues: AlignedBuffer<Scalar>
    let tValues: AlignedBuffer<Scalar>
    /// Per-row log-det-Jacobian of the couplings `[capacity]` after a forward pass (nats).
    public let logDet: AlignedBuffer<Scalar>
    let dA: AlignedBuffer<Scalar>
    let small: AlignedBuffer<Scalar>
    /// Thin-layer scratch `[4 · max(H, D)]`.
    let thin: AlignedBuffer<Scalar>

    /// Allocates a workspace for `configuration` and up to `capacity` rows per pass.
    public init(configuration c: FlowConfiguration, capacity: Int) {
        precondition(capacity >= 1)
        // Parallelism comes from our workers: BLAS itself stays single-threaded (its threaded path also
        // allocates per call).
        BLASRuntime.useSingleThread()
        self.capacity = capacity
        D = c.dim; H = c.hidden; L = c.hiddenLayers; K = c.couplings
        inputs = AlignedBuffer(count: (K + 1) * capacity * D)
        masked = AlignedBuffer(count: K * capacity * D)
        acts = AlignedBuffer(count: K * 2 * L * capacity * H)
        sValues = AlignedBuffer(count: K * capacity * D)
        tValues = AlignedBuffer(count: K * capacity * D)
        logDet = AlignedBuffer(count: capacity)
        dA = AlignedBuffer(count: 2 * capacity * H)
        small = AlignedBuffer(count: 6 * capacity * D)
        thin = AlignedBuffer(count: Dense.thin * max(H, D))
    }

    /// Bytes held by this workspace.
    public var byteCount: Int {
        (inputs.count + masked.count + acts.count + sValues.count + tValues.count + logDet.count + dA.count
            + small.count + thin.count) * MemoryLayout<Scalar>.stride
    }

    /// Coupling input x_k `[capacity, D]`; k = K is the latent z.
    @inline(__always) public func couplingInput(_ k: Int) -> UnsafeMutablePointer<Scalar> {
        inputs.base + k * capacity * D
    }
    @inline(__always) func maskedInput(_ k: Int) -> UnsafeMutablePointer<Scalar> { masked.base + k * capacity * D }
    @inline(__always) func activation(_ k: Int, _ net: Int, _ l: Int) -> UnsafeMutablePointer<Scalar> {
        acts.base + ((k * 2 + net) * L + l) * capacity * H
    }
    @inline(__always) func sValue(_ k: Int) -> UnsafeMutablePointer<Scalar> { sValues.base + k * capacity * D }
    @inline(__always) func tValue(_ k: Int) -> UnsafeMutablePointer<Scalar> { tValues.base + k * capacity * D }
    @inline(__always) func dA(_ i: Int) -> UnsafeMutablePointer<Scalar> { dA.base + i * capacity * H }
    /// Backward scratch `[capacity, D]`: 0 dS, 1 dT, 2 dhS, 3 dhT, 4 and 5 the running dL/dx ping-pong.
    @inline(__always) func smallBuffer(_ i: Int) -> UnsafeMutablePointer<Scalar> { small.base + i * capacity * D }
}
