import CFlowSupport
import Dispatch
import FlowCore

/// T compute workers on Dispatch: ``run(_:)`` executes `body(w)` for w = 0 ..< T with
/// `DispatchQueue.concurrentPerform` and returns when all are done.
///
/// Every task runs with flush-to-zero / denormals-are-zero on the thread that runs it (per-thread state,
/// and Dispatch may hand a task to any of its threads); the thread's previous setting is restored after.
public struct WorkerPool: Sendable {
    /// Number of workers T (≥ 1).
    public let count: Int

    /// A pool of `count` workers.
    public init(count: Int) {
        precondition(count >= 1, "WorkerPool needs at least one worker")
        self.count = count
    }

    /// The number of CPUs this process may run on: the size of its affinity mask (which `mpirun --bind-to`
    /// restricts), not the machine's core count.
    public static var availableCores: Int { Int(flow_affinity_cpu_count()) }

    /// Runs `body(w)` for every worker w concurrently; returns when all have finished.
    public func run(_ body: (Int) -> Void) {
        if count == 1 {
            FloatEnvironment.withFlushToZero { body(0) }
            return
        }
        // concurrentPerform returns only after every iteration has run, so `body` never escapes.
        withoutActuallyEscaping(body) { body in
            let task = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: count) { w in
                FloatEnvironment.withFlushToZero { task.value(w) }
            }
        }
    }

    /// Runs `body(range)` over `count` balanced, contiguous, disjoint pieces of `0 ..< n`, one per worker.
    public func forEachRange(_ n: Int, _ body: (Range<Int>) -> Void) {
        run { w in
            let r = ShardPlan.part(n, parts: count, index: w)
            if !r.isEmpty { body(r) }
        }
    }
}

/// Carries a value into a `@Sendable` closure whose concurrent use the caller has made safe (workers
/// write disjoint memory).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
