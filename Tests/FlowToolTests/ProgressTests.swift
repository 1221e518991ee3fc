@testable import FlowDistributed
import Testing

@testable import flow_mpirun

/// The progress output's cadence, on a clock the test moves (no waiting).
@Suite struct ProgressTests {
    final class Clock: @unchecked Sendable { var t = 1000.0 }

    func report(step: Int, batchesPerEpoch: Int = 10) -> StepReport {
        StepReport(step: step, epoch: step / batchesPerEpoch, batch: step % batchesPerEpoch, batchesPerEpoch: batchesPerEpoch,
                   rows: 64, nll: 2116.68, penalty: 0, gradientNorm: 1, learningRate: 1e-3, applied: true, seconds: 0.5)
    }

    @Test("a log file gets an indented progress line once a minute within a long epoch, and none within a short one")
    func plainLinesOnceAMinute() {
        let clock = Clock()
        let p = ProgressReporter(enabled: true, totalEpochs: 2, terminal: false, clock: { clock.t })
        p.bitsPerDimDivisor = 784 * 0.6931471805599453
        var lines: [String?] = []
        for (i, t) in [30.0, 59.0, 61.0, 90.0, 121.5].enumerated() {
            clock.t = 1000 + t
            lines.append(p.stepLine(report(step: i)))
        }
        #expect(lines[0] == nil && lines[1] == nil && lines[3] == nil)
        // At 61 s: 3 steps of 64 rows in 61 s; 2 epochs of 10 steps, 17 to go at 61/3 s each.
        #expect(lines[2] == "  epoch 1/2  step 3/10  loss 2116.6800 (3.8951 bits/dim)  3 samples/s  ETA 05:46")
        #expect(lines[4]?.hasPrefix("  epoch 1/2  step 5/10  loss 2116.6800") == true, "\(lines[4] ?? "nil")")
        // A new epoch restarts the minute.
        clock.t = 1130
        p.epoch(EpochReport(epoch: 1, trainNLL: 2116, validationNLL: nil, penalty: 0, seconds: 130, samplesPerSecond: 5, skippedSteps: 0))
        clock.t = 1185
        #expect(p.stepLine(report(step: 10)) == nil)
        clock.t = 1191
        #expect(p.stepLine(report(step: 11))?.hasPrefix("  epoch 2/2  step 2/10") == true)
    }

    @Test("losses print with 4 decimals, and with 6 significant digits beyond a million; counts with their noun")
    func formatting() {
        #expect(formatLoss(2116.68) == "2116.6800")
        #expect(formatLoss(-0.5) == "-0.5000")
        #expect(formatLoss(1.2345678e75) == "1.23457e+75")
        #expect(formatLoss(.nan) == "nan" && formatLoss(.infinity) == "inf")
        #expect(counted(1, "epoch") == "1 epoch" && counted(3, "epoch") == "3 epochs" && counted(0, "row") == "0 rows")
        #expect(shellQuoted("runs/moons-1.5") == "runs/moons-1.5")
        #expect(shellQuoted("runs/my run") == "'runs/my run'" && shellQuoted("it's") == "'it'\\''s'" && shellQuoted("") == "''")
    }

    @Test("a mistyped subcommand: edit distances and the nearest subcommands named")
    func subcommandSuggestions() {
        #expect(FlowMPIRun.editDistance("trian", "train") == 2 && FlowMPIRun.editDistance("smaple", "sample") == 2)
        #expect(FlowMPIRun.editDistance("", "abc") == 3 && FlowMPIRun.editDistance("abc", "") == 3 && FlowMPIRun.editDistance("bench", "bench") == 0)
        #expect(FlowMPIRun.unknownSubcommand(in: ["evalute", "--model", "m"])?.message
                == "unknown subcommand 'evalute' (did you mean 'evaluate'?); the subcommands are train, sample, evaluate, encode, decode, inspect, bench")
        #expect(FlowMPIRun.unknownSubcommand(in: ["train", "--epochs", "1"]) == nil)
        #expect(FlowMPIRun.unknownSubcommand(in: ["help", "train"]) == nil && FlowMPIRun.unknownSubcommand(in: ["--help"]) == nil)
    }

    @Test("disabled (--quiet or not rank 0): no line")
    func disabled() {
        let clock = Clock()
        let p = ProgressReporter(enabled: false, totalEpochs: 1, terminal: false, clock: { clock.t })
        clock.t += 1000
        #expect(p.stepLine(report(step: 0)) == nil)
    }
}
