/// What a collective communication layer offers the data-parallel trainer: the ranks of one job, each
/// holding a full replica of the model, combine gradients and agree on decisions.
///
/// Only the coordinating thread of a rank calls a communicator (MPI "funneled" threading). Every call
/// is collective: all ranks make the same calls in the same order. Errors are fatal for the job: a
/// failed collective throws ``CommunicatorError``; ``abort(message:code:)`` ends every rank.
public protocol Communicator: AnyObject, Sendable {
    /// This process's rank, 0 ..< worldSize.
    var rank: Int { get }
    /// Number of ranks in the job.
    var worldSize: Int { get }
    /// A short description of the transport ("single process", "MPI (Open MPI v4.1.4)").
    var transport: String { get }
    /// Number of distinct hosts (shared-memory nodes) the ranks run on, 1 ... worldSize; the same on every rank.
    var hostCount: Int { get }

    /// In-place element-wise sum over all ranks of `buffer` (same count on every rank).
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// In-place element-wise sum over all ranks (Double).
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws
    /// In-place element-wise sum over all ranks (Int64: exact and order-independent).
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Int64>) throws
    /// In-place element-wise maximum over all ranks (Int64).
    func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Int64>) throws
    /// In-place element-wise minimum over all ranks (Int64).
    func allreduceMin(_ buffer: UnsafeMutableBufferPointer<Int64>) throws

    /// In-place reduce-scatter: afterwards rank r holds the sum over all ranks of its part of `buffer`
    /// (elements ``part(count:rank:)``); the rest of the buffer holds partial sums. Same count on every rank.
    /// - Throws: ``CommunicatorError`` when a transfer fails or a part exceeds MPI's Int32 counts.
    func reduceScatterSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// In-place allgather of the parts: afterwards every rank's `buffer` holds rank q's part (elements
    /// ``part(count:rank:)`` of q) from rank q, for every q. Same count on every rank.
    /// - Throws: ``CommunicatorError`` when the transfer fails or the buffer exceeds MPI's Int32 counts.
    func allgatherParts(_ buffer: UnsafeMutableBufferPointer<Float>) throws

    /// Starts a non-blocking in-place sum (MPI_Iallreduce) of `buffer`; the buffer must stay untouched until
    /// the returned request completes.
    func startAllreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> CollectiveRequest
    /// Whether `request` has completed (drives progress; non-blocking).
    func test(_ request: CollectiveRequest) throws -> Bool
    /// Blocks until `request` completes.
    func wait(_ request: CollectiveRequest) throws

    /// Broadcasts `bytes` from `root` to every rank (the count must be equal on every rank).
    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws
    /// Every rank's `bytes` (counts may differ), indexed by rank.
    func allgather(_ bytes: [UInt8]) throws -> [[UInt8]]
    /// Every rank's Doubles concatenated in rank order (counts may differ).
    func allgather(_ values: [Double]) throws -> [Double]
    /// Every rank's Floats concatenated in rank order (counts may differ).
    func allgather(_ values: [Float]) throws -> [Float]
    /// Waits until every rank has arrived.
    func barrier() throws
    /// Ends the whole job now with `code` after printing `message` (MPI_Abort on every rank).
    func abort(message: String, code: Int32) -> Never
    /// Seconds since an arbitrary origin (MPI_Wtime), for timing.
    func wallTime() -> Double
}

/// A non-blocking collective in flight.
public final class CollectiveRequest: @unchecked Sendable {
    /// Opaque storage for the implementation (an MPI_Request).
    public var handle: OpaquePointer?
    /// Whether it has completed.
    public var completed: Bool
    /// A request in the given state.
    public init(handle: OpaquePointer?, completed: Bool) {
        self.handle = handle
        self.completed = completed
    }
}

/// A collective operation failed.
public struct CommunicatorError: Error, CustomStringConvertible, Sendable {
    /// The operation ("MPI_Allreduce").
    public var operation: String
    /// The library's message.
    public var message: String
    public var description: String { "\(operation) failed: \(message)" }
}

extension Communicator {
    /// Rank r's part of a buffer of `count` elements in ``reduceScatterSum(_:)`` and ``allgatherParts(_:)``:
    /// elements ⌊r·count/p⌋ ..< ⌊(r+1)·count/p⌋ for p = worldSize.
    public func part(count: Int, rank r: Int) -> Range<Int> {
        ShardPlan.part(count, parts: worldSize, index: r)
    }

    /// Whether this rank writes files and prints the job's results (rank 0).
    public var isRoot: Bool { rank == 0 }

    /// Sum of one Double over all ranks.
    public func sum(_ value: Double) throws -> Double {
        var v = [value]
        try v.withUnsafeMutableBufferPointer { try allreduceSum($0) }
        return v[0]
    }

    /// Whether `value` is the same on every rank (compares min and max).
    public func agree(_ value: Int64) throws -> Bool {
        var lo = [value], hi = [value]
        try lo.withUnsafeMutableBufferPointer { try allreduceMin($0) }
        try hi.withUnsafeMutableBufferPointer { try allreduceMax($0) }
        return lo[0] == hi[0]
    }

    /// Logical OR of a flag over all ranks.
    public func any(_ flag: Bool) throws -> Bool {
        var v: [Int64] = [flag ? 1 : 0]
        try v.withUnsafeMutableBufferPointer { try allreduceMax($0) }
        return v[0] != 0
    }
}
