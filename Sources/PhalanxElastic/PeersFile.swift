import Foundation
import PhalanxTCP

/// The file where the job's live members are listed for joiners: "# epoch N", then
/// "host:port" lines (the coordinator of each change rewrites it; an older epoch never
/// replaces a newer one), and "# finished N" once a member finished the job.
public enum PeersFile {
    /// What the file says, read in one go.
    public struct Contents: Sendable, Equatable {
        /// The epoch of the membership listed, if the file says.
        public var epoch: UInt64?
        /// The "host:port" lines.
        public var addresses: [String] = []
        /// The step the job finished at, if a member marked it finished.
        public var finishedStep: Int?
    }

    /// Reads and parses the file (empty contents when it is missing or unreadable).
    public static func load(_ path: String) -> Contents {
        var contents = Contents()
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return contents }
        let lines = text.split(separator: "\n")
        if let first = lines.first, first.hasPrefix("# epoch ") { contents.epoch = UInt64(first.dropFirst("# epoch ".count)) }
        contents.addresses = lines.filter { !$0.hasPrefix("#") }.map(String.init)
        contents.finishedStep = lines.first { $0.hasPrefix("# finished ") }.flatMap { Int($0.dropFirst("# finished ".count)) }
        return contents
    }

    /// Replaces the file's contents with `membership` unless the file holds a newer epoch
    /// (atomically: written aside, then renamed; two writers race only for equal epochs).
    static func write(_ membership: Membership, to path: String) {
        write(epoch: membership.epoch, addresses: membership.members.map { "\($0.host):\($0.port)" }, to: path)
    }

    /// Replaces the file's contents with `addresses` ("host:port") of membership `epoch`,
    /// unless the file holds a newer epoch or says the job finished (a launcher passes on the
    /// directory it learned from its node rendezvous).
    public static func write(epoch: UInt64, addresses: [String], to path: String) {
        let existing = load(path)
        if let known = existing.epoch, known > epoch { return }
        if existing.finishedStep != nil { return }
        let text = "# epoch \(epoch)\n" + addresses.map { "\($0)\n" }.joined()
        let temporary = "\(path).\(getpid()).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else { return }
        if rename(temporary, path) != 0 { unlink(temporary) }
    }

    /// The "host:port" lines.
    public static func read(_ path: String) -> [String] { load(path).addresses }

    /// Marks the job finished at `step` (newcomers started later exit at once, successfully).
    public static func markFinished(_ step: Int, in path: String) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let line = "# finished \(step)\n"
        _ = line.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// The step the job finished at, if a member marked it finished.
    public static func finishedStep(_ path: String) -> Int? { load(path).finishedStep }

    /// The addresses listed, as members to ask.
    static func addresses(_ path: String) -> [MemberAddress] { read(path).compactMap(ElasticMember.parseAddress) }

    /// The epoch the file describes, if it says.
    public static func epoch(_ path: String) -> UInt64? { load(path).epoch }
}
