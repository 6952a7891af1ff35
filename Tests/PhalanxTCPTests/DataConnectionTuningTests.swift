import Foundation
import PhalanxCollectives
import PhalanxTesting
@testable import PhalanxTCP
import Testing

@Suite struct DataConnectionTuningTests {
    /// A line of /proc/sys/net/ipv4, split into names.
    static func kernelList(_ name: String) -> [String] {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/\(name)", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
    }

    /// A connected loopback pair: (connecting end, accepted end).
    static func connectedPair() throws -> (Socket, Socket) {
        let listener = try Socket.listen(host: "127.0.0.1", port: 0)
        defer { listener.close() }
        let client = try Socket.connect(host: "127.0.0.1", port: listener.localPort, deadline: Deadline(after: .seconds(5)))
        guard let server = try listener.accept(deadline: Deadline(after: .seconds(5))) else { throw SocketError("accept", endpoint: "", reason: "nothing connected") }
        return (client, server)
    }

    @Test func environmentSelectsTheCongestionControl() {
        #expect(DataConnectionTuning.fromEnvironment([:]).congestionControl == ["cubic", "reno"])
        #expect(DataConnectionTuning.fromEnvironment(["PHALANX_TCP_CONGESTION": ""]).congestionControl == ["cubic", "reno"])
        #expect(DataConnectionTuning.fromEnvironment(["PHALANX_TCP_CONGESTION": "system"]).congestionControl == [])
        #expect(DataConnectionTuning.fromEnvironment(["PHALANX_TCP_CONGESTION": " bbr, reno "]).congestionControl == ["bbr", "reno"])
        #expect(DataConnectionTuning.fromEnvironment([:]).bufferBytes == 4 << 20)
    }

    @Test func theFirstAcceptedAlgorithmWins() throws {
        let (client, server) = try Self.connectedPair()
        defer { client.close(); server.close() }
        // An unknown name is skipped; Reno is built into every Linux kernel and always allowed.
        let chosen = DataConnectionTuning(congestionControl: ["no-such-algorithm", "reno"]).apply(to: client.descriptor)
        #expect(chosen == "reno")
        #expect(DataConnectionTuning.congestionControl(of: client.descriptor) == "reno")
        var nodelay: Int32 = 0
        var length = socklen_t(4)
        getsockopt(client.descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &nodelay, &length)
        #expect(nodelay == 1)
    }

    @Test func systemKeepsTheDefault() throws {
        let (client, server) = try Self.connectedPair()
        defer { client.close(); server.close() }
        let systemDefault = Self.kernelList("tcp_congestion_control").first
        #expect(DataConnectionTuning(congestionControl: []).apply(to: client.descriptor) == systemDefault)
    }

    @Test func ringConnectionsUseTheTuning() throws {
        // A 2-rank TCP ring built in this process: both data connections ask for this process's
        // preferences (CUBIC then Reno unless PHALANX_TCP_CONGESTION says otherwise); which one
        // they get depends on what the kernel offers and permits.
        let available = Self.kernelList("tcp_available_congestion_control")
        let permitted = geteuid() == 0 ? available : Self.kernelList("tcp_allowed_congestion_control")
        let expected = DataConnectionTuning.current.congestionControl.first(where: { available.contains($0) && permitted.contains($0) })
            ?? Self.kernelList("tcp_congestion_control").first
        let credentials = JobCredentials(jobID: "tuning", secret: Array("s".utf8))
        let server = try RendezvousServer(host: "127.0.0.1", port: 0, worldSize: 2, credentials: credentials, timeout: .seconds(20))
        server.start()
        let port = server.port
        let transports = RankThreads.run(count: 2) { rank in
            Result { try TCPTransport.connect(
                rank: rank, worldSize: 2, server: PeerTable.Endpoint(host: "127.0.0.1", port: port), credentials: credentials,
                timeout: .seconds(20)) }
        }
        for transport in transports {
            let ring = try transport.get()
            #expect(ring.right.map { DataConnectionTuning.congestionControl(of: $0.descriptor) } == expected)
            #expect(ring.left.map { DataConnectionTuning.congestionControl(of: $0.descriptor) } == expected)
            ring.close()
        }
    }
}
