import FlowCore
import Foundation
import Testing
@testable import FlowDistributed

@Suite("Parameter moving average (EMA)")
struct ParameterAverageTests {
    /// smallProblem with 7 steps per epoch (162 training rows, batch 24): updates at steps 7, 10, 14, 20, 21, …
    func problem(ema: Double?, epochs: Int = 3) throws -> (TrainingConfiguration, Normalizer<Float>, Matrix<Double>, Matrix<Double>) {
        var p = try smallProblem(batch: 24, epochs: epochs)
        p.0.emaMomentum = ema
        return p
    }

    @Test("θ̄ follows μʲ·θ̄ + (1 − μʲ)·θ every 10 steps and at each epoch's end, the first update copying θ (Float64 reference)")
    func matchesReference() throws {
        let mu = 0.9
        let t = try makeTrainer(try problem(ema: mu), threads: 2)
        #expect(t.batchesPerEpoch == 7)
        var reference: [Double]?
        var last = 0
        var updates: [Int] = []
        while !t.finished {
            _ = try t.trainStep()
            let s = t.step
            guard s % 10 == 0 || s % 7 == 0 else { continue }
            updates.append(s)
            let theta = t.parameters.array.map(Double.init)
            if let r = reference {
                let keep = Double(Float(Double.pow(mu, Double(s - last))))  // the trainer's weight, rounded to Float
                reference = zip(r, theta).map { keep * $0 + (1 - keep) * $1 }
            } else {
                reference = theta
            }
            last = s
            let average = try #require(t.average).average.array
            let worst = zip(average, reference!).map { abs(Double($0) - $1) }.max()!
            #expect(worst <= 1e-6, "step \(s): max |θ̄ − reference| = \(worst)")
        }
        #expect(updates == [7, 10, 14, 20, 21])
        // The update weights differ (j = 7, 3, 4, 6, 1): a wrong exponent or a missed update would fail above.
        #expect(t.average!.lastStep == 21)
    }

    @Test("the average does not change training: θ is bit-identical with and without it")
    func trainingUnchanged() throws {
        let a = try makeTrainer(try problem(ema: 0.99), threads: 2)
        let b = try makeTrainer(try problem(ema: nil), threads: 2)
        while !a.finished { _ = try a.runEpoch() }
        while !b.finished { _ = try b.runEpoch() }
        let same = a.parameters.array.map(\.bitPattern) == b.parameters.array.map(\.bitPattern)
        #expect(same)
        let differs = a.evaluationParameters.array != a.parameters.array
        #expect(differs)
        #expect(b.evaluationParameters === b.parameters)
    }

    @Test("validation NLL and the model are the average's")
    func evaluationUsesAverage() throws {
        let p = try problem(ema: 0.5)
        let t = try makeTrainer(p, threads: 1)
        while !t.finished { _ = try t.runEpoch() }
        let averaged = RealNVP(network: t.network, parameters: t.average!.average.array, normalizer: p.1)
        let rows = p.3.rows
        let ld = averaged.logProb(p.3.converted(to: Float.self))
        let expected = -ld.reduce(0, +) / Double(rows)
        let got = try #require(try t.validationNLL())
        #expect(abs(got - expected) <= 1e-4 * abs(expected), "\(got) vs \(expected)")
        let isAverage = t.model.parameters == t.average!.average.array
        #expect(isAverage)
    }

