import Crypto
import Foundation

/// What protects the ring's data frames after the handshake (`PHALANX_WIRE_PROTECTION`):
///
/// - `none`: nothing beyond the handshake; the payload leaves and arrives straight from and
///   into the caller's memory.
/// - `mac`: every segment of at most `segmentBytes` is followed by a trailer, its number and
///   an AES-GCM tag over the segment (authenticated data) and the frame's header, under the
///   connection's sending key with the number as nonce (GMAC). A changed, injected, replayed or
///   reordered segment is refused before the receiver uses it. The payload is still sent from
///   and received into the caller's memory.
/// - `aead`: the segments are also encrypted (AES-256-GCM); an observer learns nothing of the
///   weights and gradients.
///
///     header(48, byte 6 = mode) | segment 1 | number(8) tag(16) | segment 2 | … (at least one)
///
/// Every member of a job must use the same mode; a frame in another mode is refused with a
/// message that names both.
public enum WireProtection: String, Sendable, CaseIterable {
    case none
    case mac
    case aead

    /// Largest segment under one tag.
    static let segmentBytes = 256 << 10
    /// Number and tag after each segment.
    static let trailerBytes = 24

    /// The mode's code in the frame header (byte 6).
    var code: UInt8 {
        switch self {
        case .none: return 0
        case .mac: return 1
        case .aead: return 2
        }
    }

    init?(code: UInt8) {
        guard let mode = WireProtection.allCases.first(where: { $0.code == code }) else { return nil }
        self = mode
    }

    /// The mode `PHALANX_WIRE_PROTECTION` names (`none` when unset).
    /// - Throws: `LaunchEnvironment.InvalidVariable`-like `SocketError` for another value.
    public static func fromEnvironment(_ variables: [String: String]) throws -> WireProtection {
        guard let value = variables["PHALANX_WIRE_PROTECTION"]?.trimmingCharacters(in: .whitespaces).lowercased(), !value.isEmpty else {
            return .none
        }
        guard let mode = WireProtection(rawValue: value) else {
            throw SocketError("configure", endpoint: "PHALANX_WIRE_PROTECTION", reason: "'\(value)' is not one of none, mac, aead")
        }
        return mode
    }

    /// Segments of a payload of `bytes` (at least one: a frame without payload still has a tag).
    static func segments(_ bytes: Int) -> Int { Swift.max(1, (bytes + segmentBytes - 1) / segmentBytes) }

    /// Bytes on the wire after the header for a payload of `bytes`.
    func bodyBytes(payload bytes: Int) -> Int {
        self == .none ? bytes : bytes + Self.segments(bytes) * Self.trailerBytes
    }

    /// The range of segment `index` in a payload of `bytes`.
    static func segment(_ index: Int, of bytes: Int) -> Range<Int> {
        (index * segmentBytes)..<Swift.min(bytes, (index + 1) * segmentBytes)
    }

    static func nonce(_ number: UInt64) throws -> AES.GCM.Nonce {
        try AES.GCM.Nonce(data: [0, 0, 0, 0] + Wire.bytes(number))
    }

    /// The tag of `segment` under `key` and `number` (the `mac` mode): GMAC of the segment, with
    /// the header bound in as the (discarded) message.
    static func tag(header: [UInt8], segment: UnsafeRawBufferPointer, key: SymmetricKey, number: UInt64) throws -> [UInt8] {
        Array(try AES.GCM.seal(header, using: key, nonce: nonce(number), authenticating: segment).tag)
    }
}

/// The protected body of one outgoing frame: trailers (and, with `aead`, the ciphertext),
/// computed before the first byte leaves, in memory it owns until it is released.
final class SealedBody {
    /// With `aead`, the segments' ciphertext (else the caller's payload goes out as it is).
    private let ciphertext: UnsafeMutableRawBufferPointer?
    /// `number(8) tag(16)` per segment.
    private let trailers: UnsafeMutableRawBufferPointer
    private let payloadBytes: Int

    /// Seals `payload` for a frame with `header`, numbering the segments with `keys`.
    init(mode: WireProtection, header: [UInt8], payload: UnsafeRawBufferPointer, keys: SessionKeys) throws {
        let count = WireProtection.segments(payload.count)
        trailers = .allocate(byteCount: count * WireProtection.trailerBytes, alignment: 8)
        ciphertext = mode == .aead ? .allocate(byteCount: Swift.max(1, payload.count), alignment: 16) : nil
        payloadBytes = payload.count
        for index in 0..<count {
            let range = WireProtection.segment(index, of: payload.count)
            let segment = range.isEmpty ? UnsafeRawBufferPointer(start: nil, count: 0) : UnsafeRawBufferPointer(rebasing: payload[range])
            let number = keys.nextSent()
            let tag: [UInt8]
            if let ciphertext {
                let box = try AES.GCM.seal(segment, using: keys.sending, nonce: WireProtection.nonce(number), authenticating: header)
                box.ciphertext.withUnsafeBytes { sealed in
                    if let base = ciphertext.baseAddress, let source = sealed.baseAddress, !range.isEmpty {
                        (base + range.lowerBound).copyMemory(from: source, byteCount: range.count)
                    }
                }
                tag = Array(box.tag)
            } else {
                tag = try WireProtection.tag(header: header, segment: segment, key: keys.sending, number: number)
            }
            let trailer = Wire.bytes(number) + tag
            trailer.withUnsafeBytes { source in
                if let base = trailers.baseAddress, let from = source.baseAddress {
                    (base + index * WireProtection.trailerBytes).copyMemory(from: from, byteCount: WireProtection.trailerBytes)
                }
            }
        }
    }

