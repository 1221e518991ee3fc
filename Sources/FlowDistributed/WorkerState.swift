import FlowCore

/// One worker thread's private buffers, allocated once per run and reused by every step:
/// - `workspace`: activations and backward scratch for up to `capacity` rows
/// - `input` `[capacity, W]`: the worker's rows (W = D, or D + K for a conditional flow's rows [x, c]) of the batch, gathered from the training data
/// - `gradient` `[storageCount]`: dL/dθ of the summed NLL over the worker's rows (default mode)
/// - `slots[q]` `[storageCount]`: the gradient of the worker's q-th micro-batch (exact mode)
/// - `exponents` `[tensors]`: per-tensor max binary exponent over the worker's micro-batches (exact mode)
/// - `passWorkspaces`: with batch normalisation in exact mode, one workspace per micro-batch (the passes run
///   transform by transform, so every micro-batch's activations are alive at once); otherwise just `workspace`
/// - `passes`: the step's ``BatchPass``es (batch normalisation), capacity reserved once
final class WorkerState: @unchecked Sendable {
    let workspace: FlowWorkspace<Float>
    let input: AlignedBuffer<Float>
    let gradient: AlignedBuffer<Float>
    var slots: [AlignedBuffer<Float>]
    var exponents: [Int64]
    let passWorkspaces: [FlowWorkspace<Float>]
    var passes: [BatchPass<Float>] = []
    /// Σ NLL (normalised units, nats) over the rows processed in the current step.
    var nllSum = 0.0
    /// Rows processed in the current step.
    var rows = 0
    /// Micro-batches processed in the current step (exact mode).
    var slotsUsed = 0
    /// Whether a non-finite value appeared in this worker's loss or gradient.
    var nonFinite = false

    init(network: FlowNetwork<Float>, capacity: Int, storageCount: Int, slotCount: Int, tensorCount: Int) {
        let workspace = network.makeWorkspace(capacity: capacity)
        self.workspace = workspace
        let perPass = network.hasBatchStatistics ? max(1, slotCount) : 1
        passWorkspaces = [workspace] + (1..<perPass).map { _ in network.makeWorkspace(capacity: capacity) }
        passes.reserveCapacity(perPass)
        input = AlignedBuffer(count: capacity * network.inputWidth)
        gradient = AlignedBuffer(count: slotCount > 0 ? 0 : storageCount)
        slots = (0..<slotCount).map { _ in AlignedBuffer(count: storageCount) }
        exponents = Array(repeating: FixedPointGradient.zeroExponent, count: tensorCount)
    }

    /// Bytes of the worker's buffers.
    var byteCount: Int {
        passWorkspaces.reduce(0) { $0 + $1.byteCount } + 4 * (input.count + gradient.count + slots.reduce(0) { $0 + $1.count })
    }
}
