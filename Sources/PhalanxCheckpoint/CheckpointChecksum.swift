/// The checksum of a checkpoint file: XXH3-128 over every byte of the file (the header's length,
/// the header with the training metadata, the data) with the checksum's own 32 hex digits read
/// as zeros. A flipped or torn byte anywhere, the step or the world size included, is found.
enum CheckpointChecksum {
    /// What the checksum's digits are while the digest is computed.
    static let placeholder = String(repeating: "0", count: 32)

    /// Where the checksum's digits sit in `header` (the bytes from the length prefix to the end
    /// of the JSON): after the one `"phalanx.checksum":"` in it, followed by 32 bytes and a
    /// closing quote; nil if absent, repeated or not followed so.
    static func digits(in header: UnsafeRawBufferPointer) -> Range<Int>? {
        let key = Array("\"\(CheckpointFormat.checksumKey)\":\"".utf8)
        guard let found = header.firstRange(of: key), header[found.upperBound...].firstRange(of: key) == nil else { return nil }
        let digits = found.upperBound..<(found.upperBound + 32)
        guard digits.upperBound < header.count, header[digits.upperBound] == UInt8(ascii: "\"") else { return nil }
        return digits
    }

    /// Fills in the checksum of a file made of `header` (written with `placeholder` as the
    /// checksum) followed by `data`.
    /// - Throws: `CheckpointError.malformed` if the header holds no single placeholder.
    static func seal(_ header: inout [UInt8], data: [UnsafeRawBufferPointer], path: String) throws {
        let digest = try FileDigest()
        let range = header.withUnsafeBytes { bytes -> Range<Int>? in
            digest.update(bytes)
            return digits(in: bytes)
        }
        guard let range, header[range].allSatisfy({ $0 == UInt8(ascii: "0") }) else {
            throw CheckpointError(.malformed, path: path, "the header holds no single checksum placeholder")
        }
        for part in data { digest.update(part) }
        header.replaceSubrange(range, with: Array(digest.hex.utf8))
    }

    /// Checks the checksum of `file`.
    /// - Throws: `CheckpointError.checksumMismatch` naming both digests, or `.malformed` if the
    ///   checksum is missing or not where the writer puts it.
    static func verify(_ file: SafetensorsFile) throws {
        let header = file.headerBytes
        guard let range = digits(in: header) else {
            throw CheckpointError(.malformed, path: file.path, "no single \(CheckpointFormat.checksumKey) of 32 hex digits in the header")
        }
        let stored = UnsafeRawBufferPointer(rebasing: header[range])
        var zeroed = Array(header)
        zeroed.replaceSubrange(range, with: Array(placeholder.utf8))
        let digest = try FileDigest()
        zeroed.withUnsafeBytes { digest.update($0) }
        digest.update(file.dataBytes)
        let actual = digest.hex
        guard stored.elementsEqual(actual.utf8) else {
            throw CheckpointError(.checksumMismatch, path: file.path, "the file's XXH3-128 is \(actual), its header says \(String(decoding: stored, as: UTF8.self))")
        }
    }
}
