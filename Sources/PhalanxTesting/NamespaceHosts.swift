import Foundation

/// Test "hosts" that are network namespaces on a bridge of their own (scripts/netns-hosts.sh):
/// host `i` (0-based) is namespace `prefix-(i+1)` at `10.77.S.(i+2)`; the bridge, in this
/// process's namespace, is `10.77.S.1`. Links between hosts can be cut both ways (blackhole
/// routes inside the namespaces: every packet between the two groups is dropped) and healed.
/// Needs root.
public final class NamespaceHosts {
    /// The namespaces' name prefix.
    public let prefix: String
    /// How many hosts.
    public let count: Int
    /// The third byte of the subnet, `10.77.S.0/24`.
    public let subnet: Int
    private let script: String
    private var cuts: [(Int, String)] = []
    private var removed = false

    /// Creates `count` namespace hosts with the repository's `scripts/netns-hosts.sh`.
    /// - Throws: `NamespaceHosts.Failure` when the script fails (not root, no `ip`).
    public init(repository: String, count: Int) throws {
        prefix = "phx" + String(UUID().uuidString.prefix(4)).lowercased()
        subnet = Int.random(in: 1...250)
        script = "\(repository)/scripts/netns-hosts.sh"
        self.count = count
        try Self.run(script, ["up", prefix, "\(count)", "\(subnet)"])
    }

    deinit { remove() }

    /// An error of the `ip` tool or the script, with its output.
    public struct Failure: Error, CustomStringConvertible {
        /// What failed and what it printed.
        public let description: String
    }

    /// The address of host `index`.
    public func address(_ index: Int) -> String { "10.77.\(subnet).\(index + 2)" }

    /// The bridge's address: this process is reachable there from every host.
    public var bridgeAddress: String { "10.77.\(subnet).1" }

    /// The subnet in CIDR form.
    public var network: String { "10.77.\(subnet).0/24" }

    /// The namespace of host `index`.
    public func namespace(_ index: Int) -> String { "\(prefix)-\(index + 1)" }

    /// Cuts every link between the hosts in `left` and those in `right`, in both directions;
    /// the bridge stays reachable from all of them.
    public func cut(_ left: [Int], _ right: [Int]) throws {
        for (from, to) in left.flatMap({ a in right.map { (a, $0) } }) + right.flatMap({ a in left.map { (a, $0) } }) {
            try Self.run("/usr/sbin/ip", ["-n", namespace(from), "route", "add", "blackhole", "\(address(to))/32"])
            cuts.append((from, address(to)))
        }
    }

    /// Restores every link cut so far.
    public func heal() throws {
        for (from, target) in cuts { try Self.run("/usr/sbin/ip", ["-n", namespace(from), "route", "del", "blackhole", "\(target)/32"]) }
        cuts = []
    }

    /// Removes the namespaces and the bridge (also done when the object goes away).
    public func remove() {
        guard !removed else { return }
        removed = true
        _ = try? Self.run(script, ["down", prefix, "\(count)"])
    }

    /// The executable and arguments that run `executable` with `arguments` inside the namespace
    /// named by the environment variable `namespaceVariable` (set it per process with
    /// `environment(on:)`, so that one `WorkerProcesses` spreads its processes over the hosts).
    public static func inNamespace(_ executable: String, _ arguments: [String]) -> (executable: String, arguments: [String]) {
        ("/bin/sh", ["-c", "exec /usr/sbin/ip netns exec \"$\(namespaceVariable)\" \"$0\" \"$@\"", executable] + arguments)
    }

    /// The variable that `inNamespace` reads.
    public static let namespaceVariable = "PHALANX_TEST_NAMESPACE"

    /// SIGKILLs every process running in host `index`'s namespace (the whole node fails at once:
    /// a launcher's agent and its workers). Returns how many were killed.
    @discardableResult
    public func killEverything(on index: Int) -> Int {
        let pids = processes(on: index)
        for pid in pids { kill(pid, SIGKILL) }
        return pids.count
    }

    /// The PIDs of every process running in host `index`'s namespace.
    public func processes(on index: Int) -> [Int32] {
        let listing = (try? WorkerProcesses(executable: "/usr/sbin/ip", arguments: ["netns", "pids", namespace(index)], count: 1) { _ in [:] }
            .wait(timeout: .seconds(30))[0].stdout) ?? ""
        return listing.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
    }

    /// The environment that puts a process started by `inNamespace` on host `index`.
    public func environment(on index: Int) -> [String: String] { [Self.namespaceVariable: namespace(index)] }

    static func run(_ executable: String, _ arguments: [String]) throws {
        let output = try WorkerProcesses(executable: executable, arguments: arguments, count: 1) { _ in [:] }.wait(timeout: .seconds(30))[0]
        guard output.status == 0 else {
            throw Failure(description: "\(executable) \(arguments.joined(separator: " ")) failed (\(output.status)): \(output.stderr)")
        }
    }
}
