import CFlowSupport
import FlowDistributed
import Foundation

/// Rank 0's progress output: on a terminal a live line (epoch, step, loss, samples/s, ETA) redrawn at
/// most 10 times a second plus one line per epoch; otherwise one plain line per epoch.
final class ProgressReporter {
    let enabled: Bool
    let terminal: Bool
    let totalEpochs: Int
    private var lastDraw = 0.0
    private var epochStart = ProgressReporter.now()
    private var rowsThisEpoch = 0
    private let runStart = ProgressReporter.now()
    private var stepsDone = 0
    private var totalSteps = 0

    /// `terminal` false forces plain lines (e.g. under mpirun, whose ranks see a pseudo-terminal even when
    /// the job's output goes to a file).
    /// Bits/dim are shown beside the NLL when `bitsPerDimDivisor` (D·ln 2) is given (discrete data).
    var bitsPerDimDivisor: Double?

    init(enabled: Bool, totalEpochs: Int, terminal: Bool = flow_stdout_is_terminal() != 0) {
        self.enabled = enabled
        self.terminal = terminal
        self.totalEpochs = totalEpochs
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    func step(_ r: StepReport) {
        guard enabled else { return }
        rowsThisEpoch += r.rows
        stepsDone += 1
        totalSteps = totalEpochs * r.batchesPerEpoch
        guard terminal else { return }
        let t = Self.now()
        guard t - lastDraw > 0.1 else { return }
        lastDraw = t
        let rate = Double(rowsThisEpoch) / max(1e-9, t - epochStart)
        let perStep = (t - runStart) / Double(stepsDone)
        let remaining = Double(max(0, totalSteps - r.step - 1)) * perStep
        let line = String(format: "epoch %d/%d  step %d/%d  loss %.4f  %.0f samples/s  ETA %@",
                          r.epoch + 1, totalEpochs, r.batch + 1, r.batchesPerEpoch, r.nll, rate, Self.clock(remaining))
        print("\r\u{1B}[2K" + line, terminator: "")
        flow_flush_stdout()
    }

    func epoch(_ r: EpochReport) {
        epochStart = Self.now()
        rowsThisEpoch = 0
        guard enabled else { return }
        var v = r.validationNLL.map { String(format: "  val NLL %.4f", $0) } ?? ""
        if let d = bitsPerDimDivisor, let nll = r.validationNLL { v += String(format: " (%.4f bits/dim)", nll / d) }
        let skipped = r.skippedSteps > 0 ? "  (\(r.skippedSteps) non-finite steps skipped)" : ""
        let line = String(format: "epoch %d/%d  train NLL %.4f%@  %.0f samples/s  %.2f s%@",
                          r.epoch, totalEpochs, r.trainNLL, v, r.samplesPerSecond, r.seconds, skipped)
        if terminal {
            print("\r\u{1B}[2K" + line)
        } else {
            print(line)
        }
        flow_flush_stdout()
    }

    func finish() {
        guard enabled, terminal else { return }
        print("\r\u{1B}[2K", terminator: "")
        flow_flush_stdout()
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%02d:%02d", s / 60, s % 60)
    }
}
