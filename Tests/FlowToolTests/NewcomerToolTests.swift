import Foundation
import Testing

/// What a new user runs into first: `--model DIR` on a directory that is not a run, and a negative value
/// written as `--lr -1`. Each message is checked exactly, with its exit status.
@Suite("Newcomer errors: --model DIR without a checkpoint, negative values", .serialized)
struct NewcomerToolTests {
    static func noCheckpoint(_ dir: String) -> String {
        "error: \(dir): holds no best.safetensors or model.safetensors, so it is not a run directory: train into it first "
            + "(flow-mpirun train --out \(dir)) or give a checkpoint file"
    }

    @Test("--model DIR on a directory without a checkpoint names the directory, for every command that takes --model")
    func modelDirectoryWithoutCheckpoint() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let empty = "\(dir)/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try "0.1,0.2\n".write(toFile: "\(dir)/x.csv", atomically: true, encoding: .utf8)
        let commands: [[String]] = [
            ["sample", "--model", empty, "-n", "10", "--out", "\(dir)/s.csv"],
            ["evaluate", "--model", empty, "--dataset", "moons"],
            ["encode", "--model", empty, "--data", "\(dir)/x.csv", "--out", "\(dir)/z.csv"],
            ["decode", "--model", empty, "--data", "\(dir)/x.csv", "--out", "\(dir)/y.csv"],
            ["inspect", "--model", empty],
        ]
        for arguments in commands {
            let r = try Tool.flow(arguments)
            #expect(r.status == 1, "\(arguments[0]): exit \(r.status)\n\(r.output)")
            #expect(r.stderr.split(separator: "\n").map(String.init) == [Self.noCheckpoint(empty)], "\(arguments[0]): \(r.stderr)")
            #expect(!r.output.contains("cannot open file"), "\(arguments[0]): \(r.output)")
        }
        for name in ["s.csv", "z.csv", "y.csv"] { #expect(!Tool.exists("\(dir)/\(name)")) }
        // A directory that does not exist is still a missing file, as before.
        let missing = try Tool.flow(["inspect", "--model", "\(dir)/none"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "error: \(dir)/none: cannot open file: No such file or directory\n", "\(missing.stderr)")
    }

    @Test("without a validation split the summary gives the last epoch's training NLL, in bits/dim too for discrete data, and points to evaluate")
    func summaryWithoutValidation() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Tool.flow(["train", "--dataset", "digits", "--epochs", "1", "--validation-fraction", "0", "--hidden", "16",
                               "--hidden-layers", "2", "--couplings", "2", "--no-plots", "--out", "\(dir)/run"])
        #expect(r.status == 0, "\(r.output)")
        let metrics = try String(contentsOfFile: "\(dir)/run/metrics.csv", encoding: .utf8)
        let last = try #require(metrics.split(separator: "\n").last?.split(separator: ",", omittingEmptySubsequences: false))
        let train = try #require(Double(last[1]))
        #expect(last[2].isEmpty, "\(metrics)")
        let expected = String(format: "  no validation split: the last epoch's training NLL %.4f nats (data units, dequantised) = %.4f bits/dim "
                              + "(17 levels: uniform = 4.0875 bits/dim); score the model with flow-mpirun evaluate", train, train / (64 * log(2.0)))
        #expect(r.stdout.split(separator: "\n").contains { $0 == expected }, "expected\n\(expected)\ngot\n\(r.stdout)")
        #expect(r.stdout.contains("done: 1 epoch, "), "\(r.stdout)")
    }

