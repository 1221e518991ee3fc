import CMPI

/// An MPI communicator handle (MPI_Comm). Distinct Swift types for communicators, datatypes and
/// operations, so that the C handles (all `OpaquePointer` in Swift) cannot be mixed up.
struct MPICommHandle: @unchecked Sendable {
    let raw: MPI_Comm
    static var world: MPICommHandle { MPICommHandle(raw: flow_mpi_comm_world()) }
}

/// An MPI datatype handle (MPI_Datatype).
struct MPIDatatypeHandle: @unchecked Sendable {
    let raw: MPI_Datatype
    static var float: MPIDatatypeHandle { MPIDatatypeHandle(raw: flow_mpi_float()) }
    static var double: MPIDatatypeHandle { MPIDatatypeHandle(raw: flow_mpi_double()) }
    static var int64: MPIDatatypeHandle { MPIDatatypeHandle(raw: flow_mpi_int64()) }
    static var uint8: MPIDatatypeHandle { MPIDatatypeHandle(raw: flow_mpi_uint8()) }
}

/// An MPI reduction operation handle (MPI_Op).
struct MPIOperationHandle: @unchecked Sendable {
    let raw: MPI_Op
    static var sum: MPIOperationHandle { MPIOperationHandle(raw: flow_mpi_op_sum()) }
    static var max: MPIOperationHandle { MPIOperationHandle(raw: flow_mpi_op_max()) }
    static var min: MPIOperationHandle { MPIOperationHandle(raw: flow_mpi_op_min()) }
}

/// The Swift element types MPI can reduce, with their MPI datatype.
extension CollectiveElement {
    /// The MPI datatype of the element type.
    static var mpiDatatype: MPIDatatypeHandle {
        switch collectiveType {
        case .float32: return .float
        case .float64: return .double
        case .int64: return .int64
        case .uint8: return .uint8
        }
    }
}

extension ReductionOperation {
    /// The MPI operation.
    var mpi: MPIOperationHandle {
        switch self {
        case .sum: return .sum
        case .max: return .max
        case .min: return .min
        }
    }
}
