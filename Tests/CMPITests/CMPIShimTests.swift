import CMPI
import Testing

/// The shim hands Open MPI's predefined handles to Swift. No MPI_Init is needed to read them.
@Suite struct CMPIShimTests {
    @Test func predefinedHandlesAreDistinctAndNonNull() {
        #expect(phalanx_mpi_comm_world() != phalanx_mpi_comm_null())
        #expect(phalanx_mpi_float() != phalanx_mpi_double())
        #expect(phalanx_mpi_sum() != phalanx_mpi_max())
        #expect(phalanx_mpi_max() != phalanx_mpi_min())
        #expect(phalanx_mpi_in_place() != nil)
        #expect(phalanx_mpi_errors_return() != nil)
        #expect(phalanx_mpi_success() == 0)
    }

    /// Calls that the MPI standard allows before MPI_Init link and answer.
    @Test func libraryLinksAndAnswersBeforeInit() {
        var major: Int32 = 0, minor: Int32 = 0
        #expect(MPI_Get_version(&major, &minor) == phalanx_mpi_success())
        #expect(major >= 3)
        var initialized: Int32 = -1
        #expect(MPI_Initialized(&initialized) == phalanx_mpi_success())
        #expect(initialized == 0)
    }
}
