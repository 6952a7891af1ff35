import Foundation
import PhalanxTensor

#if canImport(Glibc)
import Glibc
#endif

/// A safetensors file opened for reading: memory-mapped, with its header parsed and every entry
/// validated against the file size and the other entries before any tensor byte is touched.
///
/// Checks: the header length fits the file and is at most 100 MB; the header is a JSON object;
/// each entry has a known dtype, a shape of non-negative integers whose element count times the
/// dtype size equals its byte range, offsets inside the data section; the entries do not overlap
/// and leave no hole (as the format requires). Violations are `CheckpointError.malformed`.
public final class SafetensorsFile: @unchecked Sendable {
    /// One tensor's place in the file.
    public struct Entry: Sendable, Equatable {
        /// The tensor's name.
        public let name: String
        /// Its element type.
        public let dtype: SafetensorsDType
        /// Its shape.
        public let shape: [Int]
        /// Its bytes, relative to the start of the data section.
        public let byteRange: Range<Int>
        /// The number of elements.
        public var count: Int { shape.reduce(1, *) }
    }

    /// The path it was opened from.
    public let path: String
    /// The entries in data order.
    public let entries: [Entry]
    /// The `__metadata__` strings.
    public let metadata: [String: String]
    private let index: [String: Int]
    private let mapping: UnsafeMutableRawPointer?
    private let mappedBytes: Int
    private let dataStart: Int

    /// The largest header accepted, as in the reference implementation.
    public static let maximumHeaderBytes = 100_000_000

    /// Opens and validates `path`.
    /// - Throws: `CheckpointError` (`.io`, `.malformed`, `.unsupportedType`).
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError(.io, path: path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw CheckpointError(.io, path: path, "cannot stat: \(String(cString: strerror(errno)))") }
        let size = Int(info.st_size)
        guard size >= 8 else { throw CheckpointError(.malformed, path: path, "\(size) bytes is shorter than the 8-byte header length") }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw CheckpointError(.io, path: path, "cannot map: \(String(cString: strerror(errno)))")
        }
        mapping = mapped
        mappedBytes = size
        do {
            let headerLength = UInt64(littleEndian: mapped.loadUnaligned(as: UInt64.self))
            guard headerLength <= UInt64(Self.maximumHeaderBytes), headerLength <= UInt64(size - 8) else {
                throw CheckpointError(.malformed, path: path, "header length \(headerLength) exceeds the file (\(size) bytes) or the 100 MB limit")
            }
            dataStart = 8 + Int(headerLength)
            let headerData = Data(bytes: mapped + 8, count: Int(headerLength))
            (entries, metadata) = try Self.parse(headerData, dataBytes: size - dataStart, path: path)
            index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
        } catch {
            munmap(mapped, size)
            throw error
        }
    }

    deinit { if let mapping { munmap(mapping, mappedBytes) } }

    /// The entry called `name`, if any.
    public func entry(named name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The raw bytes of an entry (valid while the file object lives).
    public func rawBytes(of entry: Entry) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: mapping.map { UnsafeRawPointer($0) + dataStart + entry.byteRange.lowerBound }, count: entry.byteRange.count)
    }

    /// The tensor called `name`, converted to Float.
    /// - Throws: `CheckpointError.missingTensor`.
    public func tensor(named name: String) throws -> Tensor {
        guard let entry = entry(named: name) else { throw CheckpointError(.missingTensor, path: path, "no tensor '\(name)'") }
        return try Tensor(shape: entry.shape) { out in
            guard let destination = out.baseAddress, let source = rawBytes(of: entry).baseAddress else { return }
            entry.dtype.convert(source, count: entry.count, into: destination)
        }
    }

    /// Copies the tensor called `name` into `destination`, which must hold exactly its elements.
    /// - Throws: `CheckpointError.missingTensor` if absent or of another element count.
    public func read(named name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        guard let entry = entry(named: name) else { throw CheckpointError(.missingTensor, path: path, "no tensor '\(name)'") }
        guard entry.count == destination.count else {
            throw CheckpointError(.missingTensor, path: path, "'\(name)' has \(entry.count) elements (shape \(entry.shape)), expected \(destination.count)")
        }
        guard let target = destination.baseAddress, let source = rawBytes(of: entry).baseAddress else { return }
        entry.dtype.convert(source, count: entry.count, into: target)
    }

    /// The header as stored: the 8-byte length and the JSON with its padding (for checksums).
    public var headerBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: mapping.map { UnsafeRawPointer($0) }, count: dataStart)
    }

    /// The whole data section (for checksums).
    public var dataBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: mapping.map { UnsafeRawPointer($0) + dataStart }, count: mappedBytes - dataStart)
    }
}
