import CFlowSupport
import Dispatch
import Foundation

/// A file to be written atomically: its path and complete contents.
public struct PendingFile: Sendable {
    /// Where the file goes.
    public var path: String
    /// Its bytes.
    public var bytes: [UInt8]
    /// A file of `bytes` at `path`.
    public init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
    }
}

/// Writes files off the training thread: each batch of files is written in order by ``AtomicFile/write(_:to:)``
/// (temporary file, `fsync`, `rename`, `fsync` of the directory) on a background thread of its own, while training
/// goes on. One batch is in flight at a time, and at most one more waits behind it: ``submit(_:)`` does not wait
/// but adds its files to the waiting batch, where a file of the same path is replaced by the newer bytes (each
/// file is a whole snapshot, so the newer one supersedes it: a metrics file submitted every epoch while a large
/// checkpoint is being written is written once, at its latest). Files are never written out of order, and memory
/// holds at most two snapshots of a file. The guarantees are ``AtomicFile``'s: a process killed during a write
/// (even `kill -9`) leaves the previous file whole; only a finished write replaces it.
///
/// The thread runs at the lowest priority (``flow_thread_lowest_priority()``: nice 19 on Linux), because its CPU
/// time is not free: copying a 38 MB checkpoint into the page cache costs about 25 ms of CPU, and at normal
/// priority the writer preempted a training worker for it, which held up the other workers at the step's end
/// (measured on 2 cores: the epoch after a checkpoint 55–100 ms slower; at nice 19, 0–20 ms). Its own thread
/// rather than a Dispatch queue, because an unprivileged thread cannot get its priority back, and a Dispatch
/// thread goes on to run other work.
///
/// The bytes are a snapshot taken by the caller (e.g. ``Checkpoint/checkedBytes(for:into:)`` at an epoch's end), so
/// the trainer may change its parameters while the snapshot is written. The writer releases a batch's bytes before
/// ``wait()`` returns, so a caller that keeps its byte arrays can serialise the next snapshot into the same storage
/// (`train` does: no allocation of the data's size after the first checkpoint). The writer thread makes a few
/// small allocations per file (its temporary path), none per byte.
///
/// Example:
///
///     let writer = BackgroundFileWriter()
///     try writer.submit([PendingFile(path: "run/model.safetensors", bytes: bytes)])
///     // … more training steps …
///     try writer.wait()   // before exiting, or before writing the same file synchronously
public final class BackgroundFileWriter: @unchecked Sendable {
    /// What the caller and the writer thread share (the thread holds it, not the writer, so that the writer's
    /// `deinit` can stop the thread).
    private final class Shared: @unchecked Sendable {
        let condition = NSCondition()
        /// The batch waiting behind the one in flight (not yet taken by the thread).
        var queued: [PendingFile]?
        /// Whether a batch is in flight or waiting.
        var busy = false
        /// Files replaced in the waiting batch by newer bytes for the same path before they were written.
        var superseded = 0
        /// Set by `deinit`: the thread leaves its loop.
        var stopping = false
        /// Tests only (``BackgroundFileWriter/hold(_:)``): while set, the thread takes no new batch.
        var held = false
        /// The first error of the batch in flight, reported by the next ``submit(_:)`` or ``wait()``.
        var failure: FlowIOError?

        /// The writer thread's loop: take a batch, write it, report; until stopped.
        func run() {
            flow_thread_set_name("flow-file-write")
            _ = flow_thread_lowest_priority()
            while let outcome = writeNextBatch() {
                condition.lock()
                if failure == nil { failure = outcome.error }  // the first error waits to be reported
                if queued == nil {
                    busy = false
                    condition.broadcast()
                }
                condition.unlock()
            }
        }

        /// The outcome of one batch: its first error, if any.
        struct Outcome { var error: FlowIOError? }

        /// Waits for a batch and writes it; nil once stopped. The batch (and with it its bytes) is released when
        /// this returns, before `busy` is cleared: a caller past ``wait()`` then holds its byte arrays alone and
        /// can overwrite them in place.
        private func writeNextBatch() -> Outcome? {
            condition.lock()
            while (queued == nil || held) && !stopping { condition.wait() }
            let files = queued
            queued = nil
            condition.unlock()
            guard let files else { return nil }
            return Outcome(error: Self.write(files))
        }

        /// Writes `files` in order, stopping at the first failure, which it returns.
        static func write(_ files: [PendingFile]) -> FlowIOError? {
            for f in files {
                do { try AtomicFile.write(f.bytes, to: f.path) } catch { return error }
            }
            return nil
        }
    }

    private let shared = Shared()
    /// Seconds the caller spent waiting in ``wait()`` (cumulative), for benchmarks.
    public private(set) var secondsWaited = 0.0
    /// Batches submitted.
    public private(set) var batches = 0
    /// Files that newer bytes for the same path replaced before they were written.
    public var superseded: Int {
        shared.condition.lock()
        defer { shared.condition.unlock() }
        return shared.superseded
    }

    /// A writer with nothing in flight; starts its thread.
    public init() {
        let shared = self.shared
        let thread = Thread { shared.run() }
        thread.start()
    }

    deinit {
        shared.condition.lock()
        shared.stopping = true  // the thread finishes the batches in flight and waiting first
        shared.condition.broadcast()
        shared.condition.unlock()
    }

    /// Queues `files` (in order) behind the batch in flight, without waiting: into the waiting batch, where a file of
    /// the same path is replaced by the newer bytes in its place. A file that fails stops its batch: the files after
    /// it in that batch are not written (each earlier one is whole).
    /// - Throws: ``FlowIOError`` of an earlier batch that has failed, naming its file (this batch is then not
    ///   queued); an error of the batch still in flight surfaces at a later call.
    public func submit(_ files: [PendingFile]) throws(FlowIOError) {
        shared.condition.lock()
        if let error = shared.failure {
            shared.failure = nil
            shared.condition.unlock()
            throw error
        }
        if !files.isEmpty {
            batches += 1
            var batch = shared.queued ?? []
            for f in files {
                if let i = batch.firstIndex(where: { $0.path == f.path }) {
                    batch[i] = f
                    shared.superseded += 1
                } else {
                    batch.append(f)
                }
            }
            shared.queued = batch
            shared.busy = true
            shared.condition.broadcast()
        }
        shared.condition.unlock()
    }

    /// Waits until every batch submitted is on disk (and its bytes released: see the type's notes).
    /// - Throws: ``FlowIOError`` naming the file whose write failed.
    public func wait() throws(FlowIOError) {
        let start = DispatchTime.now().uptimeNanoseconds
        shared.condition.lock()
        while shared.busy { shared.condition.wait() }
        let error = shared.failure
        shared.failure = nil
        shared.condition.unlock()
        secondsWaited += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if let error { throw error }
    }

    /// Tests only: while `on`, the thread takes no new batch (a batch in flight completes), so that a test can
    /// queue several batches behind it deterministically.
    func hold(_ on: Bool) {
        shared.condition.lock()
        shared.held = on
        shared.condition.broadcast()
        shared.condition.unlock()
    }

    /// Tests only: waits until every batch submitted is written, leaving an error to the next ``submit(_:)``.
    func waitUntilWritten() {
        shared.condition.lock()
        while shared.busy { shared.condition.wait() }
        shared.condition.unlock()
    }
}