    deinit {
        ciphertext?.deallocate()
        trailers.deallocate()
    }

    /// The pieces of the body from wire offset `offset` on (after the header), at most `limit`;
    /// `payload` is the caller's (the segments' bytes unless encrypted).
    func pieces(payload: UnsafeRawBufferPointer, from offset: Int, limit: Int = 64) -> [UnsafeRawBufferPointer] {
        var out: [UnsafeRawBufferPointer] = []
        let stride = WireProtection.segmentBytes + WireProtection.trailerBytes
        var index = offset / stride
        var within = offset % stride
        let count = WireProtection.segments(payloadBytes)
        let bytes = ciphertext.map { UnsafeRawBufferPointer($0) } ?? payload
        while index < count, out.count < limit {
            let range = WireProtection.segment(index, of: payloadBytes)
            if within < range.count, let base = bytes.baseAddress {
                out.append(UnsafeRawBufferPointer(start: base + range.lowerBound + within, count: range.count - within))
                within = range.count
            }
            let trailerStart = within - range.count
            if let base = trailers.baseAddress {
                out.append(UnsafeRawBufferPointer(start: base + index * WireProtection.trailerBytes + trailerStart,
                                                  count: WireProtection.trailerBytes - trailerStart))
            }
            index += 1
            within = 0
        }
        return out
    }
}

/// Receives one protected frame body: says where the next bytes go (payload segments straight
/// into the caller's buffer, trailers aside) and checks each segment once its trailer is in.
struct OpenedBody {
    let mode: WireProtection
    let header: [UInt8]
    let payloadBytes: Int
    let keys: SessionKeys
    let endpoint: String
    /// Body bytes received so far (segments and trailers).
    private(set) var received = 0
    private var trailer = [UInt8](repeating: 0, count: WireProtection.trailerBytes)

    init(mode: WireProtection, header: [UInt8], payloadBytes: Int, keys: SessionKeys, endpoint: String, received: Int = 0) {
        self.mode = mode
        self.header = header
        self.payloadBytes = payloadBytes
        self.keys = keys
        self.endpoint = endpoint
        self.received = received
    }

    var bodyBytes: Int { mode.bodyBytes(payload: payloadBytes) }
    var isComplete: Bool { received == bodyBytes }

    /// Where segment `index`'s trailer starts in the body.
    private func trailerStart(_ index: Int) -> Int {
        index * (WireProtection.segmentBytes + WireProtection.trailerBytes) + WireProtection.segment(index, of: payloadBytes).count
    }

    /// Receives up to what the current piece still needs with `read` (a `recv` into the given
    /// memory); returns the payload bytes verified so far when a segment was completed and
    /// checked, nil otherwise. `read` returns what `recv` returned.
    /// - Throws: `WireIntegrityError` for a segment that does not verify or was seen before;
    ///   rethrows `read`'s errors.
    mutating func receive(into incoming: UnsafeMutableRawBufferPointer, _ read: (UnsafeMutableRawPointer, Int) throws -> Int) throws -> Int? {
        let stride = WireProtection.segmentBytes + WireProtection.trailerBytes
        let index = received / stride
        let range = WireProtection.segment(index, of: payloadBytes)
        let within = received - index * stride
        if within < range.count, let base = incoming.baseAddress {
            let n = try read(base + range.lowerBound + within, range.count - within)
            if n > 0 { received += n }
            return nil
        }
        let trailerOffset = within - range.count
        let n = try trailer.withUnsafeMutableBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            return try read(base + trailerOffset, WireProtection.trailerBytes - trailerOffset)
        }
        guard n > 0 else { return nil }
        received += n
        guard received == trailerStart(index) + WireProtection.trailerBytes else { return nil }
        try check(index, range, incoming)
        return range.upperBound
    }

    private func check(_ index: Int, _ range: Range<Int>, _ incoming: UnsafeMutableRawBufferPointer) throws {
        let number = Wire.uint64(trailer, at: 0)
        let tag = Array(trailer[8...])
        let segment = range.isEmpty ? UnsafeMutableRawBufferPointer(start: nil, count: 0) : UnsafeMutableRawBufferPointer(rebasing: incoming[range])
        let what = "data frame segment \(index)"
        do {
            if mode == .aead {
                let box = try AES.GCM.SealedBox(nonce: WireProtection.nonce(number), ciphertext: UnsafeRawBufferPointer(segment), tag: tag)
                let plain = try AES.GCM.open(box, using: keys.receiving, authenticating: header)
                plain.withUnsafeBytes { source in
                    if let base = segment.baseAddress, let from = source.baseAddress, source.count == segment.count {
                        base.copyMemory(from: from, byteCount: source.count)
                    }
                }
            } else {
                let expected = try WireProtection.tag(header: header, segment: UnsafeRawBufferPointer(segment), key: keys.receiving, number: number)
                guard MessageAuthentication.constantTimeEqual(expected, tag) else { throw WireIntegrityError.forged(what: what, from: endpoint) }
            }
        } catch let error as WireIntegrityError {
            throw error
        } catch {
            throw WireIntegrityError.forged(what: what, from: endpoint)
        }
        guard keys.accept(received: number) else { throw WireIntegrityError.replayed(what: what, from: endpoint, number: number) }
    }
}
