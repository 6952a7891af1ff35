/// Prometheus' text exposition format, as far as a launcher needs it to serve its workers'
/// metrics as one endpoint: split into metric families, add labels to every sample, merge the
/// families of several sources (one `# HELP`/`# TYPE` per family, its samples together, as the
/// format requires).
public struct ExpositionText: Sendable, Equatable {
    /// One metric family: its name, `# HELP` and `# TYPE` lines and its samples' lines.
    public struct Family: Sendable, Equatable {
        /// The family's name (a histogram's `_bucket`, `_sum` and `_count` samples belong to it).
        public var name: String
        /// The `# HELP` line, if any.
        public var help: String?
        /// The `# TYPE` line, if any.
        public var type: String?
        /// The sample lines.
        public var samples: [String]
    }

    /// The families, in the order they first appeared.
    public var families: [Family]

    /// Parses `text`; lines that are neither comments nor samples are dropped.
    public init(parsing text: String) {
        var families: [Family] = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = String(raw)
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let name = line.dropFirst(7).split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
                if families.last?.name != name { families.append(Family(name: name, samples: [])) }
                if line.hasPrefix("# HELP ") { families[families.count - 1].help = line } else { families[families.count - 1].type = line }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let name = Self.sampleName(line), !name.isEmpty else { continue }
            if let last = families.last, Self.belongs(name, to: last.name) {
                families[families.count - 1].samples.append(line)
            } else {
                families.append(Family(name: name, samples: [line]))
            }
        }
        self.families = families
    }

    /// Families given as they are.
    public init(families: [Family]) {
        self.families = families
    }

    /// The text: each family's HELP and TYPE lines, then its samples; ends with a newline.
    public var text: String {
        var lines: [String] = []
        for family in families {
            if let help = family.help { lines.append(help) }
            if let type = family.type { lines.append(type) }
            lines += family.samples
        }
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }

    /// The same families with `labels` added to every sample (before its own labels).
    public func labelled(_ labels: [(String, String)]) -> ExpositionText {
        guard !labels.isEmpty else { return self }
        let added = labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",")
        return ExpositionText(families: families.map { family in
            var family = family
            family.samples = family.samples.map { line in
                guard let name = Self.sampleName(line) else { return line }
                let rest = line.dropFirst(name.count)
                if rest.hasPrefix("{}") { return "\(name){\(added)}\(rest.dropFirst(2))" }
                if rest.hasPrefix("{") { return "\(name){\(added),\(rest.dropFirst())" }
                return "\(name){\(added)}\(rest)"
            }
            return family
        })
    }

    /// `parts` as one exposition: families of the same name merged (the first HELP and TYPE
    /// kept), in the order they first appear.
    public static func merged(_ parts: [ExpositionText]) -> ExpositionText {
        var order: [String] = []
        var byName: [String: Family] = [:]
        for part in parts {
            for family in part.families {
                if var known = byName[family.name] {
                    known.help = known.help ?? family.help
                    known.type = known.type ?? family.type
                    known.samples += family.samples
                    byName[family.name] = known
                } else {
                    order.append(family.name)
                    byName[family.name] = family
                }
            }
        }
        return ExpositionText(families: order.compactMap { byName[$0] })
    }

    /// A sample line's metric name (up to `{` or the first space).
    static func sampleName(_ line: String) -> String? {
        guard let end = line.firstIndex(where: { $0 == "{" || $0 == " " }) else { return nil }
        return String(line[..<end])
    }

    /// Whether sample `name` is of family `family` (itself, or a histogram's or summary's parts).
    static func belongs(_ name: String, to family: String) -> Bool {
        name == family || ["_bucket", "_sum", "_count", "_total", "_created"].contains { name == family + $0 }
    }

    /// A label value escaped as the format wants (backslash, quote, newline).
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
