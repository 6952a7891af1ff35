import ArgumentParser
import Foundation
import Phalanx
import PhalanxTesting

/// `phalanx-bench allreduce`: the all-reduce sweep of every backend side by side, nccl-tests style.
struct AllReduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "All-reduce time, algbw and busbw for our TCP ring, our ring over MPI, our MPI backend and MPI_Allreduce (shared memory and TCP-only), with the raw loopback TCP limit.")

    @Option(help: "World sizes, comma-separated.")
    var ranks = "2,4"

    @Option(help: "Smallest message in bytes.")
    var minBytes = 4096

    @Option(help: "Largest message in bytes.")
    var maxBytes = 256 << 20

    @Option(help: "Minimum timed seconds per size and backend.")
    var seconds = 0.3

    @Flag(help: "Print JSON lines instead of tables.")
    var json = false

    func run() throws {
        var sizes: [Int] = []
        var size = minBytes
        while size <= maxBytes { sizes.append(size); size *= 4 }
        let sizeList = sizes.map(String.init).joined(separator: ",")
        let raw = try RawTCPThroughput.measure()
        let duplex = try RawTCPThroughput.measureDuplex()
        // The same stream with the system's congestion control (what other programs get).
        let system = try RawTCPThroughput.measure(tuning: DataConnectionTuning(congestionControl: []))
        let rawLines: [[String: Any]] = [
            // Bytes per transfer (each direction for the duplex); the best of three counts.
            ["backend": "raw loopback TCP (one stream)", "ranks": 2, "bytes": 512 << 20, "algbw_GBps": raw / 1e9, "busbw_GBps": raw / 1e9],
            ["backend": "raw loopback TCP (full duplex, per direction)", "ranks": 2, "bytes": 256 << 20, "algbw_GBps": duplex / 1e9, "busbw_GBps": duplex / 1e9],
            ["backend": "raw loopback TCP (one stream, system congestion control)", "ranks": 2, "bytes": 512 << 20, "algbw_GBps": system / 1e9, "busbw_GBps": system / 1e9],
        ]
        var lines = rawLines
        if json { rawLines.forEach(emit) }
        let tcpOnly = ["--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"]
        for p in ranks.split(separator: ",").compactMap({ Int($0) }) {
            var runs: [(String, [String], [String])] = [
                ("phalanx TCP ring", [], ["--backend", "tcp"]),
                ("phalanx ring over MPI (shm)", [], ["--backend", "mpi-ring"]),
                ("phalanx MPI backend (shm)", [], ["--backend", "mpi"]),
                ("MPI_Allreduce (shm)", [], ["--backend", "mpi-raw"]),
                ("phalanx MPI backend (TCP only)", tcpOnly, ["--backend", "mpi"]),
                ("MPI_Allreduce (TCP only)", tcpOnly, ["--backend", "mpi-raw"]),
            ]
            runs = runs.map { ($0.0, $0.1, $0.2 + ["--label", $0.0, "--sizes", sizeList, "--seconds", String(seconds)]) }
            // The goals compare two backends: time them in alternating batches of one job, so that
            // the machine's changing load hits both alike.
            let pairedSizes = sizes.filter { $0 >= 16 << 20 || $0 == 4096 }.map(String.init).joined(separator: ",")
            // At least a second per size and backend: enough ticks of /proc/stat for the CPU figure.
            let pairedArguments = ["--sizes", pairedSizes, "--seconds", String(max(seconds, 1))]
            let shmLabels = [AllReduceReport.pairedMPIBackendShm, AllReduceReport.pairedMPIShm]
            var paired = try mpiJob(ranks: p, mpiOptions: [], arguments: [
                "--backend", "mpi,mpi-raw", "--label", shmLabels.joined(separator: ","),
            ] + pairedArguments).filter { $0["time_us"] != nil }
            // The TCP ring beside MPI_Allreduce over TCP and beside the raw TCP limits, all between
            // the same processes and buffers except the in-process stream (see AllReduceReport).
            let tcpLabels = [
                AllReduceReport.pairedRing, AllReduceReport.pairedMPITCP, AllReduceReport.pairedOneWay, AllReduceReport.pairedStream,
                AllReduceReport.pairedDuplex,
            ]
            paired += try mpiJob(ranks: p, mpiOptions: tcpOnly, arguments: [
                "--backend", "tcp,mpi-raw,raw-oneway,raw-stream,raw-duplex", "--label", tcpLabels.joined(separator: ","),
            ] + pairedArguments, rendezvous: true).filter { $0["time_us"] != nil }
            let expected = (shmLabels.count + tcpLabels.count) * pairedSizes.split(separator: ",").count
            if paired.count != expected {
                FileHandle.standardError.write(Data("warning: the paired jobs at \(p) ranks produced \(paired.count) of \(expected) lines\n".utf8))
            }
            if json { paired.forEach(emit) }
            lines += paired
            for (label, mpiOptions, workerArguments) in runs {
                let output = label.contains("TCP ring")
                    ? try tcpJob(ranks: p, arguments: workerArguments)
                    : try mpiJob(ranks: p, mpiOptions: mpiOptions, arguments: workerArguments)
                let results = output.filter { $0["time_us"] != nil }
                if results.count != sizes.count { FileHandle.standardError.write(Data("warning: \(label) at \(p) ranks produced \(results.count) of \(sizes.count) sizes\n".utf8)) }
                if json { results.forEach(emit) }
                lines += results
            }
        }
        if !json { AllReduceReport.print(lines, raw: raw, duplex: duplex, system: system) }
    }

    private func tcpJob(ranks p: Int, arguments: [String]) throws -> [[String: Any]] {
        try LoopbackJob.run(ranks: p, arguments: ["allreduce-worker"] + arguments).flatMap(\.jsonLines)
    }

    /// Runs the worker under mpirun; with `rendezvous`, also hosts a TCP rendezvous and hands its
    /// address to the ranks (`-x`), so that a TCP ring and MPI run in the same job.
    private func mpiJob(ranks p: Int, mpiOptions: [String], arguments: [String], rendezvous: Bool = false) throws -> [[String: Any]] {
        var exports: [String] = []
        var server: RendezvousServer?
        if rendezvous {
            let secret = JobCredentials.randomSecret()
            let hosted = try RendezvousServer(host: "127.0.0.1", port: 0, worldSize: p, credentials: JobCredentials(jobID: "bench", secret: Array(secret.utf8)))
            hosted.start()
            server = hosted
            for (key, value) in [
                ("PHALANX_MASTER_ADDR", "127.0.0.1"), ("PHALANX_MASTER_PORT", "\(hosted.port)"), ("PHALANX_RENDEZVOUS_EXTERNAL", "1"),
                ("PHALANX_JOB_ID", "bench"), ("PHALANX_JOB_SECRET", secret),
            ] { exports += ["-x", "\(key)=\(value)"] }
        }
        let job = try WorkerProcesses(
            executable: "/usr/bin/mpirun", arguments: ["--oversubscribe", "-np", "\(p)"] + mpiOptions + exports + [LoopbackJob.executable, "allreduce-worker"] + arguments,
            count: 1
        ) { _ in ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"] }
        return withExtendedLifetime(server) { job.wait(timeout: .seconds(600)).flatMap(\.jsonLines) }
    }
}
