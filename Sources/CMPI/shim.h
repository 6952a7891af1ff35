// Open MPI's C interface (Debian: libopenmpi-dev, pkg-config "ompi-c").
//
// Swift cannot import MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM and friends: in Open MPI they are
// macros that take the address of global objects. These static inline functions hand them
// to Swift as ordinary values.
#include <mpi.h>

static inline MPI_Comm phalanx_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm phalanx_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype phalanx_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype phalanx_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype phalanx_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype phalanx_mpi_int(void) { return MPI_INT; }
static inline MPI_Datatype phalanx_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Op phalanx_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op phalanx_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op phalanx_mpi_min(void) { return MPI_MIN; }
static inline void *phalanx_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler phalanx_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Request phalanx_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *phalanx_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline int phalanx_mpi_success(void) { return MPI_SUCCESS; }
static inline int phalanx_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int phalanx_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
