import FlowCore
import Testing
@testable import FlowDistributed

/// The trainer's state copied into the storage of an earlier snapshot (what a checkpoint every few epochs does):
/// the same values as a fresh ``DataParallelTrainer/state()``, in the same memory.
@Suite("Trainer state snapshots")
struct StateSnapshotTests {
    @Test("copyState(into:) and copyModel(into:) equal state() and model after more training, with and without a parameter average, and reuse the arrays' storage", arguments: [nil, 0.9] as [Double?])
    func copiesIntoReusedStorage(ema: Double?) throws {
        var p = try smallProblem(batch: 32, epochs: 3)
        p.0.emaMomentum = ema
        let t = try makeTrainer(p, threads: 2)
        _ = try t.runEpoch()
        try t.synchronizeOptimizerState()
        var state: TrainingState?
        var model: RealNVP<Float>?
        t.copyState(into: &state)
        t.copyModel(into: &model)
        #expect(state == t.state())
        #expect(model?.parameters == t.model.parameters)
        func address(_ a: [Float]?) -> UnsafePointer<Float>? { a?.withUnsafeBufferPointer { $0.baseAddress } }
        let storage = [address(state?.parameters), address(state?.firstMoment), address(state?.secondMoment),
                       address(state?.averagedParameters), address(model?.parameters)]
        _ = try t.runEpoch()
        _ = t.recordValidation(-1e9, epoch: 2)  // a best epoch, so that the state's best fields change too
        try t.synchronizeOptimizerState()
        #expect(state != t.state())  // the snapshot is a copy: training moved on
        t.copyState(into: &state)
        t.copyModel(into: &model)
        #expect(state == t.state())
        #expect(state?.bestEpoch == 2 && state?.step == t.step)
        #expect(model?.parameters == t.model.parameters)
        #expect((state?.averagedParameters != nil) == (ema != nil))
        let reused = [address(state?.parameters), address(state?.firstMoment), address(state?.secondMoment),
                      address(state?.averagedParameters), address(model?.parameters)]
        #expect(reused == storage)
    }
}