    @Test("resume mid-epoch through a checkpoint file: θ, θ̄ and the average's step are bit-identical")
    func resumeThroughCheckpoint() throws {
        let p = try problem(ema: 0.99)
        let straight = try makeTrainer(p, threads: 2)
        while !straight.finished { _ = try straight.runEpoch() }
        let first = try makeTrainer(p, threads: 2)
        _ = try first.runEpoch()
        for _ in 0..<4 { _ = try first.trainStep() }  // step 11: the last update was at 10
        #expect(first.average!.lastStep == 10)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ema-\(UInt32.random(in: 0...UInt32.max)).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Checkpoint(model: first.model, state: first.state(), training: p.0).write(to: path)
        let loaded = try Checkpoint.load(path: path, expecting: p.0.model)
        let state = try #require(loaded.state)
        let couplingsHoldAverage = loaded.model.parameters == first.average!.average.array
        let trainingHoldsTheta = state.parameters == first.parameters.array
        #expect(couplingsHoldAverage)  // couplings.* hold θ̄
        #expect(trainingHoldsTheta)    // training.parameters.* hold θ
        #expect(state.averageStep == 10)
        let resumed = try DataParallelTrainer(configuration: p.0, normalizer: p.1, train: p.2, validation: p.3,
                                              communicator: SingleProcessCommunicator(), threads: 2, state: state)
        while !resumed.finished { _ = try resumed.runEpoch() }
        let sameTheta = resumed.parameters.array.map(\.bitPattern) == straight.parameters.array.map(\.bitPattern)
        let sameAverage = resumed.average!.average.array.map(\.bitPattern) == straight.average!.average.array.map(\.bitPattern)
        #expect(sameTheta)
        #expect(sameAverage)
    }

    @Test("an epoch stopped mid-way and resumed through a checkpoint file reports the training NLL of all its steps")
    func epochProgressAcrossResume() throws {
        let p = try problem(ema: 0.99)
        let straight = try makeTrainer(p, threads: 2)
        var reference: [EpochReport] = []
        while !straight.finished { reference.append(try straight.runEpoch()) }
        // A stop requested during the 3rd step of epoch 2 (step index 9): runEpoch ends after it, keeping its sums.
        let second = try makeTrainer(p, threads: 2, options: TrainerOptions(stopRequest: { $0 >= 9 }))
        var reports = [try second.runEpoch()]
        let stopped = try second.runEpoch()
        #expect(second.stopAgreed && stopped.validationNLL == nil && second.step == 10)
        let progress = second.epochProgress
        #expect(progress.rows == 3 * 24 && progress.skippedSteps == 0 && progress.seconds > 0)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("progress-\(UInt32.random(in: 0...UInt32.max)).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Checkpoint(model: second.model, state: second.state(), training: p.0).write(to: path)
        let state = try #require(try Checkpoint.load(path: path, expecting: p.0.model).state)
        #expect(state.epochProgress == progress)
        let resumed = try DataParallelTrainer(configuration: p.0, normalizer: p.1, train: p.2, validation: p.3,
                                              communicator: SingleProcessCommunicator(), threads: 2, state: state)
        while !resumed.finished { reports.append(try resumed.runEpoch()) }
        #expect(reports.count == reference.count)
        for (a, b) in zip(reports, reference) {
            #expect(a.trainNLL.bitPattern == b.trainNLL.bitPattern, "epoch \(a.epoch): train NLL \(a.trainNLL) vs \(b.trainNLL)")
            #expect(a.validationNLL == b.validationNLL)
        }
    }

    @Test("a checkpoint with an average cannot resume a run without one, and the reverse; each error says which")
    func resumeMismatch() throws {
        let with = try problem(ema: 0.99), without = try problem(ema: nil)
        let a = try makeTrainer(with, threads: 1)
        _ = try a.runEpoch()
        #expect(throws: FlowConfigurationError.self) {
            _ = try DataParallelTrainer(configuration: without.0, normalizer: without.1, train: without.2, validation: without.3,
                                        communicator: SingleProcessCommunicator(), threads: 1, state: a.state())
        }
        let b = try makeTrainer(without, threads: 1)
        _ = try b.runEpoch()
        do {
            _ = try DataParallelTrainer(configuration: with.0, normalizer: with.1, train: with.2, validation: with.3,
                                        communicator: SingleProcessCommunicator(), threads: 1, state: b.state())
            Issue.record("resuming without an average into a run with one was accepted")
        } catch let e as FlowConfigurationError {
            #expect("\(e)".contains("ema-momentum"))
        }
    }

    @Test("the momentum must lie in (0, 1)", arguments: [0.0, 1.0, -0.5, 1.5, Double.nan])
    func invalidMomentum(mu: Double) throws {
        var p = try problem(ema: nil)
        p.0.emaMomentum = mu
        #expect(throws: FlowConfigurationError.self) { try p.0.validate() }
    }
}
