import Testing

@testable import flow_mpirun

/// `bench --train`'s "checkpoint ms": the two epochs after each checkpoint beyond twice the run's median epoch.
@Suite("bench: checkpoint cost from epoch times")
struct CheckpointCostTests {
    @Test("epochs of 0.2 s, +0.05 s and +0.03 s after the checkpoints at epochs 10 and 20: (0.08 + 0.02) / 2")
    func knownExcess() throws {
        var walls = [Double](repeating: 0.2, count: 24)  // epochs 1 … 24
        walls[10] += 0.05  // epoch 11
        walls[11] += 0.03  // epoch 12
        walls[20] += 0.02  // epoch 21
        var ends: [Double] = []
        var t = 0.0
        for w in walls {
            t += w
            ends.append(t)
        }
        let cost = try #require(BenchCommand.checkpointCost(epochEnds: ends, every: 10))
        #expect(abs(cost - 0.05) < 1e-12)
    }

    @Test("no checkpoint followed by two epochs: nil; the last one counted needs both epochs after it")
    func edges() throws {
        let ends = (1...11).map { 0.2 * Double($0) }  // epoch 10's checkpoint has one epoch after it
        #expect(BenchCommand.checkpointCost(epochEnds: ends, every: 10) == nil)
        let twelve = (1...12).map { 0.2 * Double($0) }
        #expect(abs(try #require(BenchCommand.checkpointCost(epochEnds: twelve, every: 10))) < 1e-12)
    }
}
