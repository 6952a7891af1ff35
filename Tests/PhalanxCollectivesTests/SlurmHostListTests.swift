import PhalanxCollectives
import Testing

@Suite struct SlurmHostListTests {
    @Test func expandsAsScontrolShowHostnamesDoes() throws {
        #expect(try SlurmHostList.expand("node1") == ["node1"])
        #expect(try SlurmHostList.expand("node[01-03,07],login2") == ["node01", "node02", "node03", "node07", "login2"])
        #expect(try SlurmHostList.expand("tux[8-11]") == ["tux8", "tux9", "tux10", "tux11"])
        #expect(try SlurmHostList.expand("gpu[098-101]-ib") == ["gpu098", "gpu099", "gpu100", "gpu101"].map { $0 + "-ib" })
        #expect(try SlurmHostList.expand("a[1,3],b[2-3]") == ["a1", "a3", "b2", "b3"])
        #expect(try SlurmHostList.first(of: "cn[0042-9000],x") == "cn0042")
    }

    @Test func rejectsWhatSlurmWouldNotWrite() {
        for bad in ["", "n[1-", "n1-2]", "n[[1]]", "n[3-1]", "n[a-b]", "n[1-2-3]", "n[]", "a,,b", "n[1]x[2]", "n 1", "n[0-99999999]", "n[0-9223372036854775807]", "n[99999999999999999999]"] {
            #expect(throws: SlurmHostList.Malformed.self, "\(bad)") { try SlurmHostList.expand(bad) }
        }
    }

    @Test func slurmStepsFindTheirRendezvousWithoutAMasterAddress() throws {
        let task = try LaunchEnvironment.detect(from: [
            "SLURM_PROCID": "1", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "1234", "SLURM_STEP_ID": "2",
            "SLURM_STEP_NODELIST": "cn[07-08]", "SLURM_JOB_NODELIST": "cn[05-08]",
        ])
        #expect(task.masterAddress == "cn07" && task.masterPort == LaunchEnvironment.slurmPort(job: 1234, step: 2))
        #expect(task.masterPort == 20000 + 32 * (1234 % 398) + 2)
        // Two concurrent steps of one job meet at different ports; the variables still win.
        #expect(LaunchEnvironment.slurmPort(job: 1234, step: 3) != task.masterPort)
        #expect((0..<20_000).allSatisfy { LaunchEnvironment.slurmPort(job: $0, step: $0 * 7) < 32768 })
        let named = try LaunchEnvironment.detect(from: [
            "SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_JOB_ID": "9", "SLURM_STEP_NODELIST": "cn1",
            "PHALANX_MASTER_ADDR": "10.1.1.1", "MASTER_PORT": "4100",
        ])
        #expect(named.masterAddress == "10.1.1.1" && named.masterPort == 4100)
        #expect(throws: LaunchEnvironment.InvalidVariable.self) {
            try LaunchEnvironment.detect(from: ["SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_STEP_NODELIST": "cn[1-"])
        }
    }

    @Test func torchrunsAgentStoreIsUsedNotBound() throws {
        let worker = try LaunchEnvironment.detect(from: [
            "RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500",
            "TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RUN_ID": "job7", "TORCHELASTIC_RESTART_COUNT": "2",
        ])
        #expect(worker.agentStorePrefix == "phalanx/job7/")
        let own = try LaunchEnvironment.detect(from: ["RANK": "1", "WORLD_SIZE": "2", "TORCHELASTIC_USE_AGENT_STORE": "False"])
        #expect(own.agentStorePrefix == nil)
        // A rendezvous named by Phalanx's own variables is Phalanx's, not torchrun's store.
        let named = try LaunchEnvironment.detect(from: ["RANK": "1", "WORLD_SIZE": "2", "TORCHELASTIC_USE_AGENT_STORE": "True", "PHALANX_MASTER_ADDR": "10.0.0.9"])
        #expect(named.agentStorePrefix == nil)
    }
}
