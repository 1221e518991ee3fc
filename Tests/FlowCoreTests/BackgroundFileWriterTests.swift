import Foundation
import Testing
@testable import FlowCore

/// The background writer of checkpoints and metrics: batches written whole and in order, errors reported to the
/// caller, nothing lost at the end.
@Suite("Background file writer")
struct BackgroundFileWriterTests {
    @Test("batches are written in submission order: the last batch's bytes win, every file of a batch is written")
    func order() throws {
        try withTemporaryDirectory { dir in
            let writer = BackgroundFileWriter()
            let a = dir + "/model.safetensors", b = dir + "/metrics.csv"
            for round in 0..<20 {
                let big = [UInt8](repeating: UInt8(round), count: 1 << 18)
                try writer.submit([PendingFile(path: a, bytes: big), PendingFile(path: b, bytes: Array("round \(round)\n".utf8))])
            }
            try writer.wait()
            #expect(try readFixture(a) == [UInt8](repeating: 19, count: 1 << 18))
            #expect(try readFixture(b) == Array("round 19\n".utf8))
            #expect(writer.batches == 20)
            // No temporary file is left behind.
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["metrics.csv", "model.safetensors"])
        }
    }

    @Test("a failed write is reported by the next wait or submit, naming the file; the writer goes on afterwards")
    func errors() throws {
        try withTemporaryDirectory { dir in
            let writer = BackgroundFileWriter()
            let missing = dir + "/no-such-directory/model.safetensors"
            let good = dir + "/best.safetensors"
            try writer.submit([PendingFile(path: missing, bytes: [1, 2, 3]), PendingFile(path: good, bytes: [4])])
            let error = captureFlowIOError { try writer.wait() }
            #expect(error?.path == missing)
            #expect(error.map { "\($0)" }?.contains("does not exist") == true)
            // The batch stopped at its failed file: the file after it was not written.
            #expect(!FileManager.default.fileExists(atPath: good))
            // The error is reported once; a new batch is written.
            try writer.submit([PendingFile(path: good, bytes: [5])])
            try writer.wait()
            #expect(try readFixture(good) == [5])
            // An error also surfaces at the next submit, which then does not queue its batch.
            try writer.submit([PendingFile(path: missing, bytes: [1])])
            let again = captureFlowIOError { try writer.submit([PendingFile(path: good, bytes: [6])]) }
            #expect(again?.path == missing)
            try writer.wait()
            #expect(try readFixture(good) == [5])
        }
    }

    @Test("the previous file stays whole until a write completes: the checkpoint checks run before anything is queued")
    func nonFiniteCheckpointIsRefusedBeforeQueueing() throws {
        let network = try FlowNetwork<Float>(FlowConfiguration(dim: 2, couplings: 2, hidden: 4, hiddenLayers: 1))
        var parameters = RealNVP<Float>.initialParameters(layout: network.layout, seed: 0)
        parameters[0] = .nan
        let checkpoint = Checkpoint(model: RealNVP(network: network, parameters: parameters, normalizer: .identity(dim: 2)))
        let error = captureFlowIOError { try checkpoint.checkedBytes(for: "run/model.safetensors") }
        #expect(error?.path == "run/model.safetensors")
        #expect(error.map { "\($0)" }?.contains("not finite") == true || error.map { "\($0)" }?.contains("nan") == true)
    }
}
