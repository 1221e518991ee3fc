import CFlowSupport
import FlowDistributed
import Foundation

/// Rank 0's progress output: on a terminal a live line (epoch, step, loss, samples/s, ETA) redrawn at
/// most 10 times a second plus one line per epoch; otherwise (a log file, mpirun) one plain line per epoch, and
/// within an epoch longer than a minute the live line's content, indented, once a minute.
final class ProgressReporter {
    /// Seconds between the plain progress lines within a long epoch when the output is not a terminal.
    let plainInterval: Double
    let enabled: Bool
    let terminal: Bool
    let totalEpochs: Int
    /// The clock, seconds (monotonic; a test's own).
    let clock: () -> Double
    private var lastDraw: Double
    private var epochStart: Double
    private var rowsThisEpoch = 0
    private let runStart: Double
    private var stepsDone = 0
    private var totalSteps = 0

    /// `terminal` false forces plain lines (e.g. under mpirun, whose ranks see a pseudo-terminal even when
    /// the job's output goes to a file).
    /// Bits/dim are shown beside the NLL when `bitsPerDimDivisor` (D·ln 2) is given (discrete data).
    var bitsPerDimDivisor: Double?

    init(enabled: Bool, totalEpochs: Int, terminal: Bool = flow_stdout_is_terminal() != 0, plainInterval: Double = 60,
         clock: @escaping () -> Double = ProgressReporter.now) {
        self.enabled = enabled
        self.terminal = terminal
        self.totalEpochs = totalEpochs
        self.plainInterval = plainInterval
        self.clock = clock
        runStart = clock()
        epochStart = runStart
        lastDraw = terminal ? 0 : runStart
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    func step(_ r: StepReport) {
        guard let line = stepLine(r) else { return }
        print(terminal ? "\r\u{1B}[2K" + line : line, terminator: terminal ? "" : "\n")
        flow_flush_stdout()
    }

    /// Counts step `r` and returns the progress line to show now, if any: on a terminal at most every 0.1 s
    /// (the live line, redrawn), otherwise every ``plainInterval`` seconds from the epoch's start, indented.
    func stepLine(_ r: StepReport) -> String? {
        guard enabled else { return nil }
        rowsThisEpoch += r.rows
        stepsDone += 1
        totalSteps = totalEpochs * r.batchesPerEpoch
        let t = clock()
        guard t - lastDraw >= (terminal ? 0.1 : plainInterval) else { return nil }
        lastDraw = t
        let rate = Double(rowsThisEpoch) / max(1e-9, t - epochStart)
        let perStep = (t - runStart) / Double(stepsDone)
        let remaining = Double(max(0, totalSteps - r.step - 1)) * perStep
        var loss = formatLoss(r.nll)
        if let d = bitsPerDimDivisor { loss += String(format: " (%.4f bits/dim)", r.nll / d) }
        let line = String(format: "epoch %d/%d  step %d/%d  loss %@  %.0f samples/s  ETA %@",
                          r.epoch + 1, totalEpochs, r.batch + 1, r.batchesPerEpoch, loss, rate, Self.duration(remaining))
        return terminal ? line : "  " + line
    }

    func epoch(_ r: EpochReport) {
        epochStart = clock()
        if !terminal { lastDraw = epochStart }
        rowsThisEpoch = 0
        guard enabled else { return }
        var v = r.validationNLL.map { "  val NLL " + formatLoss($0) } ?? ""
        if let d = bitsPerDimDivisor, let nll = r.validationNLL { v += String(format: " (%.4f bits/dim)", nll / d) }
        let skipped = r.skippedSteps > 0 ? "  (\(r.skippedSteps) non-finite steps skipped)" : ""
        let trainBits = bitsPerDimDivisor.map { String(format: " (%.4f bits/dim)", r.trainNLL / $0) } ?? ""
        let line = String(format: "epoch %d/%d  train NLL %@%@%@  %.0f samples/s  %.2f s%@",
                          r.epoch, totalEpochs, formatLoss(r.trainNLL), trainBits, v, r.samplesPerSecond, r.seconds, skipped)
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

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%02d:%02d", s / 60, s % 60)
    }
}
