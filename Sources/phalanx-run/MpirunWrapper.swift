import Foundation

/// `phalanx-run --mpirun -- mpirun --enable-recovery … trainer --elastic`: runs the mpirun
/// command and ends with the job's outcome. Under `--enable-recovery` mpirun exits 0 whatever
/// its ranks did, and with daemons on other hosts it may wait on after a rank died even when
/// every survivor finished. The wrapper asks the trainers for their exit line
/// (`-x PHALANX_EXIT_REPORT=1`: `phalanx-exit member=M status=S members=K`, see the trainers'
/// `ExitReport`) and reads it from mpirun's forwarded output:
///
/// - once K members reported that they finished the job (status 0, `members=K`), the job is over:
///   mpirun gets half a second to exit by itself (on one host it does within tens of
///   milliseconds), then SIGTERM (SIGKILL 5.5 s later); exit 0;
/// - when mpirun exits first: 0 if any member finished the job, else the first failure a member
///   reported, else mpirun's own status.
struct MpirunWrapper {
    /// One `phalanx-exit` line.
    struct Report: Equatable {
        let member: Int, status: Int32, members: Int

        /// Parses the line's fields (anywhere in the line: mpirun may tag it).
        init?(line: Substring) {
            guard let start = line.range(of: "phalanx-exit ") else { return nil }
            var fields: [Substring: Int] = [:]
            for field in line[start.upperBound...].split(separator: " ") {
                let pair = field.split(separator: "=")
                if pair.count == 2, let value = Int(pair[1]) { fields[pair[0]] = value }
            }
            guard let member = fields["member"], let status = fields["status"], let members = fields["members"],
                  let code = Int32(exactly: status) else { return nil }
            self.member = member
            self.status = code
            self.members = members
        }
    }

    /// The reports so far and what they say, under a lock.
    final class Outcome: @unchecked Sendable {
        private let lock = NSLock()
        // Guarded by `lock`.
        private var finishedMembers = Set<Int>(), expected = 0, firstFailure: Int32?

        func add(_ report: Report) {
            lock.lock()
            defer { lock.unlock() }
            if report.status == 0, report.members > 0 {
                finishedMembers.insert(report.member)
                expected = max(expected, report.members)
            } else if report.status != 0, firstFailure == nil {
                firstFailure = report.status
            }
        }

        /// Every member of the final membership reported that it finished.
        var jobFinished: Bool {
            lock.lock()
            defer { lock.unlock() }
            return expected > 0 && finishedMembers.count >= expected
        }

        /// The status to exit with once mpirun ended with `mpirunStatus`.
        func status(mpirunStatus: Int32) -> Int32 {
            lock.lock()
            defer { lock.unlock() }
            if !finishedMembers.isEmpty { return 0 }
            return firstFailure ?? mpirunStatus
        }
    }

    /// The mpirun process once started, for the signal handlers (which may run before).
    final class Started: @unchecked Sendable {
        private let lock = NSLock()
        // Guarded by `lock`.
        private var process: ChildProcess?
        var child: ChildProcess? {
            get { lock.lock(); defer { lock.unlock() }; return process }
            set { lock.lock(); process = newValue; lock.unlock() }
        }
    }

    /// Runs `command` (mpirun and its arguments) and returns the status to exit with.
    /// - Throws: `SpawnError` when mpirun cannot be started; `ValidationError` when the command
    ///   is not an mpirun command.
    static func run(_ command: [String]) throws -> Int32 {
        guard let first = command.first, let path = first.contains("/") ? first : Supervisor.which(first) else {
            throw SpawnError(path: command.first ?? "", reason: "not found on PATH")
        }
        let arguments = ["-x", "PHALANX_EXIT_REPORT=1"] + command.dropFirst()
        // Signals are taken over before mpirun starts (it runs in a process group of its own,
        // so a signal that killed the wrapper would leave it running); a closed output
        // (`… | head`) must not kill the wrapper either.
        signal(SIGPIPE, SIG_IGN)
        for number in [SIGINT, SIGTERM, SIGHUP] { signal(number, SIG_IGN) }
        let started = Started()
        let interrupts = [SIGINT, SIGTERM, SIGHUP].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { started.child?.signal(number) }
            source.resume()
            return source
        }
        defer { interrupts.forEach { $0.cancel() } }
        let child = try ChildProcess(path: path, arguments: arguments, environment: ProcessInfo.processInfo.environment)
        started.child = child
        let outcome = Outcome()
        let streams = DispatchGroup()
        copy(child.output, to: STDOUT_FILENO, outcome: outcome, group: streams)
        copy(child.errors, to: STDERR_FILENO, outcome: nil, group: streams)
        var stopping: ContinuousClock.Instant?
        var terminated = false
        while true {
            if let ended = child.termination {
                _ = streams.wait(timeout: .now() + 5)
                let status: Int32
                switch ended {
                case let .exited(code): status = code
                case let .signalled(number): status = 128 + number
                }
                let final = outcome.status(mpirunStatus: stopping == nil ? status : 0)
                Supervisor.say("mpirun ended (status \(status)); the job's status: \(final)")
                return final
            }
            if stopping == nil, outcome.jobFinished {
                stopping = .now
            }
            if let since = stopping {
                let waited = ContinuousClock.now - since
                if waited > .milliseconds(500), !terminated {
                    Supervisor.say("every member finished; mpirun is still running: stopping it")
                    child.signal(SIGTERM)
                    terminated = true
                } else if waited > .seconds(6) {
                    child.signal(SIGKILL)
                }
            }
            usleep(20_000)
        }
    }

    /// Copies a pipe to `sink` line by line, reading exit reports on the way.
    private static func copy(_ descriptor: Int32, to sink: Int32, outcome: Outcome?, group: DispatchGroup) {
        PipeLines.read(descriptor, group: group) { line, complete in
            if complete, let outcome, let report = Report(line: Substring(String(decoding: line.dropLast(), as: UTF8.self))) {
                outcome.add(report)
            }
            Supervisor.write(Array(line), to: sink)
        }
    }
}
