import Foundation

/// A real etcd cluster for tests (Debian's `etcd-server`): one `etcd` process per member, each
/// with a data directory of its own, on loopback ports or on network-namespace hosts, stopped
/// by PID (SIGKILL) when the test kills a member or the cluster goes away.
public final class EtcdCluster {
    /// Where a member listens.
    public struct Member: Sendable {
        /// Its name in the cluster.
        public let name: String
        /// Its address.
        public let host: String
        /// The port clients use.
        public let clientPort: UInt16
        /// The port the other members use.
        public let peerPort: UInt16
        /// The network namespace it runs in, if any.
        public let namespace: String?

        /// A member named `name` at `host` (inside `namespace`, if given).
        public init(name: String, host: String, clientPort: UInt16, peerPort: UInt16, namespace: String? = nil) {
            self.name = name
            self.host = host
            self.clientPort = clientPort
            self.peerPort = peerPort
            self.namespace = namespace
        }
    }

    /// The members, in the order given.
    public let members: [Member]
    /// The executable (`/usr/bin/etcd` where Debian puts it).
    public static let executable = "/usr/bin/etcd"
    private let directory: String
    private var processes: [WorkerProcesses?]

    /// Whether etcd is installed.
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: executable) }

    /// Starts one member per entry of `members` (a fresh cluster) and returns once every member
    /// answers its health check, within `timeout`.
    /// - Throws: `Failure` when etcd is missing or the cluster does not become healthy.
    public init(members: [Member], timeout: Duration = .seconds(30)) throws {
        guard Self.isInstalled else { throw Failure(description: "\(Self.executable) is missing (apt-get install etcd-server)") }
        self.members = members
        directory = NSTemporaryDirectory() + "phalanx-etcd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        processes = []
        let cluster = members.map { "\($0.name)=http://\($0.host):\($0.peerPort)" }.joined(separator: ",")
        let token = "phalanx-\(UUID().uuidString.prefix(8))"
        for member in members {
            let arguments = [
                "--name", member.name, "--data-dir", "\(directory)/\(member.name)",
                "--listen-client-urls", "http://\(member.host):\(member.clientPort)", "--advertise-client-urls", "http://\(member.host):\(member.clientPort)",
                "--listen-peer-urls", "http://\(member.host):\(member.peerPort)", "--initial-advertise-peer-urls", "http://\(member.host):\(member.peerPort)",
                "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", token,
            ]
            let (executable, wrapped) = member.namespace == nil ? (Self.executable, arguments) : NamespaceHosts.inNamespace(Self.executable, arguments)
            let environment = member.namespace.map { [NamespaceHosts.namespaceVariable: $0] } ?? [:]
            processes.append(try WorkerProcesses(executable: executable, arguments: wrapped, count: 1) { _ in environment })
        }
        let deadline = ContinuousClock.now + timeout
        while !members.indices.allSatisfy(isHealthy) {
            guard ContinuousClock.now < deadline else {
                let logs = processes.compactMap { $0?.stderrSoFar(0).suffix(600) }.joined(separator: "\n---\n")
                stop()
                throw Failure(description: "the etcd cluster did not become healthy within \(timeout): \(logs)")
            }
            usleep(200_000)
        }
    }

    /// A cluster of `count` members on loopback, at free ports.
    public convenience init(loopback count: Int) throws {
        let members = try (0..<count).map { index in
            Member(name: "m\(index)", host: "127.0.0.1", clientPort: try LoopbackPort.free(), peerPort: try LoopbackPort.free(), namespace: nil)
        }
        try self.init(members: members)
    }

    deinit { stop() }

    /// A failure to start the cluster.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public let description: String
    }

    /// The members' client addresses ("host:port").
    public var endpoints: [String] { members.map { "\($0.host):\($0.clientPort)" } }

    /// Whether member `index` runs and answers `/health` with a leader.
    public func isHealthy(_ index: Int) -> Bool {
        guard processes.indices.contains(index), processes[index] != nil else { return false }
        let member = members[index]
        let command = ["/usr/bin/etcdctl", "--endpoints", "http://\(member.host):\(member.clientPort)", "--dial-timeout", "1s",
                       "--command-timeout", "2s", "endpoint", "health"]
        let (executable, arguments) = member.namespace == nil ? (command[0], Array(command.dropFirst())) : NamespaceHosts.inNamespace(command[0], Array(command.dropFirst()))
        guard let check = try? WorkerProcesses(executable: executable, arguments: arguments, count: 1, environment: { _ in
            ["ETCDCTL_API": "3"].merging(member.namespace.map { [NamespaceHosts.namespaceVariable: $0] } ?? [:]) { _, new in new }
        }) else { return false }
        return check.wait(timeout: .seconds(10))[0].status == 0
    }

    /// SIGKILLs member `index`.
    public func kill(_ index: Int) {
        guard processes.indices.contains(index), let process = processes[index] else { return }
        process.signal(0, SIGKILL)
        _ = process.wait(timeout: .seconds(10))
        processes[index] = nil
    }

    /// Sends `signal` to member `index` (SIGSTOP freezes it, SIGCONT wakes it).
    public func signal(_ index: Int, _ signal: Int32) {
        guard processes.indices.contains(index), let process = processes[index] else { return }
        process.signal(0, signal)
    }

    /// SIGKILLs every member and removes the data directories.
    public func stop() {
        for index in processes.indices { kill(index) }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
