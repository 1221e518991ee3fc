import FlowCore
import Foundation
import Testing

/// Signals, a crash while a checkpoint is written, and non-finite steps: nothing is lost, resuming gives
/// the same bytes as a run that was never interrupted, and the messages say where and how to go on.
@Suite("Faults: signals, kill -9 during a checkpoint write, non-finite steps", .serialized)
struct FaultToolTests {
    /// A small run of 12 epochs × 25 steps (800 training rows, batch 32), a checkpoint after every epoch.
    static func run(_ out: String, epochs: Int = 12, extra: [String] = []) -> [String] {
        ["train", "--samples", "1000", "--epochs", String(epochs), "--hidden", "32", "--hidden-layers", "2", "--couplings", "4",
         "--batch-size", "32", "--lr", "1e-3", "--out", out, "--no-plots", "--checkpoint-every", "1", "--threads", "2"] + extra
    }

    /// Step 40 of `run` (25 steps per epoch): epoch 2, batch 16. A test holds the run there
    /// (`FLOW_TEST_FAULT=hold@0:40`) until its signal arrives, so the run cannot end before the signal.
    static let holdStep = 40

    /// Starts the tool holding at `holdStep` until `signals` stop signals have arrived.
    static func held(_ arguments: [String], log: String, signals: Int = 1) throws -> SignalDriver {
        try SignalDriver(Tool.binary, arguments, environment: ["FLOW_TEST_FAULT": "hold@0:\(holdStep):\(signals)"], log: log)
    }

