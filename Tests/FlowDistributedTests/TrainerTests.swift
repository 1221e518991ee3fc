import Foundation
import FlowCore
import Testing
@testable import FlowDistributed

@Suite("Data-parallel trainer (in process)")
struct TrainerTests {
    @Test("the reduced gradient does not depend on the worker count (uneven shards)", arguments: [2, 3, 7])
    func threadInvariance(threads: Int) throws {
        let p = try smallProblem(batch: 61)
        let g1 = try makeTrainer(p, threads: 1).nextBatchGradient()
        let gT = try makeTrainer(p, threads: threads).nextBatchGradient()
        let scale = g1.map { abs($0) }.max()!
        for i in g1.indices {
            #expect(abs(g1[i] - gT[i]) <= 2e-6 * scale + 1e-5 * abs(g1[i]), "element \(i): \(g1[i]) vs \(gT[i]) (T = \(threads))")
        }
    }

    @Test("one worker's gradient equals the reference lossAndGradient of FlowCore")
    func matchesReference() throws {
        let p = try smallProblem(batch: 300, l2: 0)  // one batch = the whole training split
        let trainer = try makeTrainer(p, threads: 1)
        let g = try trainer.nextBatchGradient()
        let model = RealNVP(network: trainer.network, parameters: trainer.parameters.array, normalizer: p.1)
        let ref = model.lossAndGradient(p.2.converted(to: Float.self)).gradient
        let scale = ref.map { abs($0) }.max()!
        for i in ref.indices { #expect(abs(g[i] - ref[i]) <= 1e-6 * scale + 1e-5 * abs(ref[i])) }
    }

    @Test("exact mode: parameters after training are bit-identical for 1, 2, 3 and 7 workers")
    func exactModeBitwise() throws {
        let p = try smallProblem(batch: 50, reproducible: true, microBatch: 8, epochs: 2, l2: 0.001, clip: 5)
        var reference: [UInt32]?
        for threads in [1, 2, 3, 7] {
            let t = try makeTrainer(p, threads: threads)
            while !t.finished { _ = try t.runEpoch() }
            let bits = t.parameters.array.map(\.bitPattern)
            if let reference { #expect(bits == reference, "T = \(threads) differs from T = 1") } else { reference = bits }
            #expect(t.step == 2 * t.batchesPerEpoch)
        }
    }

    @Test("conditional flow: the worker gradient equals lossAndGradient(x, context:); exact mode is bit-identical for 1, 2 and 3 workers; the state keeps the context normaliser")
    func conditionalTraining() throws {
        let whole = try conditionalProblem(batch: 300)  // one batch = the whole training split
        let first = try makeTrainer(whole, threads: 1)
        let g = try first.nextBatchGradient()
        let model = RealNVP(network: first.network, parameters: first.parameters.array, normalizer: whole.1, contextNormalizer: whole.4)
        let rows = whole.2.converted(to: Float.self)
        let ref = model.lossAndGradient(rows.columns(0..<2), context: rows.columns(2..<4)).gradient
        let scale = ref.map { abs($0) }.max()!
        for i in ref.indices { #expect(abs(g[i] - ref[i]) <= 1e-6 * scale + 1e-5 * abs(ref[i]), "element \(i): \(g[i]) vs \(ref[i])") }
        let p = try conditionalProblem(batch: 50, reproducible: true)
        try expectBitIdenticalTraining(threads: [1, 2, 3], { try makeTrainer(p, threads: $0) }) { t in
            #expect(t.state().contextNormalizer == p.4)
            #expect(t.model.contextNormalizer == p.4)
        }
    }

    @Test("classMixtureLogDensity: weights (1, 0) give the class-0 density; (0.3, 0.7) give log(0.3·e^ℓ₀ + 0.7·e^ℓ₁) of the one-hot rows")
    func classMixture() throws {
        let t = try makeTrainer(try conditionalProblem(batch: 64), threads: 2)
        let x: [Float] = [0.1, 0.4, -1, 0.5, 1.5, -0.2]
        func oneHot(_ k: Int) -> [Float] { (0..<3).flatMap { i in [x[2 * i], x[2 * i + 1], k == 0 ? 1 : 0, k == 1 ? 1 : 0] } }
        let p = t.parameters.base
        let l0 = try oneHot(0).withUnsafeBufferPointer { try t.evaluator.logDensity($0.baseAddress!, rows: 3, parameters: p) }
        let l1 = try oneHot(1).withUnsafeBufferPointer { try t.evaluator.logDensity($0.baseAddress!, rows: 3, parameters: p) }
        #expect(l0 != l1)
        let first = try t.evaluator.classMixtureLogDensity(x, rows: 3, weights: [1, 0], parameters: p)
        #expect(first == l0)
        let mixed = try t.evaluator.classMixtureLogDensity(x, rows: 3, weights: [0.3, 0.7], parameters: p)
        for i in 0..<3 {
            let expected = log(0.3 * exp(l0[i]) + 0.7 * exp(l1[i]))
            #expect(abs(mixed[i] - expected) <= 1e-12 * max(1, abs(expected)), "row \(i): \(mixed[i]) vs \(expected)")
        }
    }

    @Test("validation every 3 epochs (and after the last): epochs 3 and 4 of 4 report it, the others none; the parameters are those of validating every epoch")
    func validationInterval() throws {
        let p = try smallProblem(batch: 64, epochs: 4)
        let every = try makeTrainer(p, threads: 2)
        let third = try makeTrainer(p, threads: 2, options: TrainerOptions(validationInterval: 3))
        var reports: [EpochReport] = [], everyReports: [EpochReport] = []
        while !every.finished { everyReports.append(try every.runEpoch()) }
        while !third.finished { reports.append(try third.runEpoch()) }
        #expect(reports.map { $0.validationNLL != nil } == [false, false, true, true])
        #expect(reports[2].validationNLL == everyReports[2].validationNLL && reports[3].validationNLL == everyReports[3].validationNLL)
        #expect(everyReports.allSatisfy { $0.validationNLL != nil })
        #expect(third.parameters.array.map(\.bitPattern) == every.parameters.array.map(\.bitPattern))
    }

    @Test("default mode: the same layout twice gives the same bits; training lowers the NLL")
    func determinismAndProgress() throws {
        let p = try smallProblem(batch: 32, epochs: 6)
        let a = try makeTrainer(p, threads: 2), b = try makeTrainer(p, threads: 2)
        let before = try #require(try a.validationNLL())
        while !a.finished { _ = try a.runEpoch() }
        while !b.finished { _ = try b.runEpoch() }
        #expect(a.parameters.array.map(\.bitPattern) == b.parameters.array.map(\.bitPattern))
        let after = try #require(try a.validationNLL())
        #expect(after < before - 0.1, "validation NLL \(before) → \(after)")
    }

    @Test("resuming from a state mid-run gives the same bits as running straight through")
    func resumeEquality() throws {
        let p = try smallProblem(batch: 40, epochs: 3)
        let straight = try makeTrainer(p, threads: 2)
        while !straight.finished { _ = try straight.runEpoch() }
        let first = try makeTrainer(p, threads: 2)
        _ = try first.runEpoch()
        _ = try first.trainStep()  // stop mid-epoch
        let resumed = try DataParallelTrainer(configuration: p.0, normalizer: p.1, train: p.2, validation: p.3,
                                              communicator: SingleProcessCommunicator(), threads: 2, state: first.state())
        while !resumed.finished { _ = try resumed.runEpoch() }
        #expect(resumed.parameters.array.map(\.bitPattern) == straight.parameters.array.map(\.bitPattern))
        #expect(resumed.optimizer.m.array == straight.optimizer.m.array)
    }

    @Test("a non-finite gradient is skipped without touching the parameters; three in a row stop training")
    func nonFinitePolicy() throws {
        let p = try smallProblem(batch: 40, epochs: 3)
        let t = try makeTrainer(p, threads: 2, options: TrainerOptions(faults: FaultHooks(poisonGradient: { $0 >= 1 })))
        _ = try t.trainStep()
        let before = t.parameters.array
        let adamStep = t.optimizer.step
        let r = try t.trainStep()
        #expect(!r.applied)
        #expect(t.parameters.array == before)
        #expect(t.optimizer.step == adamStep)
        _ = try t.trainStep()
        #expect(throws: TrainingStopped.self) { try t.trainStep() }
    }

    @Test("the count of non-finite steps in a row travels in the checkpoint: a resumed run stops after the same step")
    func nonFiniteStreakSurvivesResume() throws {
        let p = try smallProblem(batch: 40, epochs: 3)
        let t = try makeTrainer(p, threads: 2, options: TrainerOptions(faults: FaultHooks(poisonGradient: { $0 >= 1 })))
        _ = try t.trainStep()
        _ = try t.trainStep()
        _ = try t.trainStep()  // two skipped in a row
        let state = t.state()
        #expect(state.nonFiniteStreak == 2)
        // Through a checkpoint file, as `train --resume` does.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("streak-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Checkpoint(model: t.model, state: state, training: p.0).write(to: "\(dir)/m.safetensors")
        let loaded = try #require(try Checkpoint.load(path: "\(dir)/m.safetensors").state)
        #expect(loaded.nonFiniteStreak == 2)
        let resumed = try DataParallelTrainer(configuration: p.0, normalizer: p.1, train: p.2, validation: p.3,
                                              communicator: SingleProcessCommunicator(), threads: 2, state: loaded,
                                              options: TrainerOptions(faults: FaultHooks(poisonGradient: { $0 >= 1 })))
        #expect(throws: TrainingStopped.self) { try resumed.trainStep() }  // the third in a row, as without the resume
    }

    @Test("the last partial batch is used with its true size")
    func partialBatch() throws {
        let p = try smallProblem(rows: 203, batch: 64)
        let t = try makeTrainer(p, threads: 3)
        #expect(t.trainRows == 162)
        #expect(t.batchesPerEpoch == 3)
        var rows: [Int] = []
        _ = try t.runEpoch { rows.append($0.rows) }
        #expect(rows == [64, 64, 34])
    }
}
