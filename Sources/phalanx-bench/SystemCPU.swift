import Foundation

/// The machine's busy CPU time, from `/proc/stat`: user, nice, system, irq and softirq time of
/// all CPUs together (idle, I/O wait and time stolen by the hypervisor excluded). The bench's
/// jobs run alone on the machine, so a difference between two readings is what they cost,
/// kernel TCP work included, whichever process or softirq it ran in.
enum SystemCPU {
    /// Busy CPU seconds since boot, or nil where `/proc/stat` cannot be read.
    static func busySeconds() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
        else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count >= 7 else { return nil }
        // user nice system idle iowait irq softirq [steal ...]
        let busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6]
        return busy / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