    @Test("SIGINT, SIGTERM, SIGUSR1 and SIGUSR2 stop after the step in progress with a checkpoint and 128 + signal; the resumed run has the same bytes",
          arguments: [SIGINT, SIGTERM, SIGUSR1, SIGUSR2])
    func signalThenResume(signal: Int32) throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let full = try Tool.flow(Self.run("\(dir)/full", epochs: 3))
        #expect(full.status == 0, "\(full.output)")
        let p = try Self.held(Self.run("\(dir)/cut", epochs: 3), log: "\(dir)/cut.log")
        try #require(p.waitFor("holds at step \(Self.holdStep)"), "\(p.output)")
        p.send(signal)
        let status = p.wait()
        let name = [SIGINT: "SIGINT", SIGTERM: "SIGTERM", SIGUSR1: "SIGUSR1", SIGUSR2: "SIGUSR2"][signal]!
        #expect(status == 128 + signal, "\(p.output)")
        // The signal arrived during step 40: that step is the last one taken.
        #expect(p.output.contains("stopped by \(name) after step 41 (epoch 2: 16 of 25 batches done); checkpoint written to \(dir)/cut/model.safetensors; "),
                "\(p.output)")
        #expect(p.output.contains("resume with: flow-mpirun train --resume \(dir)/cut --threads 2\n"), "\(p.output)")
        let stopped = try Checkpoint.load(path: "\(dir)/cut/model.safetensors")
        #expect(stopped.state?.step == 41)
        let resumed = try Tool.flow(["train", "--resume", "\(dir)/cut", "--no-plots", "--quiet"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(Tool.bytes("\(dir)/cut/model.safetensors") == Tool.bytes("\(dir)/full/model.safetensors"))
        // metrics.csv: every epoch's training NLL (also the interrupted one's, over all its steps), validation NLL
        // and penalty as in the uninterrupted run; only the timings differ.
        func losses(_ run: String) throws -> [String] {
            try String(contentsOfFile: "\(dir)/\(run)/metrics.csv", encoding: .utf8).split(separator: "\n")
                .map { $0.split(separator: ",").prefix(4).joined(separator: ",") }
        }
        #expect(try losses("cut") == losses("full"))
    }

    @Test("a stop that comes with an epoch's last step: the epoch is validated and recorded; resuming gives the undisturbed bytes and metrics")
    func stopAtEpochEnd() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try Tool.flow(Self.run("\(dir)/full", epochs: 3)).status == 0)
        // Step 24 is epoch 1's last (25 steps per epoch).
        let p = try SignalDriver(Tool.binary, Self.run("\(dir)/cut", epochs: 3), environment: ["FLOW_TEST_FAULT": "hold@0:24"], log: "\(dir)/cut.log")
        try #require(p.waitFor("holds at step 24"), "\(p.output)")
        p.send(SIGTERM)
        #expect(p.wait() == 128 + SIGTERM, "\(p.output)")
        #expect(p.output.contains("stopped by SIGTERM after step 25 (the end of epoch 1); checkpoint written"), "\(p.output)")
        let metrics = try String(contentsOfFile: "\(dir)/cut/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == 2 && metrics[1].hasPrefix("1,"), "epoch 1 is recorded: \(metrics)")
        #expect(try Tool.flow(["train", "--resume", "\(dir)/cut", "--no-plots", "--quiet"]).status == 0)
        #expect(Tool.bytes("\(dir)/cut/model.safetensors") == Tool.bytes("\(dir)/full/model.safetensors"))
        #expect(Tool.bytes("\(dir)/cut/best.safetensors") == Tool.bytes("\(dir)/full/best.safetensors"))
        func losses(_ run: String) throws -> [String] {
            try String(contentsOfFile: "\(dir)/\(run)/metrics.csv", encoding: .utf8).split(separator: "\n")
                .map { $0.split(separator: ",").prefix(4).joined(separator: ",") }
        }
        #expect(try losses("cut") == losses("full"))
    }

    @Test("a stop that comes with the run's very last step is no stop: the run ends as usual, with status 0")
    func stopAtLastStep() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try Tool.flow(Self.run("\(dir)/full", epochs: 3)).status == 0)
        let p = try SignalDriver(Tool.binary, Self.run("\(dir)/cut", epochs: 3), environment: ["FLOW_TEST_FAULT": "hold@0:74"], log: "\(dir)/cut.log")
        try #require(p.waitFor("holds at step 74"), "\(p.output)")
        p.send(SIGTERM)
        #expect(p.wait() == 0, "\(p.output)")
        #expect(p.output.contains("done: 3 epochs, 75 steps"), "\(p.output)")
        #expect(Tool.bytes("\(dir)/cut/model.safetensors") == Tool.bytes("\(dir)/full/model.safetensors"))
        #expect(Tool.bytes("\(dir)/cut/best.safetensors") == Tool.bytes("\(dir)/full/best.safetensors"))
    }

    @Test("a stop between checkpoints (--checkpoint-every 10) writes the best model too; resuming gives the undisturbed best.safetensors")
    func stopKeepsBest() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func args(_ out: String) -> [String] {
            var a = Self.run(out, epochs: 4)
            let c = a.firstIndex(of: "--checkpoint-every")!
            a[c + 1] = "10"
            return a
        }
        #expect(try Tool.flow(args("\(dir)/full")).status == 0)
        // Step 90: epoch 4, after three validated epochs and no checkpoint (the first is due at epoch 10 or the end).
        let p = try SignalDriver(Tool.binary, args("\(dir)/cut"), environment: ["FLOW_TEST_FAULT": "hold@0:90"], log: "\(dir)/cut.log")
        try #require(p.waitFor("holds at step 90"), "\(p.output)")
        p.send(SIGTERM)
        #expect(p.wait() == 128 + SIGTERM, "\(p.output)")
        // The best model of epochs 1–3 is on disk, as the checkpoint records it (not only in memory).
        let recorded = try #require(try Checkpoint.load(path: "\(dir)/cut/model.safetensors").state?.bestEpoch)
        #expect(try Checkpoint.load(path: "\(dir)/cut/best.safetensors").metadata["best_epoch"] == String(recorded))
        #expect(try Tool.flow(["train", "--resume", "\(dir)/cut", "--no-plots", "--quiet"]).status == 0)
        #expect(Tool.bytes("\(dir)/cut/model.safetensors") == Tool.bytes("\(dir)/full/model.safetensors"))
        #expect(Tool.bytes("\(dir)/cut/best.safetensors") == Tool.bytes("\(dir)/full/best.safetensors"))
    }

    @Test("a second SIGINT exits at once with 130, and the last checkpoint stays intact")
    func secondSignal() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The run holds at step 40 until two signals have arrived: the second one reaches a run that is
        // still inside the step the first one is waiting for, on any machine.
        let p = try Self.held(Self.run("\(dir)/run", epochs: 3), log: "\(dir)/run.log", signals: 2)
        try #require(p.waitFor("holds at step \(Self.holdStep)"), "\(p.output)")
        let before = try #require(Tool.bytes("\(dir)/run/model.safetensors"))
        p.send(SIGINT)
        try #require(p.waitFor("received stop signal 1 (SIGINT)"), "\(p.output)")
        p.send(SIGINT)
        #expect(p.wait() == 130, "\(p.output)")
        #expect(p.output.contains("second SIGINT: exiting now"), "\(p.output)")
        #expect(!p.output.contains("stopped by SIGINT"), "\(p.output)")
        // The checkpoint of the last finished epoch (epoch 1, 25 steps) is intact and loads.
        #expect(Tool.bytes("\(dir)/run/model.safetensors") == before)
        let kept = try Checkpoint.load(path: "\(dir)/run/model.safetensors")
        #expect(kept.state?.step == 25)
    }

    @Test("a repeated SIGTERM (a scheduler and mpirun may both send one) does not cut the graceful stop short")
    func repeatedTermination() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try Self.held(Self.run("\(dir)/run", epochs: 3), log: "\(dir)/run.log", signals: 2)
        try #require(p.waitFor("holds at step \(Self.holdStep)"), "\(p.output)")
        p.send(SIGTERM)
        try #require(p.waitFor("received stop signal 1 (SIGTERM)"), "\(p.output)")
        p.send(SIGTERM)
        #expect(p.wait() == 128 + SIGTERM, "\(p.output)")
        #expect(p.output.contains("received stop signal 2 (SIGTERM)"), "\(p.output)")
        #expect(p.output.contains("stopped by SIGTERM after step 41 (epoch 2: 16 of 25 batches done)"), "\(p.output)")
        #expect(try Checkpoint.load(path: "\(dir)/run/model.safetensors").state?.step == 41)
    }

    @Test("kill -9 while a checkpoint is being written leaves the previous one intact; resuming gives the same bytes")
    func crashDuringCheckpointWrite() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try Tool.flow(Self.run("\(dir)/full", epochs: 5)).status == 0)
        // First a run of 2 epochs, so that a good checkpoint exists; then continue it with the crash hook set:
        // the first checkpoint write of the continued run dies half-way.
        #expect(try Tool.flow(Self.run("\(dir)/cut", epochs: 2)).status == 0)
        let before = try #require(Tool.bytes("\(dir)/cut/model.safetensors"))
        let crashed = try Tool.flow(["train", "--resume", "\(dir)/cut", "--epochs", "5", "--no-plots"],
                                    environment: ["FLOW_TEST_CRASH_DURING_WRITE": "model.safetensors"])
        #expect(crashed.status == 128 + SIGKILL || crashed.status == SIGKILL, "exit \(crashed.status): \(crashed.output)")
        #expect(Tool.bytes("\(dir)/cut/model.safetensors") == before, "the previous checkpoint changed")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/cut").filter { $0.contains(".tmp-") }
        #expect(!leftovers.isEmpty, "the hook should have left a partial temporary file")
        _ = try Checkpoint.load(path: "\(dir)/cut/model.safetensors")
        let resumed = try Tool.flow(["train", "--resume", "\(dir)/cut", "--epochs", "5", "--no-plots", "--quiet"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(Tool.bytes("\(dir)/cut/model.safetensors") == Tool.bytes("\(dir)/full/model.safetensors"))
        let after = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/cut").filter { $0.contains(".tmp-") }
        #expect(after.isEmpty, "stale temporary files are removed on resume: \(after)")
    }

    @Test("non-finite steps are skipped, three in a row stop training naming the step and the tensor; the last good checkpoint stays")
    func nonFinite() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 1000 rows → 800 training rows, 25 steps per epoch: step 30 is in epoch 2, after epoch 1's checkpoint.
        let r = try Tool.flow(Self.run("\(dir)/nan", epochs: 3), environment: ["FLOW_TEST_FAULT": "nan@30"])
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stderr.contains("step 30 (epoch 2, batch 6) skipped: the gradient of couplings.0.s.0.weight (transform couplings.0) is not finite"), "\(r.stderr)")
        #expect(r.stderr.contains("error: step 32 (epoch 2, batch 8): the gradient of couplings.0.s.0.weight (transform couplings.0) is not finite"), "\(r.stderr)")
        #expect(r.stderr.contains("3 consecutive non-finite step(s); policy --on-nonfinite skip"))
        let checkpoint = try Checkpoint.load(path: "\(dir)/nan/model.safetensors")
        #expect(checkpoint.state?.step == 25)
        #expect(checkpoint.model.parameters.allSatisfy { $0.isFinite })
        // --on-nonfinite stop: the first one stops.
        let s = try Tool.flow(Self.run("\(dir)/stop", epochs: 3, extra: ["--on-nonfinite", "stop"]), environment: ["FLOW_TEST_FAULT": "nan@30"])
        #expect(s.status == 1)
        #expect(s.stderr.contains("error: step 30 (epoch 2, batch 6): the gradient of couplings.0.s.0.weight (transform couplings.0) is not finite"), "\(s.stderr)")
    }

    @Test("a run that stops before its first checkpoint says nothing was written, and --resume of it says there is no checkpoint yet")
    func stopBeforeFirstCheckpoint() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try Tool.flow(Self.run("\(dir)/run", epochs: 3, extra: ["--on-nonfinite", "stop"]), environment: ["FLOW_TEST_FAULT": "nan@2"])
        #expect(s.status == 1, "\(s.output)")
        #expect(s.stderr.contains("Parameters were not updated, and nothing is written from this state"), "\(s.stderr)")
        #expect(!Tool.exists("\(dir)/run/model.safetensors"))
        let r = try Tool.flow(["train", "--resume", "\(dir)/run", "--no-plots", "--threads", "1"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("holds no checkpoint yet (no model.safetensors)"), "\(r.stderr)")
        #expect(!r.stderr.contains("cannot open file"), "\(r.stderr)")
    }

    @Test("an output directory that cannot be created is refused before training")
    func unwritableOutput() throws {
        let r = try Tool.flow(Self.run("/dev/null/run"))
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: /dev/null/run: cannot create the output directory"), "\(r.stderr)")
    }
}
