import Foundation

/// The communicator of a job with one rank: every collective is the identity. Used when the tool runs
/// without `mpirun` and in tests.
public final class SingleProcessCommunicator: Communicator, @unchecked Sendable {
    /// A world of size 1.
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public var transport: String { "single process" }
    public var hostCount: Int { 1 }
    public func allreduce<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReductionOperation) throws {}
    public func reduceScatterSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {}
    public func allgatherParts<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>) throws {}
    public func startAllreduce<T: CollectiveElement>(_ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReductionOperation) throws -> CollectiveRequest {
        CollectiveRequest(handle: nil, completed: true)
    }
    public func test(_ request: CollectiveRequest) throws -> Bool { true }
    public func wait(_ request: CollectiveRequest) throws {}
    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {}
    public func allgather<T: CollectiveElement>(_ values: [T]) throws -> [T] { values }
    public func barrier() throws {}
    public func abort(message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(code)
    }
    public func wallTime() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
