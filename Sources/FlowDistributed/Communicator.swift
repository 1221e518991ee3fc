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

    /// In-place element-wise `operation` over all ranks of `buffer` (same count on every rank; Int64 sums are exact
    /// and order-independent).
    /// - Throws: ``CommunicatorError`` when the transfer fails.
    func allreduce<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReductionOperation) throws

    /// In-place reduce-scatter: afterwards rank r holds the sum over all ranks of its part of `buffer`
    /// (elements ``part(count:rank:)``); the rest of the buffer holds partial sums. Same count on every rank.
    /// - Throws: ``CommunicatorError`` when a transfer fails or a part exceeds MPI's Int32 counts.
    func reduceScatterSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// In-place allgather of the parts: afterwards every rank's `buffer` holds rank q's part (elements
    /// ``part(count:rank:)`` of q) from rank q, for every q. Same count on every rank.
    /// - Throws: ``CommunicatorError`` when the transfer fails or the buffer exceeds MPI's Int32 counts.
    func allgatherParts<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>) throws

    /// Starts a non-blocking in-place `operation` (MPI_Iallreduce) of `buffer`; the buffer must stay untouched
    /// until the returned request completes.
    func startAllreduce<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReductionOperation) throws -> CollectiveRequest
    /// Whether `request` has completed (drives progress; non-blocking).
    func test(_ request: CollectiveRequest) throws -> Bool
    /// Blocks until `request` completes.
    func wait(_ request: CollectiveRequest) throws

    /// Broadcasts `bytes` from `root` to every rank (the count must be equal on every rank).
    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws
    /// Every rank's values concatenated in rank order (counts may differ).
    func allgather<T: CollectiveElement>(_ values: [T]) throws -> [T]
    /// Waits until every rank has arrived.
    func barrier() throws
    /// Ends the whole job now with `code` after printing `message` (MPI_Abort on every rank).
    func abort(message: String, code: Int32) -> Never
    /// Seconds since an arbitrary origin (MPI_Wtime), for timing.
    func wallTime() -> Double
}

/// A type a communicator can move and reduce: Float, Double, Int64, UInt8.
public protocol CollectiveElement: Sendable {
    /// Its wire type.
    static var collectiveType: CollectiveType { get }
}

/// The element types of collectives.
public enum CollectiveType: Sendable {
    /// IEEE 754 binary32 (`Float`).
    case float32
    /// IEEE 754 binary64 (`Double`).
    case float64
    /// 64-bit two's-complement integers (`Int64`): sums exact and order-independent.
    case int64
    /// Bytes (`UInt8`).
    case uint8
}

extension Float: CollectiveElement { public static var collectiveType: CollectiveType { .float32 } }
extension Double: CollectiveElement { public static var collectiveType: CollectiveType { .float64 } }
extension Int64: CollectiveElement { public static var collectiveType: CollectiveType { .int64 } }
extension UInt8: CollectiveElement { public static var collectiveType: CollectiveType { .uint8 } }

/// The element-wise reduction of an allreduce.
public enum ReductionOperation: Sendable {
    /// Element-wise sum (floating-point sums depend on the order the implementation adds in).
    case sum
    /// Element-wise maximum.
    case max
    /// Element-wise minimum.
    case min
}

/// A non-blocking collective in flight (``Communicator/startAllreduce(_:_:)``).
public final class CollectiveRequest: @unchecked Sendable {
    /// The implementation's handle (an MPI_Request).
    var handle: OpaquePointer?
    /// Whether it has completed.
    public internal(set) var completed: Bool
    /// A request in the given state.
    init(handle: OpaquePointer?, completed: Bool) {
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

    /// In-place element-wise sum over all ranks.
    public func allreduceSum<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>) throws { try allreduce(buffer, .sum) }
    /// In-place element-wise maximum over all ranks.
    public func allreduceMax<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>) throws { try allreduce(buffer, .max) }
    /// In-place element-wise minimum over all ranks.
    public func allreduceMin<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>) throws { try allreduce(buffer, .min) }
    /// Starts a non-blocking in-place sum.
    public func startAllreduceSum<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>) throws -> CollectiveRequest {
        try startAllreduce(buffer, .sum)
    }

    /// Every rank's `bytes` (counts may differ), indexed by rank.
    /// - Throws: ``CommunicatorError``.
    public func allgatherPerRank(_ bytes: [UInt8]) throws -> [[UInt8]] {
        let counts = try allgather([Int64(bytes.count)])
        let flat = try allgather(bytes)
        var out: [[UInt8]] = []
        var at = 0
        for c in counts {
            out.append(Array(flat[at..<(at + Int(c))]))
            at += Int(c)
        }
        return out
    }

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
