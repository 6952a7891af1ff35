import PhalanxCollectives

/// Byte layouts on the wire: big-endian integers and the 48-byte frame header.
///
///     magic "PHXF"(4) type(1) kind(1) reserved(2) epoch(8) sequence(8) step(4) reserved(4)
///     totalCount(8) payloadBytes(8)
///
/// `type` 1 is data (the payload follows), 2 is abort (a UTF-8 report follows), 3 is a fence
/// (no payload) that marks where an elastic ring's kept connection resumes at a new epoch.
public enum Wire {
    static let headerSize = 48
    static let magic: [UInt8] = Array("PHXF".utf8)

    enum FrameType: UInt8 {
        case data = 1
        case abort = 2
        /// Marks where a kept connection's stream starts again after a membership change.
        case fence = 3
    }

    /// `value`, most significant byte first.
    public static func bytes(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32($0))) } }
    /// `value`, most significant byte first.
    public static func bytes(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) } }

    /// The big-endian `UInt32` at `offset`.
    public static func uint32<C: Collection>(_ b: C, at offset: Int) -> UInt32 where C.Element == UInt8, C.Index == Int {
        (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(b[b.startIndex + offset + $1]) }
    }

    /// The big-endian `UInt64` at `offset`.
    public static func uint64<C: Collection>(_ b: C, at offset: Int) -> UInt64 where C.Element == UInt8, C.Index == Int {
        (0..<8).reduce(UInt64(0)) { $0 << 8 | UInt64(b[b.startIndex + offset + $1]) }
    }

    /// Encodes a frame header.
    static func encode(_ type: FrameType, _ header: MessageHeader) -> [UInt8] {
        var out = magic + [type.rawValue, header.kind.rawValue, 0, 0]
        out += bytes(header.epoch) + bytes(header.sequence) + bytes(header.step) + [0, 0, 0, 0]
        out += bytes(header.totalCount) + bytes(header.payloadBytes)
        return out
    }

    /// Decodes a frame header; nil when it is not one.
    static func decode(_ raw: [UInt8]) -> (FrameType, MessageHeader)? {
        guard raw.count == headerSize, Array(raw[0..<4]) == magic, let type = FrameType(rawValue: raw[4]),
            let kind = CollectiveKind(rawValue: raw[5]) ?? (type != .data ? .allReduce : nil)
        else { return nil }
        let header = MessageHeader(
            epoch: uint64(raw, at: 8), sequence: uint64(raw, at: 16), kind: kind, step: uint32(raw, at: 24),
            totalCount: uint64(raw, at: 32), payloadBytes: uint64(raw, at: 40))
        return (type, header)
    }
}
