import ArgumentParser

/// Fault injection for users and tests.
///
/// `kill:R:S` SIGKILLs member R in the middle of step S (after its backward pass, before the
/// all-reduce); `leave:R:S` makes member R exit cleanly before step S; `recoverykill:R:S` kills
/// member R as soon as it takes part in a recovery at step ≥ S; `changekill:R:S` kills it right
/// after it applied a change of members at step ≥ S.
public struct Fault: Sendable, Equatable {
    /// What happens.
    public enum Kind: String, Sendable { case kill, leave, recoverykill, changekill }
    /// What happens.
    public let kind: Kind
    /// To which member (rank in static modes).
    public let member: Int
    /// At which step.
    public let step: Int

    /// Makes a fault.
    public init(kind: Kind, member: Int, step: Int) {
        self.kind = kind
        self.member = member
        self.step = step
    }

    /// Parses "kind:member:step".
    public init(_ text: String) throws {
        let parts = text.split(separator: ":")
        guard parts.count == 3, let kind = Kind(rawValue: String(parts[0])), let member = Int(parts[1]), let step = Int(parts[2]) else {
            throw ValidationError("a fault is kill|leave|recoverykill|changekill:MEMBER:STEP, got '\(text)'")
        }
        self.init(kind: kind, member: member, step: step)
    }

    /// Several faults, comma-separated ("" is none).
    public static func list(_ text: String) throws -> [Fault] { try text.split(separator: ",").map { try Fault(String($0)) } }

    /// Whether `faults` plan `kind` for `member` at `step`.
    public static func planned(_ faults: [Fault], _ kind: Kind, member: Int, step: Int) -> Bool {
        faults.contains { $0.kind == kind && $0.member == member && ([.recoverykill, .changekill].contains(kind) ? step >= $0.step : step == $0.step) }
    }
}
