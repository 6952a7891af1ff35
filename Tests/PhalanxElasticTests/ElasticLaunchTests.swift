import Foundation
import PhalanxTesting
import Testing

/// Launching an elastic job with `mpirun --enable-recovery`: ranks come from OMPI_COMM_WORLD_*,
/// MPI itself is never called, and the survivors of a killed rank finish on their own.
@Suite(.serialized) struct ElasticLaunchTests {
    @Test func mpirunWithRecoveryKeepsTheSurvivorsTraining() throws {
        let port = try Self.freePort()
        let directory = ElasticJob.temporaryDirectory()
        var arguments = ["--enable-recovery", "--oversubscribe", "-np", "3"]
        for variable in ["PHALANX_JOB_SECRET=\(UUID().uuidString)", "PHALANX_MASTER_PORT=\(port)", "OPENBLAS_NUM_THREADS=1"] {
            arguments += ["-x", variable]
        }
        arguments += [WorkerProcesses.binaryDirectory.appendingPathComponent("DigitsMLP").path] + ElasticJob.baseArguments
        arguments += ["--steps", "60", "--save", "\(directory)/weights-{member}.safetensors", "--fault", "kill:1:20"]
        let launcher = try WorkerProcesses(executable: "/usr/bin/env", arguments: ["mpirun"] + arguments, count: 1) { _ in
            ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"]
        }
        let output = launcher.wait(timeout: .seconds(90))[0]
        let done = output.events("done")
        // mpirun reports 0 whatever happened with --enable-recovery: the trainers' own lines tell.
        #expect(done.count == 2, "\(output.stdout.suffix(1500)) \(output.stderr.suffix(1500))")
        #expect(Set(done.compactMap { $0["member"] as? Int }) == [0, 2])
        #expect(done.allSatisfy { $0["steps"] as? Int == 60 && $0["world_size"] as? Int == 2 })
        #expect(Set(done.compactMap { $0["params_hash"] as? String }).count == 1)
        #expect(output.events("change").count == 2)
    }

    /// A port that was free a moment ago (mpirun needs it in the environment before it starts).
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return UInt16(bigEndian: address.sin_port)
    }
}
