import Foundation

/// A worker process started with `posix_spawn` (not Foundation's `Process`, which crashed after
/// hundreds of spawns and traps on interrupted calls): its own process group (Ctrl-C reaches
/// the launcher, which stops the workers itself), default signal handling and an empty signal
/// mask, standard output and error on pipes the launcher reads.
final class ChildProcess: @unchecked Sendable {
    /// How a child ended.
    enum Termination: Equatable {
        /// It called `exit` with this status.
        case exited(Int32)
        /// A signal ended it.
        case signalled(Int32)
    }

    /// Its process id.
    let pid: pid_t
    /// The read ends of its standard output and error (the launcher closes them at EOF).
    let output: Int32, errors: Int32
    private let lock = NSLock()
    // Guarded by `lock`: set once the child is reaped, so that `signal` never reaches a
    // recycled pid.
    private var ended: Termination?

    /// Starts `path` with `arguments` (without argv[0]) and exactly `environment`.
    /// - Throws: `SpawnError` naming the executable and the reason.
    init(path: String, arguments: [String], environment: [String: String]) throws {
        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard Self.closeOnExecPipe(&outPipe) else { throw SpawnError(path: path, reason: String(cString: strerror(errno))) }
        guard Self.closeOnExecPipe(&errPipe) else {
            let reason = String(cString: strerror(errno))
            close(outPipe[0]); close(outPipe[1])
            throw SpawnError(path: path, reason: reason)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the copies; every other descriptor of the launcher is
        // close-on-exec (sockets and these pipes).
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], STDOUT_FILENO)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], STDERR_FILENO)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        // The launcher ignores SIGINT and SIGTERM (it forwards them); the worker must not.
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let status = posix_spawn(&child, path, &actions, &attributes, argv, envp)
        close(outPipe[1])
        close(errPipe[1])
        guard status == 0 else {
            close(outPipe[0]); close(errPipe[0])
            throw SpawnError(path: path, reason: String(cString: strerror(status)))
        }
        pid = child
        output = outPipe[0]
        errors = errPipe[0]
    }

    /// A pipe whose ends close on exec (`pipe2` needs _GNU_SOURCE, which Swift's Glibc lacks;
    /// the launcher spawns from one thread at a time).
    private static func closeOnExecPipe(_ ends: inout [Int32]) -> Bool {
        guard pipe(&ends) == 0 else { return false }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        return true
    }

    /// How it ended, nil while it runs (reaps it without blocking).
    var termination: Termination? {
        lock.lock()
        defer { lock.unlock() }
        return reap(options: WNOHANG)
    }

    /// Whether it is still running.
    var isRunning: Bool { termination == nil }

    /// Sends `number` to the child's process group (the worker and whatever it started: a
    /// shell's children, data loaders), unless the child was already reaped.
    func signal(_ number: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if reap(options: WNOHANG) == nil { kill(-pid, number) }
    }

    /// Blocks until it ends.
    @discardableResult
    func waitUntilExit() -> Termination {
        while true {
            if let ended = termination { return ended }
            usleep(5_000)
        }
    }

    // Call with `lock` held.
    private func reap(options: Int32) -> Termination? {
        if let ended { return ended }
        var status: Int32 = 0
        let result = waitpid(pid, &status, options)
        guard result == pid else {
            // ECHILD cannot happen for our own unreaped child; anything else: still running.
            return nil
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift cannot import.
        let signalNumber = status & 0x7F
        ended = signalNumber == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signalNumber)
        return ended
    }
}

/// A worker that could not be started.
struct SpawnError: Error, CustomStringConvertible {
    /// The executable.
    let path: String
    /// Why (strerror of posix_spawn's answer).
    let reason: String
    var description: String { "could not start \(path): \(reason)" }
}
