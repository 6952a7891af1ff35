/// The frames one collective sends to the right neighbour and receives from the left one, in
/// order, and when each outgoing frame may leave: `Transport.run(_:timeout:)` executes it.
///
/// A ring forwards what it receives, so outgoing frame `i` may start only once the first
/// `requiredReceives(beforeSending: i)` incoming frames are complete (at most `i`, so a
/// lock-step runner never waits on it). Frame `i` of a rank's outgoing sequence is frame `i` of
/// its right neighbour's incoming sequence, with the same header.
public protocol FrameSchedule: AnyObject {
    /// The number of frames to send.
    var sendCount: Int { get }
    /// The number of frames to receive.
    var receiveCount: Int { get }
    /// Outgoing frame `index`: its header and its payload (`header.payloadBytes` bytes).
    func outgoing(_ index: Int) -> (header: MessageHeader, payload: UnsafeRawBufferPointer)
    /// Incoming frame `index`: the header it must carry and where its payload goes.
    func incoming(_ index: Int) -> (header: MessageHeader, destination: UnsafeMutableRawBufferPointer)
    /// How many incoming frames must be complete before outgoing frame `index` may start.
    func requiredReceives(beforeSending index: Int) -> Int
    /// Incoming frame `index` now holds `bytes` payload bytes: called whenever that count grows
    /// (never for an empty payload), the last time with the whole payload. Frames complete in
    /// order.
    func received(_ index: Int, bytes: Int) throws
}

/// The error for a schedule that waits for more incoming frames than it has.
struct FrameScheduleStall {
    let schedule: any FrameSchedule
    let rank: Int
    let sent: Int

    var error: CollectiveError {
        let header = schedule.outgoing(sent).header
        return CollectiveError(
            .invalidArgument, during: header, rank: rank, peer: nil,
            message: "outgoing frame \(sent) waits for \(schedule.requiredReceives(beforeSending: sent)) incoming frames, but only \(schedule.receiveCount) come")
    }
}
