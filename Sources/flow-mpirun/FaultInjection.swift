import FlowDistributed
import Foundation

/// Test hooks for fault tests, read from `FLOW_TEST_FAULT` (never set in normal use):
/// - `nan@S`          the gradient of step S (and later steps) is poisoned with NaN on every rank
/// - `kill@R:S`       rank R sends itself SIGKILL before step S
/// - `exit@R:S`       rank R exits with status 3 before step S (an error on one rank only)
enum FaultInjection {
    static func install(on trainer: DataParallelTrainer, rank: Int) {
        guard let spec = ProcessInfo.processInfo.environment["FLOW_TEST_FAULT"], let at = spec.firstIndex(of: "@") else { return }
        let kind = spec[..<at]
        let args = spec[spec.index(after: at)...].split(separator: ":").compactMap { Int($0) }
        switch (kind, args.count) {
        case ("nan", 1):
            let s = args[0]
            trainer.injectNonFinite = { $0 >= s }
        case ("kill", 2), ("exit", 2):
            guard args[0] == rank else { return }
            let s = args[1], kill = kind == "kill"
            trainer.injectNonFinite = { step in
                if step == s {
                    FileHandle.standardError.write(Data("[rank \(rank)] FLOW_TEST_FAULT: \(kill ? "SIGKILL" : "exit 3") at step \(s)\n".utf8))
                    if kill { Foundation.kill(getpid(), SIGKILL) } else { exit(3) }
                }
                return false
            }
        default:
            FileHandle.standardError.write(Data("warning: ignoring malformed FLOW_TEST_FAULT=\(spec)\n".utf8))
        }
    }
}
