import Foundation
import PhalanxElastic
import PhalanxTCP
import PhalanxTesting
import Testing

/// Heartbeats and alerts over UDP between two members' ports: a beating peer is never
/// suspected, a silent one is within the timeout, alerts of the current epoch arrive once, and
/// stale or forged datagrams are ignored.
@Suite(.serialized) struct HeartbeatTests {
    let credentials = JobCredentials(jobID: "member-test", secret: Array("secret".utf8))

    @Test func aSilentPeerIsSuspectedAndAlertsArrive() throws {
        let a = try MemberNode(host: "127.0.0.1", credentials: credentials)
        let b = try MemberNode(host: "127.0.0.1", credentials: credentials)
        let beatA = try HeartbeatService(host: "127.0.0.1", port: a.port, credentials: credentials, interval: .milliseconds(50), timeout: .milliseconds(400))
        let beatB = try HeartbeatService(host: "127.0.0.1", port: b.port, credentials: credentials, interval: .milliseconds(50), timeout: .milliseconds(400))
        let events = EventLog()
        beatA.onSuspect = { peer, _ in events.add("suspect \(peer)") }
        beatA.onAlert = { sender in events.add("alert \(sender)") }
        beatA.watch(id: 0, epoch: 4, peers: [b.address(id: 1)])
        beatB.watch(id: 1, epoch: 4, peers: [a.address(id: 0)])
        beatA.start()
        beatB.start()
        usleep(800_000)
        #expect(!events.contains("suspect 1"), "a beating peer is not suspected: \(events.all)")
        beatB.alert(id: 1, epoch: 4, to: [a.address(id: 0)])
        beatB.alert(id: 1, epoch: 3, to: [a.address(id: 0)])  // a stale epoch: ignored
        usleep(100_000)
        #expect(events.count("alert 1") == 1, "\(events.all)")
        // An alert signed with another secret is ignored.
        let forger = try HeartbeatService(host: "127.0.0.1", port: 0, credentials: JobCredentials(jobID: "member-test", secret: Array("x".utf8)))
        forger.alert(id: 1, epoch: 4, to: [a.address(id: 0)])
        usleep(100_000)
        #expect(events.count("alert 1") == 1)
        let silencedAt = ContinuousClock.now
        beatB.stop()
        while !events.contains("suspect 1") && ContinuousClock.now - silencedAt < .seconds(3) { usleep(10_000) }
        let after = ContinuousClock.now - silencedAt
        #expect(events.contains("suspect 1"))
        #expect(after < .milliseconds(900), "suspected after \(after)")
        beatA.stop()
    }

    /// A UDP socket that records what reaches it: the "path" a datagram is captured on.
    final class Recorder: @unchecked Sendable {
        let fd: Int32
        let port: UInt16
        init() throws {
            let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
            var timeout = timeval(tv_sec: 0, tv_usec: 300_000)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            fd = descriptor
            port = UInt16(bigEndian: address.sin_port)
        }
        deinit { close(fd) }
        /// The datagrams that arrived until one read waits 300 ms in vain.
        func drain() -> [[UInt8]] {
            var out: [[UInt8]] = []
            var buffer = [UInt8](repeating: 0, count: 2048)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return out }
                out.append(Array(buffer[0..<n]))
            }
        }
    }

    @Test func aReplayedAlertOfTheCurrentEpochActsOnceAndReplayedBeatsDoNotHideASilentPeer() throws {
        let nodeA = try MemberNode(host: "127.0.0.1", credentials: credentials)
        let aPort = nodeA.port
        let a = try HeartbeatService(host: "127.0.0.1", port: aPort, credentials: credentials, interval: .milliseconds(50), timeout: .milliseconds(400))
        let recorder = try Recorder()
        let b = try HeartbeatService(host: "127.0.0.1", port: 0, credentials: credentials, interval: .milliseconds(50), timeout: .milliseconds(400))
        let events = EventLog()
        a.onSuspect = { peer, _ in events.add("suspect \(peer)") }
        a.onAlert = { sender in events.add("alert \(sender)") }
        // B's alert and beats go to the recorder; the "attacker" forwards them to A.
        let towardRecorder = [MemberAddress(id: 0, host: "127.0.0.1", port: recorder.port)]
        b.alert(id: 1, epoch: 4, to: towardRecorder)
        b.watch(id: 1, epoch: 4, peers: towardRecorder)
        b.start()
        usleep(400_000)
        b.stop()
        let captured = recorder.drain()
        let alerts = captured.filter { $0[4] == 2 }, beats = captured.filter { $0[4] == 1 }
        try #require(alerts.count == 1 && beats.count >= 4, "\(captured.count) datagrams")
        a.watch(id: 0, epoch: 4, peers: [MemberAddress(id: 1, host: "127.0.0.1", port: 1)])
        a.start()
        defer { a.stop() }
        // Everything is delivered once, as the network would, in order.
        for datagram in captured { LoopbackCapture.send(datagram, toPort: aPort) }
        usleep(100_000)
        #expect(events.count("alert 1") == 1, "\(events.all)")
        // The alert, replayed three times at the same epoch, does not act again.
        for _ in 0..<3 { LoopbackCapture.send(alerts[0], toPort: aPort) }
        usleep(100_000)
        #expect(events.count("alert 1") == 1, "\(events.all)")
        // B is silent now; its recorded beats, replayed every 50 ms, do not keep it alive.
        let silentSince = ContinuousClock.now
        var next = 0
        while !events.contains("suspect 1"), ContinuousClock.now - silentSince < .seconds(3) {
            LoopbackCapture.send(beats[next % beats.count], toPort: aPort)
            next += 1
            usleep(50_000)
        }
        #expect(events.contains("suspect 1"), "replayed beats hid a silent peer")
        #expect(ContinuousClock.now - silentSince < .milliseconds(900))
        #expect(a.replaysRefused >= 3 + next - 1, "\(a.replaysRefused) refused of \(next) replayed beats and 3 alerts")
    }
}

/// Thread-safe list of strings: `events` is guarded by `lock`.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [String] = []
    func add(_ event: String) { lock.lock(); events.append(event); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return events }
    func contains(_ event: String) -> Bool { all.contains(event) }
    func count(_ event: String) -> Int { all.filter { $0 == event }.count }
}
