import Foundation
import Testing

/// A process started as a shell starts it (empty signal mask, default handling of SIGINT, SIGTERM, SIGUSR1 and
/// SIGUSR2; Foundation's `Process` passes on the test thread's blocked signals instead, and mpirun never
/// unblocks them, so it would not forward them), its standard output and error into one log file. A test waits
/// for a line of that output, a condition, never for time: together with `FLOW_TEST_FAULT=hold@R:S` a signal
/// test cannot race the machine's speed. The deadlines only turn a hang into a failure.
final class SignalDriver {
    let pid: pid_t
    let log: String
    private var status: Int32?

    /// Starts `executable` with `arguments` and the test's environment plus `environment`.
    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], log: String) throws {
        self.log = log
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var mask = sigset_t(), defaults = sigset_t()
        sigemptyset(&mask)
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGUSR1, SIGUSR2] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigmask(&attr, &mask)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for a in argv + envp { free(a) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, executable, &actions, &attr, argv, envp)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
        self.pid = pid
    }

    /// Everything the process has written so far.
    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Whether the process has ended (reaps it).
    var finished: Bool {
        if status != nil { return true }
        var s: Int32 = 0
        if waitpid(pid, &s, WNOHANG) == pid { status = s; return true }
        return false
    }

    /// Waits until the output contains `text`; false when the process ended first or `deadline` seconds passed
    /// (a hang guard only: a correct run reaches the text long before).
    func waitFor(_ text: String, deadline: Double = 300) -> Bool {
        waitUntil(deadline: deadline) { $0.contains(text) }
    }

    /// Waits until `condition` holds on the output; false when the process ended first or the deadline passed.
    func waitUntil(deadline: Double = 300, _ condition: (String) -> Bool) -> Bool {
        let end = Date().addingTimeInterval(deadline)
        while Date() < end {
            if condition(output) { return true }
            if finished { return condition(output) }
            usleep(5_000)
        }
        return false
    }

    /// The value following `prefix` in the output, up to the next non-digit (e.g. a pid), or nil.
    func number(after prefix: String) -> Int32? {
        guard let r = output.range(of: prefix) else { return nil }
        return Int32(output[r.upperBound...].prefix { $0.isNumber })
    }

    /// Sends `signal` to the process.
    func send(_ signal: Int32) { kill(pid, signal) }

    /// Waits for the end (SIGKILL after `deadline` seconds, a hang guard); the exit status, or 128 + the
    /// signal that ended it, as a shell reports it.
    func wait(deadline: Double = 300) -> Int32 {
        let end = Date().addingTimeInterval(deadline)
        while !finished && Date() < end { usleep(5_000) }
        if !finished {
            kill(pid, SIGKILL)
            var s: Int32 = 0
            waitpid(pid, &s, 0)
            status = s
        }
        let s = status!
        return s & 0x7f == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f)
    }
}
