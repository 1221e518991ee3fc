import FlowCore
import Foundation
import Testing

/// Signals, a crash while a checkpoint is written, and non-finite steps: nothing is lost, resuming gives
/// the same bytes as a run that was never interrupted, and the messages say where and how to go on.
@Suite("Faults: signals, kill -9 during a checkpoint write, non-finite steps", .serialized)
struct FaultToolTests {
    /// Long enough to be interrupted mid-run (debug build), short enough to finish in seconds.
    static func run(_ out: String, epochs: Int = 12, extra: [String] = []) -> [String] {
        ["train", "--samples", "1000", "--epochs", String(epochs), "--hidden", "32", "--hidden-layers", "2", "--couplings", "4",
         "--batch-size", "32", "--lr", "1e-3", "--out", out, "--no-plots", "--checkpoint-every", "1", "--threads", "2"] + extra
    }

    /// Starts the tool, waits until `ready` holds (or the process ends), then sends `signal`.
    /// With `again`, sends the signal a second time that many seconds after the first.
    static func interrupt(_ arguments: [String], signal: Int32, when ready: @escaping () -> Bool,
                          environment: [String: String] = [:], again: Double? = nil) throws -> Tool.Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Tool.binary)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let data = LockedData()
        out.fileHandleForReading.readabilityHandler = { data.append($0.availableData) }
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && !ready() && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, signal) }
        if let again {
            usleep(useconds_t(again * 1e6))
            if p.isRunning { kill(p.processIdentifier, signal) }
        }
        p.waitUntilExit()
        out.fileHandleForReading.readabilityHandler = nil
        data.append(out.fileHandleForReading.readDataToEndOfFile())
        return Tool.Result(status: p.terminationStatus, stdout: data.string, stderr: "", seconds: 0)
    }

    static func epochsDone(_ dir: String) -> Int {
        ((try? String(contentsOfFile: "\(dir)/metrics.csv", encoding: .utf8))?.split(separator: "\n").count ?? 1) - 1
    }

    @Test("SIGINT and SIGTERM stop after a step with a checkpoint and 128 + signal; the resumed run has the same bytes",
          arguments: [SIGINT, SIGTERM])
    func signalThenResume(signal: Int32) throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let full = try Tool.flow(Self.run("\(dir)/full"))
        #expect(full.status == 0, "\(full.output)")
        let r = try Self.interrupt(Self.run("\(dir)/cut"), signal: signal, when: { Self.epochsDone("\(dir)/cut") >= 2 })
        #expect(r.status == 128 + signal, "\(r.output)")
        #expect(r.stdout.contains("stopped by \(signal == SIGINT ? "SIGINT" : "SIGTERM") after step"), "\(r.stdout)")
        #expect(r.stdout.contains("resume with: flow-mpirun train --resume \(dir)/cut"))
        let stopped = try Checkpoint.load(path: "\(dir)/cut/model.safetensors")
        #expect((stopped.state?.step ?? 0) > 0)
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

    @Test("a second SIGINT exits at once with 130, and the last checkpoint stays intact")
    func secondSignal() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Steps of a fraction of a second or more (512-wide layers, 500 rows): the second signal arrives 0.02 s after the first,
        // inside the step the first one is waiting for.
        let args = ["train", "--samples", "1000", "--epochs", "50", "--hidden", "512", "--hidden-layers", "4", "--couplings", "4",
                    "--batch-size", "500", "--out", "\(dir)/run", "--no-plots", "--checkpoint-every", "1", "--threads", "1"]
        let r = try Self.interrupt(args, signal: SIGINT, when: { Tool.exists("\(dir)/run/model.safetensors") }, again: 0.02)
        #expect(r.status == 130, "\(r.output)")
        #expect(r.stdout.contains("second stop signal: exiting now"), "\(r.stdout)")
        #expect(!r.stdout.contains("stopped by SIGINT"), "\(r.stdout)")
        // The checkpoint of the last finished epoch is intact and loads.
        let kept = try Checkpoint.load(path: "\(dir)/run/model.safetensors")
        #expect((kept.state?.step ?? 0) >= 2)  // at least epoch 1's two steps
        #expect(kept.model.configuration.hidden == 512)
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
        #expect(r.stderr.contains("step 30 (epoch 2, batch 6) skipped: the gradient of couplings.0.s.0.weight (coupling 0) is not finite"), "\(r.stderr)")
        #expect(r.stderr.contains("error: step 32 (epoch 2, batch 8): the gradient of couplings.0.s.0.weight (coupling 0) is not finite"), "\(r.stderr)")
        #expect(r.stderr.contains("3 consecutive non-finite step(s); policy --on-nonfinite skip"))
        let checkpoint = try Checkpoint.load(path: "\(dir)/nan/model.safetensors")
        #expect(checkpoint.state?.step == 25)
        #expect(checkpoint.model.parameters.allSatisfy { $0.isFinite })
        // --on-nonfinite stop: the first one stops.
        let s = try Tool.flow(Self.run("\(dir)/stop", epochs: 3, extra: ["--on-nonfinite", "stop"]), environment: ["FLOW_TEST_FAULT": "nan@30"])
        #expect(s.status == 1)
        #expect(s.stderr.contains("error: step 30 (epoch 2, batch 6): the gradient of couplings.0.s.0.weight (coupling 0) is not finite"), "\(s.stderr)")
    }

    @Test("an output directory that cannot be created is refused before training")
    func unwritableOutput() throws {
        let r = try Tool.flow(Self.run("/dev/null/run"))
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: /dev/null/run: cannot create the output directory"), "\(r.stderr)")
    }
}
