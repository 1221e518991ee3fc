/// A transform whose training passes read statistics of the whole **global batch** (batch normalisation): the
/// forward pass needs per-channel sums over every row of the step, on every worker and rank, before it can map any
/// row, and the backward pass needs per-channel sums of the incoming gradient. Each pass is therefore split in two:
/// the local partial sums of this pass's rows, then, once a ``BatchStatisticsReducer`` has summed the partials of
/// every pass of the step (PyTorch's `SyncBatchNorm`), the map itself. ``FlowNetwork``'s training passes with batch
/// statistics drive the split (``FlowNetwork/forwardWithBatchStatistics(_:worker:parameters:statistics:)``).
///
/// The plain ``FlowTransform`` passes are the evaluation mode (a fixed map of running averages), so that evaluation,
/// sampling and encoding do not depend on which rows share a batch.
///
/// Shapes (n rows of this pass, D = `features`): x, y, dy, dx `[n, D]`; partial sums and totals
/// `[statisticsCount]` (Double), totals being the sums of every pass's partials.
public protocol BatchStatisticsTransform<Scalar>: FlowTransform {
    /// Values per statistics vector (partials and totals alike, forward and backward).
    var statisticsCount: Int { get }
    /// The fewest rows a training batch needs (more than one value behind every statistic).
    var minimumRows: Int { get }

    /// Forward, first half: this pass's partial sums of x `[n, D]` into `partials` `[statisticsCount]` (overwritten).
    func forwardStatistics(_ x: UnsafePointer<Scalar>, rows n: Int, into partials: UnsafeMutablePointer<Double>)

    /// Forward, second half: y and the per-row log-det (added to `logDet` `[n]`) with the batch's `totals`; keeps in
    /// the workspace what the backward pass needs.
    func forward(
        _ x: UnsafePointer<Scalar>, rows n: Int, batchTotals totals: UnsafePointer<Double>, parameters p: UnsafePointer<Scalar>,
        workspace ws: FlowWorkspace<Scalar>, output y: UnsafeMutablePointer<Scalar>, logDet: UnsafeMutablePointer<Scalar>)

    /// Backward, first half (after the forward pass with totals): this pass's partial sums of dL/dy into `partials`.
    func backwardStatistics(
        _ dy: UnsafePointer<Scalar>, input x: UnsafePointer<Scalar>, rows n: Int, workspace ws: FlowWorkspace<Scalar>,
        into partials: UnsafeMutablePointer<Double>)

    /// Backward, second half: parameter gradients (the gradient of the whole global batch's loss, as far as it flows
    /// through this pass's rows) and dL/dx, with the backward `totals`.
    func backward(
        _ dy: UnsafePointer<Scalar>, dLogDet: Scalar, input x: UnsafePointer<Scalar>, rows n: Int,
        batchTotals totals: UnsafePointer<Double>, parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>,
        accumulate: Bool, workspace ws: FlowWorkspace<Scalar>, dx: UnsafeMutablePointer<Scalar>?)

    /// After a training step: moves the running averages (untrained tensors in `p`) towards the statistics of the
    /// forward `totals` of that step.
    func updateRunningAverages(forwardTotals totals: UnsafePointer<Double>, parameters p: UnsafeMutablePointer<Scalar>)

    /// Whether the batch's statistics from forward `totals` and the running averages they would give are finite in
    /// `Scalar` (a step whose are not is treated as a non-finite step, not applied).
    func runningAveragesStayFinite(forwardTotals totals: UnsafePointer<Double>, parameters p: UnsafePointer<Scalar>) -> Bool
}

/// Sums the partial statistics of every pass of a training step over the workers of this rank and over the ranks:
/// the collective inside a forward or backward pass with batch statistics.
///
/// Every pass of the step writes its partials into the row of its **slot** (``partials(slot:)``); then every worker
/// of every rank calls ``reduce(worker:count:record:)`` at the same point of its pass (a barrier), and all get back
/// the same totals: the slots' rows summed in slot order. Slots are numbered by the caller so that the order, and
/// with it every bit of the totals, is what the caller needs (a global worker index; in exact mode a micro-batch
/// index, the same in every layout).
public protocol BatchStatisticsReducer: AnyObject {
    /// The row `[statisticsCount]` of slot `slot` to write this pass's partial sums into (zero until written).
    func partials(slot: Int) -> UnsafeMutablePointer<Double>
    /// Collective over every worker of every rank: returns the sum over the slots of their first `count` values. When
    /// `record` is given (the forward pass of the `record`-th transform with batch statistics), the totals are kept
    /// for the running averages. The slots' rows are zero again afterwards.
    func reduce(worker: Int, count: Int, record: Int?) -> UnsafePointer<Double>
}

/// The reducer of one worker on one process: the totals are the slots' sums in slot order. For tests, tools and
/// single-threaded training passes.
public final class LocalBatchStatistics: BatchStatisticsReducer {
    /// Slots × values per slot.
    let slots: Int, width: Int
    let rows: AlignedBuffer<Double>
    let totals: AlignedBuffer<Double>
    /// The forward totals of each transform with batch statistics, by its ordinal in the chain.
    public private(set) var recorded: [[Double]] = []

    /// Room for `slots` passes of up to `width` statistics each.
    public init(slots: Int, width: Int) {
        self.slots = slots
        self.width = width
        rows = AlignedBuffer(count: slots * width)
        totals = AlignedBuffer(count: width)
    }

    public func partials(slot: Int) -> UnsafeMutablePointer<Double> {
        precondition(slot >= 0 && slot < slots, "slot \(slot) of \(slots)")
        return rows.base + slot * width
    }

    public func reduce(worker: Int, count: Int, record: Int?) -> UnsafePointer<Double> {
        precondition(count <= width)
        for k in 0..<count {
            var sum = 0.0
            for s in 0..<slots { sum += rows.base[s * width + k] }
            totals.base[k] = sum
        }
        rows.base.update(repeating: 0, count: slots * width)
        if let record {
            while recorded.count <= record { recorded.append([]) }
            recorded[record] = Array(UnsafeBufferPointer(start: totals.base, count: count))
        }
        return UnsafePointer(totals.base)
    }
}
