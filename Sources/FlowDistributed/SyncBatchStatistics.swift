import CFlowSupport
import FlowCore
import Foundation
import Synchronization

/// The ``BatchStatisticsReducer`` of a data-parallel step (PyTorch's `SyncBatchNorm`): the per-channel sums of batch
/// normalisation over every row of the **global** batch, on every worker thread of every rank, in the middle of the
/// forward and backward passes.
///
/// Buffers: `partials` `[slots, width]` (Double), one row per pass of the step; `totals` `[width]`; `recorded`
/// `[transforms, width]`, each batch-statistics transform's forward totals of the last step (for the running
/// averages). Slots are global: rank·T_max + w in the default modes (T_max the most workers any rank runs), the
/// micro-batch index in exact mode, so a slot is written on exactly one rank.
///
/// A reduction is a barrier of this rank's workers: each writes its passes' rows and arrives; the coordinating thread
/// (worker 0, the one that may call MPI) waits for the others, allreduces the whole `[slots, width]` matrix across the
/// ranks (every entry is non-zero on one rank only, so the sum is exact whatever MPI's order), sums the rows in slot
/// order (the same bits on every rank; in exact mode the same in every layout), zeroes the matrix, and releases the
/// others. A worker with no rows still takes part.
final class SyncBatchStatistics: BatchStatisticsReducer, @unchecked Sendable {
    let communicator: any Communicator
    /// Workers T on this rank.
    let workers: Int
    /// Rows of `partials` and values per row.
    let slots: Int, width: Int
    /// Slots per rank in the default modes: T_max.
    let slotStride: Int
    let partialRows: AlignedBuffer<Double>
    let totals: AlignedBuffer<Double>
    let recorded: AlignedBuffer<Double>
    /// Workers 1 ..< T that have arrived at the current reduction.
    private let arrived = Atomic<Int>(0)
    /// Bumped by worker 0 when a reduction's totals are ready.
    private let generation = Atomic<Int>(0)
    /// Whether to spin before yielding (only when every worker has a core).
    private let spin: Bool
    /// A communicator error raised inside a pass (worker 0); the exchange rethrows it after the region.
    var error: Error?

    /// For `transforms` batch-statistics transforms of up to `width` statistics, `slots` passes per step, `workers`
    /// threads on this rank, `slotStride` slots per rank (the default modes' numbering).
    init(communicator: any Communicator, workers: Int, slots: Int, slotStride: Int, width: Int, transforms: Int) {
        self.communicator = communicator
        self.workers = workers
        self.slots = slots
        self.slotStride = slotStride
        self.width = width
        partialRows = AlignedBuffer(count: slots * width)
        totals = AlignedBuffer(count: width)
        recorded = AlignedBuffer(count: max(1, transforms) * width)
        spin = workers <= WorkerPool.availableCores
    }

    func partials(slot: Int) -> UnsafeMutablePointer<Double> {
        precondition(slot >= 0 && slot < slots, "batch statistics: slot \(slot) of \(slots)")
        return partialRows.base + slot * width
    }

    func reduce(worker: Int, count: Int, record: Int?) -> UnsafePointer<Double> {
        if worker == 0 {
            var spins = 0
            while arrived.load(ordering: .acquiring) < workers - 1 { pause(&spins) }
            arrived.store(0, ordering: .relaxed)
            combine(count: count, record: record)
            generation.wrappingAdd(1, ordering: .releasing)
        } else {
            let current = generation.load(ordering: .acquiring)
            arrived.wrappingAdd(1, ordering: .releasing)
            var spins = 0
            while generation.load(ordering: .acquiring) == current { pause(&spins) }
        }
        return UnsafePointer(totals.base)
    }

    /// The forward totals `[width]` of the `k`-th batch-statistics transform in the last step.
    func forwardTotals(_ k: Int) -> UnsafePointer<Double> { UnsafePointer(recorded.base + k * width) }

    /// Worker 0, every worker arrived: the ranks' rows, the sum in slot order, the matrix zeroed.
    private func combine(count: Int, record: Int?) {
        let all = slots * width
        if communicator.worldSize > 1, error == nil {
            do { try communicator.allreduceSum(UnsafeMutableBufferPointer(start: partialRows.base, count: all)) } catch { self.error = error }
        }
        for k in 0..<count {
            var sum = 0.0
            for s in 0..<slots { sum += partialRows.base[s * width + k] }
            totals.base[k] = sum
        }
        partialRows.base.update(repeating: 0, count: all)
        if let record { (recorded.base + record * width).update(from: totals.base, count: count) }
    }

    @inline(__always) private func pause(_ spins: inout Int) {
        spins += 1
        if spin && spins <= 64 { flow_cpu_relax() } else { sched_yield() }
    }
}
