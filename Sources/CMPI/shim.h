// OpenMPI for Swift (pkg-config `ompi`; Debian/Ubuntu `libopenmpi-dev`, Homebrew `open-mpi`).
// MPI_COMM_WORLD, the datatypes, the reduction operations, MPI_IN_PLACE, MPI_STATUS_IGNORE and
// MPI_REQUEST_NULL, MPI_COMM_TYPE_SHARED and MPI_INFO_NULL are macros over addresses of global objects, which Swift cannot import. These
// accessors return them; FlowDistributed wraps the handles in distinct Swift types.
#ifndef FLOW_CMPI_SHIM_H
#define FLOW_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm flow_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype flow_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype flow_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype flow_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype flow_mpi_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype flow_mpi_uint8(void) { return MPI_UINT8_T; }
static inline MPI_Op flow_mpi_op_sum(void) { return MPI_SUM; }
static inline MPI_Op flow_mpi_op_max(void) { return MPI_MAX; }
static inline MPI_Op flow_mpi_op_min(void) { return MPI_MIN; }
static inline void *flow_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *flow_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Request flow_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Errhandler flow_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int flow_mpi_success(void) { return MPI_SUCCESS; }
static inline int flow_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int flow_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int flow_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline MPI_Info flow_mpi_info_null(void) { return MPI_INFO_NULL; }
#endif
