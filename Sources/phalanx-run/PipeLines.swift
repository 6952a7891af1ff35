import Foundation

/// Reads a child's pipe to its end on a thread of its own and hands over its output line by
/// line: what the launcher and the mpirun wrapper copy to their own output. Plain `read` with
/// EINTR retried: Foundation's `FileHandle` traps on an interrupted call.
enum PipeLines {
    /// Starts the reader (in `group` until the pipe ends, then closes `descriptor`).
    /// `line(bytes, complete)` gets each line with its newline (`complete`), and last what
    /// followed the final newline, if anything (not `complete`).
    static func read(_ descriptor: Int32, group: DispatchGroup, line: @escaping @Sendable (ArraySlice<UInt8>, _ complete: Bool) -> Void) {
        group.enter()
        Thread {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
                if n < 0, errno == EINTR { continue }
                if n <= 0 { break }
                pending += buffer[0..<n]
                while let newline = pending.firstIndex(of: 0x0A) {
                    line(pending[...newline], true)
                    pending.removeSubrange(...newline)
                }
            }
            if !pending.isEmpty { line(pending[...], false) }
            close(descriptor)
            group.leave()
        }.start()
    }
}
