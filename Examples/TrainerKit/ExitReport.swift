import Foundation
import Phalanx
import Synchronization

/// The line a trainer prints last when a launcher wrapper asks for it
/// (`PHALANX_EXIT_REPORT=1`, set by `phalanx-run --mpirun`):
/// `phalanx-exit member=M status=S members=K`, where K is the number of members that finished
/// the job together (0 when this member did not finish it). The wrapper reads these lines from
/// mpirun's forwarded output: once K members reported success, the job is over, whatever
/// mpirun's daemons still wait for.
enum ExitReport {
    /// The member id and the final member count, set when the job finished on this member.
    private static let finished = Mutex<(member: Int, members: Int)?>(nil)

    /// Records that this member finished the job with `members` members.
    static func finished(member: Int, members: Int) {
        finished.withLock { $0 = (member, members) }
    }

    /// Prints the line (when asked for) and exits with `status`.
    static func exit(_ status: Int32) -> Never {
        if ProcessInfo.processInfo.environment["PHALANX_EXIT_REPORT"] == "1" {
            let done = finished.withLock { $0 }
            let member = done?.member ?? (try? LaunchEnvironment.detect())?.rank ?? -1
            print("phalanx-exit member=\(member) status=\(status) members=\(status == 0 ? done?.members ?? 0 : 0)")
            fflush(nil)
        }
        Foundation.exit(status)
    }
}
