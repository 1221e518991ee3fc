import FlowCore
import Foundation
import Testing

/// A run directory belongs to one run: its checkpoint must be the run's own, its data must not have changed,
/// and two processes never train into it at once.
@Suite("Run directory integrity: foreign checkpoints, changed data, concurrent runs", .serialized)
struct RunIntegrityToolTests {
    @Test("resume refuses a checkpoint copied from another run (another seed, another data set), naming the difference")
    func foreignCheckpoint() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, extra) in [("a", []), ("seed", ["--seed", "3"]), ("circles", ["--dataset", "circles"])] {
            #expect(try Tool.flow(Tool.smallTraining(out: "\(dir)/\(name)", epochs: 1, extra: extra)).status == 0)
        }
        let own = try #require(Tool.bytes("\(dir)/a/model.safetensors"))
        for (name, message) in [
            ("seed", "error: \(dir)/a/model.safetensors: was written by another run than \(dir)/a/config.json describes (config.json vs the checkpoint: --seed 0 vs 3); copy a run directory whole, or start a new run"),
            ("circles", "error: \(dir)/a/model.safetensors: was trained on circles (300 points, noise 0.08, seed 0), but \(dir)/a/config.json says moons (300 points, noise 0.05, seed 0); copy a run directory whole, or start a new run"),
        ] {
            try Data(try #require(Tool.bytes("\(dir)/\(name)/model.safetensors"))).write(to: URL(fileURLWithPath: "\(dir)/a/model.safetensors"))
            let r = try Tool.flow(["train", "--resume", "\(dir)/a", "--epochs", "2", "--no-plots"])
            #expect(r.status == 1, "\(r.output)")
            #expect(r.stderr.split(separator: "\n").contains { $0 == message }, "\(r.stderr)")
        }
        // Its own checkpoint resumes.
        try Data(own).write(to: URL(fileURLWithPath: "\(dir)/a/model.safetensors"))
        #expect(try Tool.flow(["train", "--resume", "\(dir)/a", "--epochs", "2", "--no-plots", "--quiet"]).status == 0)
    }

    @Test("a --data file is recorded with its absolute path (resume from anywhere) and must not change before a resume")
    func dataFile() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = (0..<200).map { i in "\(Double(i % 17) / 7 - 1),\(Double(i % 13) / 5 - 1.2)" }
        try ("x,y\n" + rows.joined(separator: "\n") + "\n").write(toFile: "\(dir)/d.csv", atomically: true, encoding: .utf8)
        // Started with a relative path from the data's directory …
        let args = ["train", "--data", "d.csv", "--epochs", "1", "--hidden", "16", "--hidden-layers", "2", "--couplings", "4",
                    "--batch-size", "64", "--out", "run", "--no-plots", "--quiet"]
        let first = try Tool.run(Tool.binary, args, currentDirectory: dir)
        #expect(first.status == 0, "\(first.output)")
        let config = try String(contentsOfFile: "\(dir)/run/config.json", encoding: .utf8)
        #expect(config.contains("\"file\" : \"\(dir)/d.csv\""), "\(config)")
        // … resumed from elsewhere.
        let again = try Tool.flow(["train", "--resume", "\(dir)/run", "--epochs", "2", "--no-plots", "--quiet"])
        #expect(again.status == 0, "\(again.output)")
        // --samples alone on a run trained on a file: refused (it used to evaluate on moons).
        let samples = try Tool.flow(["evaluate", "--model", "\(dir)/run", "--samples", "50"])
        #expect(samples.status == 1, "\(samples.output)")
        #expect(samples.stderr.contains("error: --samples shapes the points of a synthetic data set, but this run was trained on \(dir)/d.csv: give --dataset NAME, or --data FILE"),
                "\(samples.stderr)")
        // One value changed: refused, naming the file.
        try ("x,y\n9.5,9.5\n" + rows.dropFirst().joined(separator: "\n") + "\n").write(toFile: "\(dir)/d.csv", atomically: true, encoding: .utf8)
        let changed = try Tool.flow(["train", "--resume", "\(dir)/run", "--epochs", "3", "--no-plots"])
        #expect(changed.status == 1, "\(changed.output)")
        #expect(changed.stderr.contains("error: \(dir)/d.csv: differs from the data the run was trained on (fingerprint "), "\(changed.stderr)")
        #expect(changed.stderr.contains("resume needs the same data"))
    }

    @Test("a run that diverges stops with an error at the first non-finite validation NLL and writes no checkpoint")
    func divergence() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // One step per epoch whose update overflows the parameters; its loss was still finite, so the step is
        // applied, and the validation after it is not.
        let r = try Tool.flow(["train", "--samples", "300", "--epochs", "2", "--hidden", "16", "--hidden-layers", "1", "--couplings", "2",
                               "--lr", "1e38", "--out", "\(dir)/lr", "--no-plots", "--quiet"])
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stderr.contains("error: epoch 1: the validation NLL is nan: training diverged; no checkpoint was written. Try a lower --lr or --clip-norm."),
                "\(r.stderr)")
        #expect(!Tool.exists("\(dir)/lr/model.safetensors") && !Tool.exists("\(dir)/lr/best.safetensors"))
    }

    @Test("--force removes the previous run's outputs first: no stale best.safetensors is read by --model DIR")
    func forceRemovesStaleOutputs() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try Tool.flow(Tool.smallTraining(out: "\(dir)/fk", epochs: 1)).status == 0)
        #expect(Tool.exists("\(dir)/fk/best.safetensors"))
        let again = try Tool.flow(Tool.smallTraining(out: "\(dir)/fk", epochs: 1, extra: ["--force", "--seed", "9", "--no-keep-best"]))
        #expect(again.status == 0, "\(again.output)")
        #expect(!Tool.exists("\(dir)/fk/best.safetensors"))
        #expect(try Checkpoint.load(path: "\(dir)/fk/model.safetensors").training?.seed == 9)
    }

    @Test("a second train into a directory in use is refused; the first run completes with its own model")
    func concurrentRuns() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The first run holds at step 40 (after epoch 1's checkpoint) until its SIGINT: it is still running
        // while the second train and the resume try the directory, however fast the machine.
        let first = try FaultToolTests.held(FaultToolTests.run("\(dir)/cc"), log: "\(dir)/cc.log")
        try #require(first.waitFor("holds at step \(FaultToolTests.holdStep)"), "\(first.output)")
        let second = try? Tool.flow(Tool.smallTraining(out: "\(dir)/cc", epochs: 1, extra: ["--force"]))
        // A resume of the running directory is refused before it reads the checkpoint.
        let resume = try? Tool.flow(["train", "--resume", "\(dir)/cc", "--epochs", "300", "--no-plots"])
        first.send(SIGINT)
        #expect(first.wait() == 130, "\(first.output)")
        let r2 = try #require(resume)
        #expect(r2.status == 1 && r2.stderr.contains("error: \(dir)/cc: is in use by another flow-mpirun train"), "\(r2.output)")
        let r = try #require(second)
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stderr.contains("error: \(dir)/cc: is in use by another flow-mpirun train (it holds the directory's lock); wait for it to end or choose another --out"),
                "\(r.stderr)")
        // The directory holds the first run's checkpoint (hidden 32), not the second's (hidden 16).
        let c = try Checkpoint.load(path: "\(dir)/cc/model.safetensors")
        #expect(c.model.configuration.hidden == 32)
    }
}
