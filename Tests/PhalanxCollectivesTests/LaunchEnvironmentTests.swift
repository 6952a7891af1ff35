import PhalanxCollectives
import Testing

@Suite struct LaunchEnvironmentTests {
    @Test func precedenceAndDefaults() throws {
        let single = try LaunchEnvironment.detect(from: [:])
        #expect(single.source == .single && single.rank == 0 && single.worldSize == 1)
        #expect(single.masterAddress == "127.0.0.1" && single.masterPort == 29500)

        let phalanx = try LaunchEnvironment.detect(from: [
            "PHALANX_RANK": "2", "PHALANX_WORLD_SIZE": "4", "PHALANX_MASTER_ADDR": "10.0.0.1", "PHALANX_MASTER_PORT": "4000",
            "RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "ignored", "MASTER_PORT": "1",
        ])
        #expect(phalanx == LaunchEnvironment(rank: 2, worldSize: 4, masterAddress: "10.0.0.1", masterPort: 4000, source: .phalanx))

        let torch = try LaunchEnvironment.detect(from: ["RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "29400"])
        #expect(torch == LaunchEnvironment(rank: 1, worldSize: 2, localRank: 1, masterAddress: "h", masterPort: 29400, source: .torchrun))

        let mpi = try LaunchEnvironment.detect(from: ["OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_LOCAL_RANK": "1"])
        #expect(mpi.source == .openMPI && mpi.rank == 3 && mpi.worldSize == 8 && mpi.localRank == 1)

        let slurm = try LaunchEnvironment.detect(from: ["SLURM_PROCID": "5", "SLURM_NTASKS": "6", "SLURM_LOCALID": "2", "MASTER_ADDR": "node1"])
        #expect(slurm.source == .slurm && slurm.rank == 5 && slurm.localRank == 2 && slurm.masterAddress == "node1")
    }

    @Test func badValuesAreClearErrors() {
        #expect(throws: LaunchEnvironment.InvalidVariable.self) { try LaunchEnvironment.detect(from: ["PHALANX_RANK": "x", "PHALANX_WORLD_SIZE": "2"]) }
        #expect(throws: LaunchEnvironment.InvalidVariable.self) { try LaunchEnvironment.detect(from: ["PHALANX_RANK": "2", "PHALANX_WORLD_SIZE": "2"]) }
        #expect(throws: LaunchEnvironment.InvalidVariable.self) { try LaunchEnvironment.detect(from: ["PHALANX_RANK": "0"]) }
        #expect(throws: LaunchEnvironment.InvalidVariable.self) { try LaunchEnvironment.detect(from: ["MASTER_PORT": "70000"]) }
    }
}
