import CFlowSupport
import FlowDistributed
import Foundation

/// Test hooks for fault tests, read from `FLOW_TEST_FAULT` (never set in normal use):
/// - `nan@S`          the gradient of step S (and later steps) is poisoned with NaN on every rank
/// - `kill@R:S`       rank R sends itself SIGKILL before step S
/// - `exit@R:S`       rank R exits with status 3 before step S (an error on one rank only)
/// - `hold@R:S[:N]`   rank R, in step S just before the ranks exchange their stop requests, prints
///                    "FLOW_TEST_FAULT: rank R (pid P) holds at step S" and waits until N stop signals (default 1)
///                    have arrived, printing "FLOW_TEST_FAULT: rank R received stop signal K (NAME)" for each, then
///                    goes on. The run cannot end before the signal, so signal tests wait for a condition and never
///                    race the machine's speed. The stop is agreed in step S: the last step taken is S (steps count
///                    from 0), and the checkpoint's `state.step` is S + 1. With `FLOW_TEST_HOLD_FILE=PATH` it
///                    also creates PATH when it starts holding and goes on (without a signal) once PATH is removed:
///                    a test can pause a run at a known step, break something, and let it continue. Before the
///                    step, the writing rank's background writes are completed (``holdStep``), so that a test sees
///                    on disk the checkpoint of every epoch finished before the hold, on any machine.
enum FaultInjection {
    /// The step S of a `hold@R:S[:N]` hook, whichever rank R holds (nil without one): the train loop completes its
    /// background writes at the end of step S − 1.
    static var holdStep: Int? {
        guard let spec = ProcessInfo.processInfo.environment["FLOW_TEST_FAULT"], spec.hasPrefix("hold@") else { return nil }
        let args = spec.dropFirst("hold@".count).split(separator: ":").compactMap { Int($0) }
        return args.count >= 2 ? args[1] : nil
    }

    /// Adds the hooks `FLOW_TEST_FAULT` asks for (nothing when it is unset) to the trainer's options.
    static func apply(to options: inout TrainerOptions, rank: Int) {
        guard let spec = ProcessInfo.processInfo.environment["FLOW_TEST_FAULT"], let at = spec.firstIndex(of: "@") else { return }
        let kind = spec[..<at]
        let args = spec[spec.index(after: at)...].split(separator: ":").compactMap { Int($0) }
        switch (kind, args.count) {
        case ("nan", 1):
            let s = args[0]
            options.faults = FaultHooks(poisonGradient: { $0 >= s })
        case ("kill", 2), ("exit", 2):
            guard args[0] == rank else { return }
            let s = args[1], kill = kind == "kill"
            options.faults = FaultHooks(poisonGradient: { step in
                if step == s {
                    say("[rank \(rank)] FLOW_TEST_FAULT: \(kill ? "SIGKILL" : "exit 3") at step \(s)")
                    if kill { Foundation.kill(getpid(), SIGKILL) } else { exit(3) }
                }
                return false
            })
        case ("hold", 2), ("hold", 3):
            guard args[0] == rank else { return }
            let s = args[1], signals = args.count == 3 ? args[2] : 1
            let request = options.stopRequest
            let holdFile = ProcessInfo.processInfo.environment["FLOW_TEST_HOLD_FILE"]
            // Asked once per step, in the step's exchange of stop requests.
            options.stopRequest = { step in
                if step == s {
                    if let holdFile { _ = FileManager.default.createFile(atPath: holdFile, contents: Data()) }
                    say("FLOW_TEST_FAULT: rank \(rank) (pid \(getpid())) holds at step \(s)")
                    var seen: Int32 = 0
                    while seen < signals {
                        let count = flow_stop_signal_count()
                        if count > seen {
                            seen = count
                            say("FLOW_TEST_FAULT: rank \(rank) received stop signal \(seen) (\(StopSignal.name(flow_stop_signal())))")
                        } else if let holdFile, !FileManager.default.fileExists(atPath: holdFile) {
                            say("FLOW_TEST_FAULT: rank \(rank) released: \(holdFile) was removed")
                            break
                        } else {
                            usleep(1000)
                        }
                    }
                }
                return request(step)
            }
        default:
            say("warning: ignoring malformed FLOW_TEST_FAULT=\(spec)")
        }
    }

    /// Writes one line to standard error, unbuffered (a test waits for it).
    private static func say(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
