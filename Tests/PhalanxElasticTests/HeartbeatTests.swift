import Foundation
import PhalanxElastic
import PhalanxTCP
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