    @Test("--model DIR reads best.safetensors, else model.safetensors; model.safetensors first after --no-keep-best")
    func modelDirectoryResolution() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = "\(dir)/run"
        let t = try Tool.flow(Tool.smallTraining(out: run, epochs: 2))
        #expect(t.status == 0, "\(t.output)")
        let withBest = try Tool.flow(["inspect", "--model", run])
        #expect(withBest.status == 0, "\(withBest.output)")
        #expect(withBest.stdout.hasPrefix("checkpoint: \(run)/best.safetensors\n"), "\(withBest.stdout)")
        // Resumed with --no-keep-best (config.json records it): the earlier best.safetensors stays on disk, but the
        // directory stands for the last model.
        #expect(try Tool.flow(["train", "--resume", run, "--epochs", "3", "--no-keep-best", "--quiet"]).status == 0)
        #expect(Tool.exists("\(run)/best.safetensors"))
        let notKept = try Tool.flow(["inspect", "--model", run])
        #expect(notKept.stdout.hasPrefix("checkpoint: \(run)/model.safetensors\n"), "\(notKept.stdout)")
        #expect(try Tool.flow(["train", "--resume", run, "--epochs", "4", "--keep-best", "--quiet"]).status == 0)
        #expect(try Tool.flow(["inspect", "--model", run]).stdout.hasPrefix("checkpoint: \(run)/best.safetensors\n"))
        try FileManager.default.removeItem(atPath: "\(run)/best.safetensors")
        let withoutBest = try Tool.flow(["inspect", "--model", run])
        #expect(withoutBest.status == 0, "\(withoutBest.output)")
        #expect(withoutBest.stdout.hasPrefix("checkpoint: \(run)/model.safetensors\n"), "\(withoutBest.stdout)")
        try FileManager.default.removeItem(atPath: "\(run)/model.safetensors")
        let neither = try Tool.flow(["inspect", "--model", run])
        #expect(neither.status == 1)
        #expect(neither.stderr == Self.noCheckpoint(run) + "\n", "\(neither.stderr)")
    }

    @Test("a negative value after its flag gets the parser's error, a hint to attach it, and exit status 64")
    func negativeValueHint() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lr = try Tool.flow(["train", "--lr", "-1", "--out", "\(dir)/run"])
        #expect(lr.status == 64, "exit \(lr.status)\n\(lr.output)")
        let lines = lr.stderr.split(separator: "\n").map(String.init)
        #expect(lines.first == "Error: Missing value for '--lr <lr>'", "\(lr.stderr)")
        #expect(lines.last == "hint: a negative value must be attached: --lr=-1", "\(lr.stderr)")
        #expect(lr.stdout.isEmpty)
        #expect(!Tool.exists("\(dir)/run"))

        let noise = try Tool.flow(["train", "--noise", "-0.5e-3", "--out", "\(dir)/run"])
        #expect(noise.status == 64)
        #expect(noise.stderr.hasSuffix("\nhint: a negative value must be attached: --noise=-0.5e-3\n"), "\(noise.stderr)")

        let n = try Tool.flow(["sample", "--model", "\(dir)/m.safetensors", "-n", "-5", "--out", "\(dir)/s.csv"])
        #expect(n.status == 64)
        #expect(n.stderr.hasPrefix("Error: Missing value for '-n <n>'\n"), "\(n.stderr)")
        #expect(n.stderr.hasSuffix("\nhint: a negative value must be attached: -n=-5\n"), "\(n.stderr)")
        // The attached form the hint suggests reaches the tool's own check.
        let attached = try Tool.flow(["train", "--lr=-1", "--out", "\(dir)/run"])
        #expect(attached.status == 1)
        #expect(attached.stderr == "error: invalid --lr -1.0: the learning rate must be a positive number\n", "\(attached.stderr)")
    }

    @Test("no hint where no negative number follows the flag")
    func noHintOtherwise() throws {
        for arguments in [["train", "--lr"], ["train", "--lr", "--epochs", "3"], ["train", "--foo"], ["train", "--lr", "x"]] {
            let r = try Tool.flow(arguments)
            #expect(r.status == 64, "\(arguments): exit \(r.status)\n\(r.output)")
            #expect(!r.stderr.contains("hint:"), "\(arguments): \(r.stderr)")
        }
    }
}
