/// Slurm's compact host lists (`SLURM_JOB_NODELIST`, `SLURM_STEP_NODELIST`), expanded:
/// `"node[01-03,07],login2"` is `node01, node02, node03, node07, login2`.
///
/// The syntax is Slurm's (`scontrol show hostnames`): comma-separated entries, each a name with
/// at most one bracketed range list and an optional suffix (`tux[1-2]-ib`); a range `a-b` keeps
/// the zero padding of `a`.
public enum SlurmHostList {
    /// The most hosts one list may expand to (a typo like `n[0-99999999]` is an error, not a
    /// hundred million strings).
    public static let maximumHosts = 1_000_000

    /// A host list Slurm would not write, naming the list and what is wrong.
    public struct Malformed: Error, CustomStringConvertible, Equatable {
        /// The list as given.
        public var list: String
        /// What is wrong.
        public var reason: String
        /// "host list 'n[1-': unclosed '['".
        public var description: String { "host list '\(list)': \(reason)" }
    }

    /// The hosts of `list`, in order.
    /// - Throws: `Malformed` for unbalanced brackets, a bad range, or more than `maximumHosts`.
    public static func expand(_ list: String) throws -> [String] {
        var hosts: [String] = []
        for entry in try entries(list) {
            guard let open = entry.firstIndex(of: "[") else {
                hosts.append(String(entry))
                continue
            }
            guard let close = entry.firstIndex(of: "]"), entry.lastIndex(of: "]") == close, entry.lastIndex(of: "[") == open else {
                throw Malformed(list: list, reason: "'\(entry)' is not name[ranges]suffix")
            }
            let prefix = entry[..<open], suffix = entry[entry.index(after: close)...]
            for range in entry[entry.index(after: open)..<close].split(separator: ",", omittingEmptySubsequences: false) {
                let bounds = range.split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(bounds.count), bounds.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }),
                      let low = Int(bounds[0]), let high = Int(bounds[bounds.count - 1]), low <= high
                else { throw Malformed(list: list, reason: "'\(range)' is not a number or an ascending range") }
                guard high - low < maximumHosts - hosts.count else {
                    throw Malformed(list: list, reason: "more than \(maximumHosts) hosts")
                }
                let width = bounds[0].count
                for number in low...high {
                    let digits = String(number)
                    hosts.append(prefix + String(repeating: "0", count: max(0, width - digits.count)) + digits + suffix)
                }
            }
        }
        guard !hosts.isEmpty else { throw Malformed(list: list, reason: "no host") }
        return hosts
    }

    /// The first host of `list` without expanding the rest (Slurm's first node hosts the
    /// rendezvous).
    /// - Throws: `Malformed` as `expand` does.
    public static func first(of list: String) throws -> String {
        guard let entry = try entries(list).first else { throw Malformed(list: list, reason: "no host") }
        return try expand(String(entry))[0]
    }

    /// The top-level entries: commas inside brackets do not split.
    private static func entries(_ list: String) throws -> [Substring] {
        var result: [Substring] = []
        var depth = 0
        var start = list.startIndex
        for index in list.indices {
            switch list[index] {
            case "[":
                depth += 1
                guard depth == 1 else { throw Malformed(list: list, reason: "nested '['") }
            case "]":
                depth -= 1
                guard depth == 0 else { throw Malformed(list: list, reason: "']' without '['") }
            case "," where depth == 0:
                result.append(list[start..<index])
                start = list.index(after: index)
            default: break
            }
        }
        guard depth == 0 else { throw Malformed(list: list, reason: "unclosed '['") }
        result.append(list[start...])
        guard !result.contains(where: { $0.isEmpty || $0.contains(where: \.isWhitespace) }) else {
            throw Malformed(list: list, reason: "an empty entry or white space")
        }
        return result
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
