import CFlowSupport
import Dispatch
import FlowCore
import Foundation
import Synchronization

/// T compute workers: ``run(_:)`` executes `body(w)` for w = 0 ..< T concurrently and returns when all are
/// done. Worker 0 is the calling (coordinating) thread; workers 1 ..< T are persistent Dispatch workers: one
/// long-lived work item each, on its own serial queue (a serial queue targets an overcommitting root queue, so
/// every worker gets a thread of its own however many there are), started once.
///
/// Why not `DispatchQueue.concurrentPerform` for every region: measured on our 2-core machines, a
/// Dispatch thread that has gone idle takes about a millisecond to pick up the next region, so the short
/// regions of a step (gradient norm, Adam: 1–3 ms) ran nearly serially. Persistent workers spin briefly
/// between regions (then sleep on a condition variable), so back-to-back regions start in microseconds;
/// and because the caller is worker 0, it can call MPI between phases of its own work (MPI "funneled").
///
/// Every region runs with flush-to-zero / denormals-are-zero: the pool's own threads set it once at start;
/// the caller's thread gets it for the duration of its share and its previous setting back afterwards.
public final class WorkerPool: @unchecked Sendable {
    /// Number of workers T (≥ 1), the caller included.
    public let count: Int
    /// The state the worker threads share with the pool; they hold it strongly, so it outlives the pool
    /// until every thread has left its loop.
    private let shared: Shared

    /// The serial queue of each worker 1 ..< T.
    private let queues: [DispatchQueue]

    /// The most workers a pool may have: the caller plus 255 Dispatch workers, libdispatch's thread limit on Linux
    /// (`DISPATCH_WORKQ_MAX_PTHREAD_COUNT`). A worker beyond it would never start, and the region would wait for it
    /// forever; a machine with more cores runs several ranks per host instead.
    public static let maximumCount = 256

    /// A pool of `count` workers (1 … ``maximumCount``): the caller plus `count − 1` Dispatch workers started now.
    public init(count: Int) {
        precondition(count >= 1, "WorkerPool needs at least one worker")
        precondition(count <= Self.maximumCount, "WorkerPool: \(count) workers, at most \(Self.maximumCount) (libdispatch's thread limit)")
        self.count = count
        // Spinning only pays when every worker has a core of its own.
        shared = Shared(spinLimit: count <= WorkerPool.availableCores ? 20_000 : 0)
        queues = (1..<max(count, 1)).map { DispatchQueue(label: "flow-worker-\($0)", qos: .userInitiated) }
        for (i, queue) in queues.enumerated() {
            let state = shared
            queue.async { state.workerLoop(i + 1) }
        }
    }

    deinit {
        shared.stopping.store(true, ordering: .sequentiallyConsistent)
        shared.post(nil, workers: 0)
        // Wait until every worker has left its loop, so that no thread outlives the pool's job.
        while shared.exited.load(ordering: .sequentiallyConsistent) < count - 1 { sched_yield() }
    }

    /// The number of CPUs this process may run on: the size of its affinity mask (which `mpirun --bind-to`
    /// restricts), not the machine's core count.
    public static var availableCores: Int { Int(flow_affinity_cpu_count()) }

    /// Runs `body(w)` for every worker w concurrently (w = 0 on the calling thread); returns when all have
    /// finished. Not reentrant: `body` must not call `run` on the same pool.
    public func run(_ body: (Int) -> Void) {
        if count == 1 {
            FloatEnvironment.withFlushToZero { body(0) }
            return
        }
        withoutActuallyEscaping(body) { body in runRegion(body) }
    }

    /// ``run(_:)`` for a job closure created once and kept (e.g. a stored property): no per-call wrapping,
    /// so a steady-state training step allocates nothing (``run(_:)`` costs one small heap box per call for
    /// `withoutActuallyEscaping`).
    public func runPrepared(_ job: @escaping (Int) -> Void) {
        if count == 1 {
            FloatEnvironment.withFlushToZero { job(0) }
            return
        }
        runRegion(job)
    }

    private func runRegion(_ body: @escaping (Int) -> Void) {
        shared.post(body, workers: count - 1)
        FloatEnvironment.withFlushToZero { body(0) }
        shared.waitForWorkers()
    }

    /// Runs `body(range)` over `count` balanced, contiguous, disjoint pieces of `0 ..< n`, one per worker.
    public func forEachRange(_ n: Int, _ body: (Range<Int>) -> Void) {
        run { w in
            let r = ShardPlan.part(n, parts: count, index: w)
            if !r.isEmpty { body(r) }
        }
    }

    /// Region hand-off between the coordinating thread and the worker threads.
    private final class Shared: @unchecked Sendable {
        let spinLimit: Int
        let generation = Atomic<Int>(0)
        let pending = Atomic<Int>(0)
        let sleepers = Atomic<Int>(0)
        let stopping = Atomic<Bool>(false)
        let exited = Atomic<Int>(0)
        let condition = NSCondition()
        /// The region being run (written before `generation` is bumped, read by the workers after). A stored
        /// closure of the exact type, not a pointer to a generic value: passing the closure generically would
        /// re-abstract it and allocate on every region.
        nonisolated(unsafe) var job: ((Int) -> Void)?

        init(spinLimit: Int) { self.spinLimit = spinLimit }

        /// Publishes `body` (nil: wake the workers to stop) to `workers` threads.
        func post(_ body: ((Int) -> Void)?, workers: Int) {
            job = body
            pending.store(workers, ordering: .sequentiallyConsistent)
            generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 || body == nil {
                condition.lock()
                condition.broadcast()
                condition.unlock()
            }
        }

        /// Spins (then yields) until every worker has finished the region; releases the job.
        func waitForWorkers() {
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins > 64 { sched_yield() } else { flow_cpu_relax() }
            }
            job = nil
        }

        func workerLoop(_ w: Int) {
            FloatEnvironment.enableFlushToZero()
            // The pool starts at generation 0; a region may already have been posted before this thread runs.
            var seen = 0
            while true {
                // Wait for the next region: spin (yielding), then sleep.
                var spins = 0
                var current = generation.load(ordering: .sequentiallyConsistent)
                while current == seen {
                    if spins < spinLimit {
                        spins += 1
                        if spins > 64 { sched_yield() } else { flow_cpu_relax() }
                    } else {
                        condition.lock()
                        sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                        while generation.load(ordering: .sequentiallyConsistent) == seen { condition.wait() }
                        sleepers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                        condition.unlock()
                    }
                    current = generation.load(ordering: .sequentiallyConsistent)
                }
                seen = current
                if stopping.load(ordering: .sequentiallyConsistent) {
                    exited.wrappingAdd(1, ordering: .sequentiallyConsistent)
                    return
                }
                // The closure copy must be released before the region is reported done: the caller's
                // withoutActuallyEscaping checks that nobody still holds it.
                do {
                    let body = job!
                    body(w)
                }
                pending.wrappingSubtract(1, ordering: .sequentiallyConsistent)
            }
        }
    }
}
