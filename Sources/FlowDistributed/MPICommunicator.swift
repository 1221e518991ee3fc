import CMPI
import Foundation

/// The communicator of a job launched by `mpirun` (Open MPI): MPI_COMM_WORLD.
///
/// Initialises MPI with `MPI_Init_thread(MPI_THREAD_FUNNELED)`: worker threads compute, only the thread
/// that created the communicator calls MPI. Errors return codes (`MPI_ERRORS_RETURN`) that become
/// ``CommunicatorError``s; the trainer turns any error into ``abort(message:code:)`` so that the whole
/// job ends rather than hangs.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let worldSize: Int
    public let transport: String
    /// Hosts, from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED): the number of ranks that are rank 0 of their node.
    public let hostCount: Int
    private let comm = MPICommHandle.world
    private var finalized = false

    /// Whether this process was started by an MPI launcher (Open MPI's `OMPI_COMM_WORLD_SIZE`, or PMI/PMIx
    /// variables set by Slurm's `srun`).
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_SIZE"] != nil
    }

    /// Initialises MPI (once per process).
    /// - Throws: ``CommunicatorError`` when MPI cannot start or lacks MPI_THREAD_FUNNELED support.
    public init() throws {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            var provided: Int32 = 0
            let rc = MPI_Init_thread(nil, nil, flow_mpi_thread_funneled(), &provided)
            guard rc == flow_mpi_success() else {
                throw CommunicatorError(operation: "MPI_Init_thread", message: "error code \(rc)")
            }
            guard provided >= flow_mpi_thread_funneled() else {
                throw CommunicatorError(operation: "MPI_Init_thread", message: "the MPI library does not provide MPI_THREAD_FUNNELED (provided level \(provided))")
            }
        }
        MPI_Comm_set_errhandler(comm.raw, flow_mpi_errors_return())
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm.raw, &r)
        MPI_Comm_size(comm.raw, &s)
        rank = Int(r)
        worldSize = Int(s)
        var version = [CChar](repeating: 0, count: 512)
        var length: Int32 = 0
        MPI_Get_library_version(&version, &length)
        let text = cString(version).split(separator: ",").first.map(String.init) ?? "MPI"
        transport = "MPI (\(text))"
        var node: MPI_Comm? = nil
        var localRank: Int32 = 0
        if MPI_Comm_split_type(comm.raw, flow_mpi_comm_type_shared(), r, flow_mpi_info_null(), &node) == flow_mpi_success() {
            MPI_Comm_rank(node, &localRank)
            MPI_Comm_free(&node)
        }
        var leaders: Int64 = localRank == 0 ? 1 : 0
        var total: Int64 = 0
        MPI_Allreduce(&leaders, &total, 1, MPIDatatypeHandle.int64.raw, MPIOperationHandle.sum.raw, comm.raw)
        hostCount = max(1, Int(total))
    }

    /// Calls MPI_Finalize (idempotent). Call once the job's collectives are done.
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        MPI_Finalize()
    }

    private func check(_ rc: Int32, _ operation: String) throws {
        guard rc != flow_mpi_success() else { return }
        var buffer = [CChar](repeating: 0, count: Int(flow_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(rc, &buffer, &length)
        throw CommunicatorError(operation: operation, message: cString(buffer))
    }

    private func allreduce<T: MPIElement>(_ b: UnsafeMutableBufferPointer<T>, _ op: MPIOperationHandle) throws {
        guard let base = b.baseAddress, b.count > 0 else { return }
        try check(MPI_Allreduce(flow_mpi_in_place(), base, Int32(b.count), T.mpiDatatype.raw, op.raw, comm.raw), "MPI_Allreduce")
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws { try allreduceChunked(buffer) }
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws { try allreduceChunked(buffer) }
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Int64>) throws { try allreduceChunked(buffer) }
    public func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Int64>) throws { try allreduce(buffer, .max) }
    public func allreduceMin(_ buffer: UnsafeMutableBufferPointer<Int64>) throws { try allreduce(buffer, .min) }

    /// MPI counts are Int32: reduce buffers longer than 2³⁰ elements in pieces.
    private func allreduceChunked<T: MPIElement>(_ b: UnsafeMutableBufferPointer<T>) throws {
        let piece = 1 << 30
        var start = 0
        while start < b.count {
            let end = min(b.count, start + piece)
            try allreduce(UnsafeMutableBufferPointer(rebasing: b[start..<end]), .sum)
            start = end
        }
    }

    public func startAllreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> CollectiveRequest {
        var request: MPI_Request? = flow_mpi_request_null()
        if let base = buffer.baseAddress, buffer.count > 0 {
            try check(MPI_Iallreduce(flow_mpi_in_place(), base, Int32(buffer.count), MPIDatatypeHandle.float.raw,
                                     MPIOperationHandle.sum.raw, comm.raw, &request), "MPI_Iallreduce")
            return CollectiveRequest(handle: request, completed: false)
        }
        return CollectiveRequest(handle: nil, completed: true)
    }

    public func test(_ request: CollectiveRequest) throws -> Bool {
        if request.completed { return true }
        var flag: Int32 = 0
        var handle: MPI_Request? = request.handle
        try check(MPI_Test(&handle, &flag, flow_mpi_status_ignore()), "MPI_Test")
        request.handle = handle
        if flag != 0 { request.completed = true }
        return request.completed
    }

    public func wait(_ request: CollectiveRequest) throws {
        if request.completed { return }
        var handle: MPI_Request? = request.handle
        try check(MPI_Wait(&handle, flow_mpi_status_ignore()), "MPI_Wait")
        request.handle = handle
        request.completed = true
    }

    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try check(MPI_Bcast(base, Int32(bytes.count), MPIDatatypeHandle.uint8.raw, Int32(root), comm.raw), "MPI_Bcast")
    }

    private func allgatherv<T: MPIElement>(_ values: [T]) throws -> [T] {
        var counts = [Int64](repeating: 0, count: worldSize)
        var mine = Int64(values.count)
        try check(MPI_Allgather(&mine, 1, MPIDatatypeHandle.int64.raw, &counts, 1, MPIDatatypeHandle.int64.raw, comm.raw),
                  "MPI_Allgather")
        let total = counts.reduce(0, +)
        guard total < Int64(Int32.max) else {
            throw CommunicatorError(operation: "MPI_Allgatherv", message: "\(total) elements exceed MPI's Int32 counts")
        }
        let recvCounts = counts.map { Int32($0) }
        var displs = [Int32](repeating: 0, count: worldSize)
        for r in 1..<max(1, worldSize) { displs[r] = displs[r - 1] + recvCounts[r - 1] }
        // A rank with nothing to contribute still takes part.
        return try gatherInto(values, total: Int(total), recvCounts, displs)
    }

    private func gatherInto<T: MPIElement>(_ values: [T], total: Int, _ recvCounts: [Int32], _ displs: [Int32]) throws -> [T] {
        let result: [T] = try values.withUnsafeBufferPointer { src in
            try [T](unsafeUninitializedCapacity: max(total, 1)) { dst, initialized in
                try check(MPI_Allgatherv(src.baseAddress, Int32(values.count), T.mpiDatatype.raw,
                                         dst.baseAddress, recvCounts, displs, T.mpiDatatype.raw, comm.raw), "MPI_Allgatherv")
                initialized = total
            }
        }
        return result
    }

    public func allgather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var counts = [Int64](repeating: 0, count: worldSize)
        var mine = Int64(bytes.count)
        try check(MPI_Allgather(&mine, 1, MPIDatatypeHandle.int64.raw, &counts, 1, MPIDatatypeHandle.int64.raw, comm.raw),
                  "MPI_Allgather")
        let flat = try allgatherv(bytes)
        var out: [[UInt8]] = []
        var at = 0
        for c in counts {
            out.append(Array(flat[at..<(at + Int(c))]))
            at += Int(c)
        }
        return out
    }

    public func allgather(_ values: [Double]) throws -> [Double] { try allgatherv(values) }
    public func allgather(_ values: [Float]) throws -> [Float] { try allgatherv(values) }

    public func barrier() throws { try check(MPI_Barrier(comm.raw), "MPI_Barrier") }

    public func abort(message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("[rank \(rank)] error: \(message)\n".utf8))
        MPI_Abort(comm.raw, code)
        exit(code)
    }

    public func wallTime() -> Double { MPI_Wtime() }
}

/// The text of a NUL-terminated C character buffer.
func cString(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
