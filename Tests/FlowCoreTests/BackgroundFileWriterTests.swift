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

    @Test("a failed write is reported by the next wait or submit, naming the file; the other files are written all the same; the writer goes on afterwards")
    func errors() throws {
        try withTemporaryDirectory { dir in
            let writer = BackgroundFileWriter()
            let missing = dir + "/no-such-directory/model.safetensors"
            let good = dir + "/best.safetensors"
            try writer.submit([PendingFile(path: missing, bytes: [1, 2, 3]), PendingFile(path: good, bytes: [4])])
            let error = captureFlowIOError { try writer.wait() }
            #expect(error?.path == missing)
            #expect(error.map { "\($0)" }?.contains("does not exist") == true)
            // Each file stands alone: the one after the failed file was written.
            #expect(try readFixture(good) == [4])
            // The error is reported once; a new batch is written.
            try writer.submit([PendingFile(path: good, bytes: [5])])
            try writer.wait()
            #expect(try readFixture(good) == [5])
            // An error also surfaces at the next submit once its batch has been written; that submit's batch is
            // then not queued.
            try writer.submit([PendingFile(path: missing, bytes: [1])])
            writer.waitUntilWritten()
            let again = captureFlowIOError { try writer.submit([PendingFile(path: good, bytes: [6])]) }
            #expect(again?.path == missing)
            try writer.wait()
            #expect(try readFixture(good) == [5])
        }
    }

    @Test("wait takes over a file the thread is part-way through: the thread removes its partial copy before the caller writes the file (never two copies on disk), the files are on disk when wait returns, nothing else is left, and the thread never replaces a file written after wait")
    func waitTakesOverMidFile() throws {
        try withTemporaryDirectory { dir in
            let writer = BackgroundFileWriter()
            let a = dir + "/model.safetensors", b = dir + "/best.safetensors", m = dir + "/metrics.csv"
            func temporaryFiles() -> [String] {
                ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(".tmp-") }
            }
            writer.holdMidFile(true)  // the thread stops after the first chunk of each file
            let old = [UInt8](repeating: 1, count: 3 * AtomicFile.chunkBytes)
            try writer.submit([PendingFile(path: a, bytes: old), PendingFile(path: b, bytes: [1])])
            writer.waitUntilHeldMidFile()
            #expect(temporaryFiles().count == 1)  // a, part-written
            let new = [UInt8](repeating: 2, count: 3 * AtomicFile.chunkBytes)
            try writer.submit([PendingFile(path: m, bytes: [1]), PendingFile(path: a, bytes: new)])
            final class Seen: @unchecked Sendable { var temporaries: [String: [String]] = [:] }
            let seen = Seen()
            writer.takeOverWillWrite = { path in seen.temporaries[String(path.split(separator: "/").last!)] = temporaryFiles() }
            try writer.wait()  // lets the held thread go on, waits for it to leave the file, then writes
            // The caller wrote all three (a at its newest bytes, in a's place in the batch), with no other copy on disk.
            #expect(seen.temporaries == ["model.safetensors": [], "best.safetensors": [], "metrics.csv": []])
            #expect(try readFixture(a) == new)
            #expect(try readFixture(b) == [1])
            #expect(try readFixture(m) == [1])
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["best.safetensors", "metrics.csv", "model.safetensors"])
            try AtomicFile.write([3], to: a)  // as a stop writes its checkpoint after wait()
            writer.takeOverWillWrite = nil
            writer.holdMidFile(false)
            // The thread writes the next batch itself, and nothing of the old one.
            try writer.submit([PendingFile(path: b, bytes: [4])])
            writer.waitUntilWritten()
            #expect(try readFixture(a) == [3])
            #expect(try readFixture(b) == [4])
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["best.safetensors", "metrics.csv", "model.safetensors"])
        }
    }

    @Test("wait overtaking a file the thread has completed lets the thread commit it and does not write it again; it writes the rest of the batch")
    func waitLetsACompletedFileBeCommitted() throws {
        try withTemporaryDirectory { dir in
            let writer = BackgroundFileWriter()
            let a = dir + "/model.safetensors", b = dir + "/best.safetensors"
            writer.holdCommits(true)  // the thread prepares a file completely, then waits before the rename
            try writer.submit([PendingFile(path: a, bytes: [1]), PendingFile(path: b, bytes: [2])])
            writer.waitUntilWaitingToCommit()
            final class Written: @unchecked Sendable { var paths: [String] = [] }
            let written = Written()
            writer.takeOverWillWrite = { written.paths.append($0) }
            let returned = DispatchSemaphore(value: 0)
            Thread {
                try? writer.wait()  // blocks until the thread has committed a
                returned.signal()
            }.start()
            writer.waitUntilOvertaken()
            writer.holdCommits(false)
            returned.wait()
            #expect(written.paths == [b])
            #expect(try readFixture(a) == [1])
            #expect(try readFixture(b) == [2])
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["best.safetensors", "model.safetensors"])
        }
    }

    @Test("batches submitted while one is in flight wait in one batch, where a file's newer bytes replace the older ones (written once, at their latest)")
    func waitingBatchesCoalesce() throws {
        try withTemporaryDirectory { dir in
            let writer = BackgroundFileWriter()
            let a = dir + "/model.safetensors", b = dir + "/metrics.csv", c = dir + "/best.safetensors"
            writer.hold(true)
            try writer.submit([PendingFile(path: a, bytes: [1]), PendingFile(path: b, bytes: [1])])
            try writer.submit([PendingFile(path: b, bytes: [2])])
            try writer.submit([PendingFile(path: c, bytes: [1]), PendingFile(path: a, bytes: [3])])
            #expect(writer.superseded == 2)
            #expect(!FileManager.default.fileExists(atPath: a))
            writer.hold(false)
            try writer.wait()
            #expect(try readFixture(a) == [3])
            #expect(try readFixture(b) == [2])
            #expect(try readFixture(c) == [1])
            #expect(writer.batches == 3)
        }
    }

    @Test("the bytes of a batch the thread has written are released before it reports the batch done: the caller's array is then changed in place, not copied")
    func bytesReleasedWhenWritten() throws {
        try withTemporaryDirectory { dir in
            let writer = BackgroundFileWriter()
            var bytes = [UInt8](repeating: 1, count: 1 << 20)
            let storage = bytes.withUnsafeBufferPointer { $0.baseAddress }
            try writer.submit([PendingFile(path: dir + "/model.safetensors", bytes: bytes)])
            writer.waitUntilWritten()
            try writer.wait()  // idle: returns at once
            bytes[0] = 2  // a copy (were the writer still holding the array) would move it
            #expect(bytes.withUnsafeBufferPointer { $0.baseAddress } == storage)
            #expect(try readFixture(dir + "/model.safetensors") == [UInt8](repeating: 1, count: 1 << 20))
        }
    }

    #if os(Linux)
    @Test("the writer's thread runs at nice 19 (only it: the calling thread keeps its priority)")
    func writerThreadHasLowestPriority() throws {
        try withTemporaryDirectory { dir in
            /// The nice value in a /proc/…/stat (field 19; fields counted after "pid (comm)", which may hold spaces).
            func nice(_ statPath: String) -> Int? {
                guard let stat = try? String(contentsOfFile: statPath, encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                return fields.count > 16 ? Int(fields[16]) : nil
            }
            let ownNice = nice("/proc/thread-self/stat")
            let writer = BackgroundFileWriter()
            try writer.submit([PendingFile(path: dir + "/m", bytes: [1])])
            writer.waitUntilWritten()  // the thread has started, set its priority, then its name
            var writerThreads: [String: Int?] = [:]
            for tid in try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") {
                let comm = (try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8)) ?? ""
                if comm.hasPrefix("flow-file-write") { writerThreads[tid] = nice("/proc/self/task/\(tid)/stat") }
            }
            #expect(writerThreads.count >= 1)
            #expect(writerThreads.values.allSatisfy { $0 == 19 }, "\(writerThreads)")
            #expect(nice("/proc/thread-self/stat") == ownNice)
            withExtendedLifetime(writer) {}
        }
    }
    #endif

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
