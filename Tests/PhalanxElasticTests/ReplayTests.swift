import Foundation
import PhalanxTesting
import Testing

/// An attacker on the path of a running job captures its traffic and plays it back: real
/// member processes on loopback, the capture through a packet socket. Heartbeats are UDP
/// datagrams; alerts and the other membership messages travel as control messages, each on
/// a connection of its own that starts with a handshake.
@Suite(.serialized, .enabled(if: LoopbackCapture.isAvailable, "capturing loopback traffic needs a packet socket (root or CAP_NET_RAW)"))
struct ReplayTests {
    static func port(of rank: Int, in job: ElasticJob) -> UInt16? {
        job.workers.stdoutSoFar(rank).split(separator: "\n").compactMap { line -> UInt16? in
            guard line.contains("\"event\":\"started\""), let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let port = object["port"] as? Int else { return nil }
            return UInt16(port)
        }.first
    }

    /// The connector's side of each captured control connection (handshake answer, intent,
    /// control message), by connection, with the port it went to.
    static func controlStreams(_ captured: [LoopbackCapture.Datagram]) -> [(port: UInt16, bytes: [UInt8])] {
        var streams: [UInt16: (port: UInt16, bytes: [UInt8])] = [:]
        var order: [UInt16] = []
        for segment in captured where segment.isTCP {
            if segment.payload.starts(with: Array("PHXC".utf8)) {
                streams[segment.sourcePort] = (segment.destinationPort, segment.payload)
                order.append(segment.sourcePort)
            } else if let stream = streams[segment.sourcePort] {
                streams[segment.sourcePort] = (stream.port, stream.bytes + segment.payload)
            }
        }
        // A control connection names intent 2 right after the handshake's answer.
        return order.compactMap { streams[$0] }.filter { stream in
            let answer = 6 + (Int(stream.bytes[4]) << 8 | Int(stream.bytes[5])) + 76
            return stream.bytes.count > answer + 16 && stream.bytes[answer] == 2 && Array(stream.bytes[(answer + 1)..<(answer + 5)]) == Array("PHXM".utf8)
        }
    }

    @Test func replayedBeatsDoNotHideAHungMemberAndReplayedControlConnectionsAreRefused() throws {
        let job = try ElasticJob(worldSize: 3, steps: 2000, extra: ["--step-delay-ms", "5"])
        defer { job.workers.signal(2, SIGCONT) }
        try #require(job.workers.waitForMarker("\"event\":\"started\"", ranks: [0, 1, 2], timeout: .seconds(60)), "\(job.workers.stderrSoFar(0).suffix(1500))")
        let ports = try (0..<3).map { try #require(Self.port(of: $0, in: job)) }
        let members = Set(ports)
        let capture = try LoopbackCapture { packet in
            if !packet.isTCP { return packet.payload.starts(with: Array("PHXB".utf8)) }
            // Connections to the members, but not the ring's data frames.
            return members.contains(packet.destinationPort) || members.contains(packet.sourcePort) && !packet.payload.starts(with: Array("PHXF".utf8))
        }
        defer { capture.stop() }
        usleep(1_000_000)
        // Member 2's beats to the others, captured while it was well.
        let beats = capture.datagrams.filter { !$0.isTCP && $0.sourcePort == ports[2] && $0.payload[4] == 1 }
        try #require(beats.count >= 10, "\(beats.count) beats captured")
        // Member 2 hangs; its beats are played back to the others every 20 ms from then on.
        job.workers.signal(2, SIGSTOP)
        let stopped = ContinuousClock.now
        let replaying = ReplayLoop(beats)
        defer { replaying.stop() }
        try #require(job.workers.waitForMarker("\"event\":\"change\"", ranks: [0, 1], timeout: .seconds(20)), "\(job.workers.stderrSoFar(0).suffix(1500))")
        let detection = ContinuousClock.now - stopped
        replaying.stop()
        #expect(replaying.sent >= 20)
        // The control connections of that change (alert, prepare, accept, decision), each
        // replayed on a new connection once the job went on: the handshake's nonce is new, so
        // the recorded answer proves nothing and the member says nothing back.
        usleep(500_000)
        let streams = Self.controlStreams(capture.datagrams).filter { $0.port != ports[2] }
        try #require(streams.count >= 2, "\(streams.count) control connections captured")
        for stream in streams {
            let answer = LoopbackCapture.replayStream(stream.bytes, toPort: stream.port, after: 38)
            #expect(answer.count == 38, "the member answered a replayed handshake: \(answer.count) bytes")
        }
        job.workers.signal(2, SIGKILL)
        let outputs = job.workers.wait(timeout: .seconds(120))
        for output in outputs.prefix(2) {
            #expect(output.done != nil, "\(output.stderr.suffix(1500))")
            let changes = output.events("change")
            // One change, for the hung member.
            #expect(changes.count == 1, "\(changes)")
            #expect((changes.first?["lost"] as? [Int]) == [2], "\(changes)")
        }
        // Found by its missing heartbeats (the other survivor learns it from the finder).
        let reasons = outputs.prefix(2).compactMap { $0.events("change").first?["reason"] as? String }
        #expect(reasons.contains { $0.contains("no heartbeat") }, "\(reasons)")
        // Refusals are logged once a second with a count of the others; the first names why.
        #expect(outputs.prefix(2).contains { $0.stderr.contains("it does not know the job secret") }, "no refusal was logged")
        #expect(detection < .seconds(5), "the hung member was found after \(detection)")
        #expect(try job.weights(member: 0) == job.weights(member: 1))
    }
}

/// Sends captured datagrams to their destinations in a loop, every 20 ms, on its own thread.
final class ReplayLoop: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private var count = 0
    private let done = DispatchSemaphore(value: 0)

    init(_ datagrams: [LoopbackCapture.Datagram]) {
        Thread { [self] in
            var next = 0
            while isRunning {
                let datagram = datagrams[next % datagrams.count]
                LoopbackCapture.send(datagram.payload, toPort: datagram.destinationPort)
                next += 1
                lock.lock()
                count = next
                lock.unlock()
                usleep(20_000)
            }
            done.signal()
        }.start()
    }

    private var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    /// Datagrams sent so far.
    var sent: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }

    /// Stops the loop (idempotent).
    func stop() {
        lock.lock()
        let was = running
        running = false
        lock.unlock()
        if was { done.wait() }
    }
}
