import FlowCore
import Foundation
import Testing
@testable import FlowDistributed

/// The run set-up of the library (``TrainingRun/resolve(_:communicator:)``), without the command line.
@Suite("Run set-up")
struct TrainingRunTests {
    /// A fresh directory under the temporary directory.
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "flow-run-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A small training configuration: `couplings` couplings of `hidden` × `layers`, one epoch.
    static func training(hidden: Int, layers: Int, couplings: Int) -> TrainingConfiguration {
        var t = TrainingConfiguration()
        t.epochs = 1
        t.model.hidden = hidden
        t.model.hiddenLayers = layers
        t.model.couplings = couplings
        return t
    }

    static func request(out: String, config: RunDirectory.RunConfig, resume: String? = nil) -> RunRequest {
        RunRequest(resume: resume, out: out, force: false, threads: 1, epochs: nil, newRun: { config }, requested: { _ in config },
                   options: TrainerOptions())
    }

    /// 10 rows with a validation fraction of 0.25: the split holds out ⌊2.5⌉ = 3 rows, so 7 train; with batch 1 that
    /// is 7 steps per epoch, and the cosine schedule must be planned over exactly epochs × 7 steps (⌈10·0.75⌉ = 8
    /// would mis-size it).
    @Test("the cosine schedule's length, the trainer's steps per epoch and the split agree when rows·f ends in .5")
    func stepsPerEpochOneFormula() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let csv = dir + "/ten.csv"
        let rows = (0..<10).map { i in "\(Double(i) * 0.5),\(Double(i * i) * 0.1 - 1)" }
        try ("x0,x1\n" + rows.joined(separator: "\n") + "\n").write(toFile: csv, atomically: true, encoding: .utf8)
        var training = TrainingConfiguration()
        training.epochs = 3
        training.batchSize = 1
        training.validationFraction = 0.25
        training.model.hidden = 4
        training.model.hiddenLayers = 1
        training.model.couplings = 2
        training.schedule = .cosine(warmupSteps: 0, totalSteps: 0, minimum: 0)
        let config = RunDirectory.RunConfig(training: training, data: DataSpec(dataset: nil, file: csv))
        let run = try TrainingRun.resolve(Self.request(out: dir + "/run", config: config), communicator: SingleProcessCommunicator())
        #expect(run.trainer.trainRows == 7)
        #expect(run.trainer.validationRows == 3)
        #expect(run.trainer.batchesPerEpoch == 7)
        #expect(run.config.training.stepsPerEpoch(rows: 10) == 7)
        guard case .cosine(_, let total, _) = run.config.training.schedule else { Issue.record("not cosine"); return }
        #expect(total == 3 * 7)
        #expect(run.trainer.totalSteps == total)
        #expect(!run.resumed)
        #expect(run.lock != nil)
    }

    @Test("a second resolve of the same directory is refused while the first holds its lock; a finished run is not overwritten without force")
    func lockAndForce() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let training = Self.training(hidden: 4, layers: 1, couplings: 2)
        let config = RunDirectory.RunConfig(training: training, data: DataSpec(dataset: "moons", samples: 40))
        let out = dir + "/run"
        var first: TrainingRun? = try TrainingRun.resolve(Self.request(out: out, config: config), communicator: SingleProcessCommunicator())
        #expect(throws: FlowIOError.self) { try TrainingRun.resolve(Self.request(out: out, config: config), communicator: SingleProcessCommunicator()) }
        first = nil  // releases the lock
        _ = first
        // A directory that holds a model: refused without --force, naming the directory.
        try Data("x".utf8).write(to: URL(fileURLWithPath: out + "/model.safetensors"))
        do {
            _ = try TrainingRun.resolve(Self.request(out: out, config: config), communicator: SingleProcessCommunicator())
            Issue.record("a run directory with a model was overwritten without --force")
        } catch let e as FlowIOError {
            #expect("\(e)".contains(out) && "\(e)".contains("--force"))
        }
        var forced = Self.request(out: out, config: config)
        forced.force = true
        let run = try TrainingRun.resolve(forced, communicator: SingleProcessCommunicator())
        #expect(!FileManager.default.fileExists(atPath: out + "/model.safetensors"), "--force removes the previous run's outputs")
        _ = run
    }

    @Test("configuration differences are named by their flags, the first configuration's value first")
    func differencesNameFlags() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var a = TrainingConfiguration()
        a.learningRate = 1e-4
        var b = a
        b.learningRate = 1e-3
        b.batchSize = 128
        #expect(a.differences(from: b) == ["--batch-size 256 vs 128", "--lr 0.0001 vs 0.001"])
        #expect(a.differences(from: a).isEmpty)
    }

    @Test("set-up failures: each distinct message once, with the ranks that gave it, in rank order; no prefix when every rank (or the only one) gave it; one rank's exchange returns its payload or throws its own error as it is")
    func setupFailureMessages() throws {
        #expect(SetupFailure(messages: ["", "a", "a", "b"]).lines == ["ranks 1,2: a", "rank 3: b"])
        #expect(SetupFailure(messages: ["b", "", "a"]).lines == ["rank 0: b", "rank 2: a"])
        #expect(SetupFailure(messages: ["a", "a"]).lines == ["a"])
        #expect(SetupFailure(messages: ["a"]).lines == ["a"])
        #expect(SetupFailure(messages: ["", "x: y", "x: y"]).description == "ranks 1,2: x: y")
        let one = SingleProcessCommunicator()
        #expect(try SetupAgreement.exchange(one, .success([7, 8])) == [[7, 8]])
        #expect(throws: RunSetupError.self) { try SetupAgreement.exchange(one, .failure(RunSetupError("mine"))) }
    }

    @Test("the free space asked of the run directory covers a checkpoint written beside the old one and the best model, as the checkpoints really are (with Adam's moments), within 2 MiB plus 4 bytes per parameter (the average, when kept)")
    func freeSpaceCoversACheckpointBesideTheOldOne() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let training = Self.training(hidden: 64, layers: 2, couplings: 4)
        let config = RunDirectory.RunConfig(training: training, data: DataSpec(dataset: "moons", samples: 64))
        let run = try TrainingRun.resolve(Self.request(out: dir + "/run", config: config), communicator: SingleProcessCommunicator())
        _ = try run.trainer.runEpoch { _ in }  // Adam's moments and the average in the state
        let trainer = run.trainer
        try trainer.synchronizeOptimizerState()
        let checkpoint = try Checkpoint(model: trainer.model, state: trainer.state(), training: trainer.configuration,
                                        metadata: ["data": "moons"]).checkedBytes(for: "model.safetensors")
        let best = try Checkpoint(model: trainer.model, training: trainer.configuration, metadata: ["data": "moons"])
            .checkedBytes(for: "best.safetensors")
        let asked = try TrainingRun.checkpointBytes(training)
        let peak = 2 * checkpoint.count + best.count  // old checkpoint, its replacement, the best model
        #expect(asked >= peak)
        #expect(asked <= peak + 8 * trainer.network.layout.storageCount + (2 << 20))
        #expect(checkpoint.count > 12 * trainer.network.layout.storageCount)  // with training state: parameters and Adam's two moments
    }

    @Test("run options in config.json: a config.json without them (written before they were recorded) reads as the defaults; each missing field takes its default")
    func runOptionsDecode() throws {
        let config = RunDirectory.RunConfig(training: TrainingConfiguration(), data: DataSpec(dataset: "moons", samples: 40))
        let old = try JSONEncoder().encode(config)
        #expect(!String(decoding: old, as: UTF8.self).contains("options"))
        #expect(try JSONDecoder().decode(RunDirectory.RunConfig.self, from: old).options == nil)
        let some = try JSONDecoder().decode(RunDirectory.RunOptions.self, from: Data(#"{"checkpoint_every": 5, "plots": false}"#.utf8))
        #expect(some.checkpointEvery == 5 && !some.plots && some.validateEvery == 1 && some.keepBest)
        #expect(some.with(checkpointEvery: nil, validateEvery: 2, keepBest: false, plots: nil)
            == RunDirectory.RunOptions().with(checkpointEvery: 5, validateEvery: 2, keepBest: false, plots: false))
    }

    @Test("the free space asked: less the blocks of the outputs a run replaces (plots only when it writes plots); config.json's options below 1 are refused, naming the file")
    func outputBytesAndBadOptions() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let training = Self.training(hidden: 64, layers: 2, couplings: 4)
        let run = RunDirectory(path: dir)
        let full = try TrainingRun.checkpointBytes(training)
        #expect(try TrainingRun.outputBytesNeeded(training, plotBytes: nil, in: run) == full)
        #expect(try TrainingRun.outputBytesNeeded(training, plotBytes: 3 << 20, in: run) == full + (3 << 20))
        let model = [UInt8](repeating: 1, count: 400_000), svg = [UInt8](repeating: 2, count: 300_000), other = [UInt8](repeating: 3, count: 200_000)
        try Data(model).write(to: URL(fileURLWithPath: run.model))
        try Data(svg).write(to: URL(fileURLWithPath: run.file("flow_panels.svg")))
        try Data(other).write(to: URL(fileURLWithPath: run.file("notes.txt")))  // not an output: never counted
        func blocks(_ path: String) -> Int { var st = stat(); lstat(path, &st); return Int(st.st_blocks) * 512 }
        #expect(blocks(run.model) >= 400_000 && blocks(run.file("flow_panels.svg")) >= 300_000)
        #expect(try TrainingRun.outputBytesNeeded(training, plotBytes: nil, in: run) == full - blocks(run.model))
        #expect(try TrainingRun.outputBytesNeeded(training, plotBytes: 3 << 20, in: run)
                == full + (3 << 20) - blocks(run.model) - blocks(run.file("flow_panels.svg")))

        let config = RunDirectory.RunConfig(training: training, data: DataSpec(dataset: "moons", samples: 40), options: RunDirectory.RunOptions())
        try run.writeConfig(config)
        #expect(try run.readConfig().options == RunDirectory.RunOptions())
        for (key, value) in [("checkpoint_every", 0), ("validate_every", -5)] {
            var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run.config))) as! [String: Any]
            var options = json["options"] as! [String: Any]
            options[key] = value
            json["options"] = options
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: run.config))
            let read = try run.readConfig().options!
            do {
                try read.check(file: run.config)
                Issue.record("options.\(key) \(value) accepted")
            } catch let e as FlowIOError {
                #expect(e.path == run.config)
                #expect("\(e)".contains("options.\(key) is \(value): need at least 1 (give --"), "\(e)")
            }
            // A flag given on resume replaces the stored value.
            try read.with(checkpointEvery: 2, validateEvery: 3, keepBest: nil, plots: nil).check(file: run.config)
            try run.writeConfig(config)
        }
    }
}
