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

/// Writes files off the training thread: each batch of files is written in order, each file atomically as
/// ``AtomicFile/write(_:to:)`` does (temporary file, `fsync`, `rename`, `fsync` of the directory), on a background
/// thread of its own, while training goes on. The guarantees are ``AtomicFile``'s: a process killed during a write
/// (even `kill -9`) leaves the previous file whole; only a finished write replaces it.
///
/// Queuing: ``submit(_:)`` never waits. One batch is in flight, and what is submitted meanwhile waits behind it in
/// one batch, where a file submitted again replaces its older bytes in the older one's place (each file is a whole
/// snapshot, so the newer supersedes it: a metrics file submitted every epoch while a large checkpoint is being
/// written is written once, at its latest). So no file is ever replaced by older bytes, and the files of a batch
/// reach the disk in the order of their first submission. Memory holds at most two snapshots of a file.
///
/// Priority: the thread runs at the lowest CPU priority (``flow_thread_lowest_priority()``: nice 19 on Linux, the
/// I/O priority kept at the default), because its CPU time is not free: copying a 38 MB checkpoint into the page
/// cache costs about 25 ms of CPU, and at normal priority the writer preempted a training worker for it, which held
/// up the other workers at the step's end (measured on 2 cores: the epoch after a checkpoint 46–100 ms slower; at
/// nice 19, 0–25 ms). It is a thread of its own rather than a Dispatch queue because an unprivileged thread cannot
/// get its priority back, and a Dispatch thread goes on to run other work. A thread at nice 19 can be starved on a
/// loaded machine, so whoever needs the files on disk does not wait for it to write them: ``wait()`` takes over,
/// writing what is not yet committed on the calling thread at its own priority (a stop under `mpirun` must finish its
/// checkpoint within the launcher's grace period). It waits only for the thread to leave the file it is writing: the
/// thread writes in chunks of ``AtomicFile/chunkBytes`` and, overtaken part-way, removes its temporary file before the
/// next chunk (or, with every byte written, completes and commits the file, which the caller then does not write
/// again). So a file never has two temporary copies on disk at once (a disk with room for one more checkpoint
/// suffices), and a process that exits after ``wait()`` (also on an error) leaves no partial file behind.
///
/// The bytes are a snapshot taken by the caller (e.g. ``Checkpoint/checkedBytes(for:into:)`` at an epoch's end), so
/// the trainer may change its parameters while the snapshot is written. When the thread has written a batch, it
/// releases its bytes before it reports the batch done, so a caller that keeps its byte arrays and finds the writer
/// idle (``wait()`` returns at once) can serialise the next snapshot into the same storage (`train` does: no
/// allocation of the data's size after the first checkpoint). After a take-over the thread may still hold them for
/// a while: the next snapshot is then a fresh copy (copy-on-write), never a change to bytes being written. The
/// thread makes a few small allocations per file (its temporary path), none per byte.
///
/// One caller thread: ``submit(_:)`` and ``wait()`` are called from one thread (the training loop's).
///
/// Example:
///
///     let writer = BackgroundFileWriter()
///     try writer.submit([PendingFile(path: "run/model.safetensors", bytes: bytes)])
///     // … more training steps …
///     try writer.wait()   // before exiting, or before writing the same file synchronously
public final class BackgroundFileWriter: @unchecked Sendable {
    /// What the caller and the writer thread share (the thread holds it, not the writer, so that the writer's
    /// `deinit` can stop the thread). Every field is read and written under `condition`.
    private final class Shared: @unchecked Sendable {
        let condition = NSCondition()
        /// The batch waiting behind the one in flight (not yet taken by the thread).
        var queued: [PendingFile]?
        /// The batch the thread is writing, and how many of its files it has committed (renamed into place).
        var current: [PendingFile] = []
        var committed = 0
        /// Set by ``wait()`` when it takes over the rest of `current`: the thread finishes or abandons the file it is
        /// writing and writes nothing more of the batch.
        var overtaken = false
        /// Whether the thread is writing a file of `current` (its temporary file may be on disk).
        var preparing = false
        /// Set while ``wait()`` waits for the thread to leave the file it is writing: the thread takes no new batch.
        var takeOverWaiting = false
        /// Whether the thread is working on `current`.
        var active = false
        /// Whether the thread is working on a batch or one is queued for it.
        var busy = false
        /// Set by `deinit`: the thread finishes what it has, then leaves its loop.
        var stopping = false
        /// Tests only (``BackgroundFileWriter/hold(_:)``): while set, the thread takes no new batch.
        var held = false
        /// Tests only (``BackgroundFileWriter/holdMidFile(_:)``): while set, the thread stops after the first chunk
        /// of a file (as if starved); and whether it is stopped there.
        var midFileHeld = false
        var heldMidFile = false
        /// Tests only (``BackgroundFileWriter/holdCommits(_:)``): while set, the thread commits no file; and
        /// whether it is waiting to commit one.
        var commitsHeld = false
        var waitingToCommit = false
        /// Files replaced in the waiting batch by newer bytes for the same path before they were written.
        var superseded = 0
        /// The first error since the last report (later ones are dropped), reported by the next ``submit(_:)`` or
        /// ``wait()``.
        var failure: FlowIOError?

        func record(_ error: FlowIOError) {
            if failure == nil { failure = error }
        }

        /// The writer thread's loop: take a batch, write it, report; until stopped.
        func run() {
            _ = flow_thread_lowest_priority()
            flow_thread_set_name("flow-file-write")
            while takeNextBatch() {
                writeCurrentBatch()
                condition.lock()
                current = []  // the bytes are released before the batch is reported done
                active = false
                if queued == nil {
                    busy = false
                    condition.broadcast()
                }
                condition.unlock()
            }
        }

        /// Waits for a batch and makes it `current`; false once stopped with nothing left.
        private func takeNextBatch() -> Bool {
            condition.lock()
            defer { condition.unlock() }
            while (queued == nil || held || takeOverWaiting) && !stopping { condition.wait() }
            guard let batch = queued else { return false }
            queued = nil
            current = batch
            committed = 0
            overtaken = false
            active = true
            return true
        }

        /// Writes `current` file by file: each prepared (written and fsynced) outside the lock, in chunks between
        /// which it asks whether ``wait()`` has taken over; then committed under the lock. Overtaken part-way through a
        /// file, it removes its temporary file at once and stops (the caller, which waits for that, writes the file);
        /// overtaken once the file is complete, it commits it and stops (the caller does not write it again). A file
        /// that fails is recorded and the next one written (each file stands alone).
        private func writeCurrentBatch() {
            condition.lock()
            let files = current
            condition.unlock()
            for (i, f) in files.enumerated() {
                condition.lock()
                if overtaken {
                    condition.unlock()
                    return
                }
                preparing = true
                condition.unlock()
                let prepared: AtomicFile.PreparedFile?
                do { prepared = try AtomicFile.prepare(f.bytes, for: f.path, abandoningWhen: { self.shouldAbandon() }) } catch {
                    condition.lock()
                    record(error)
                    committed = i + 1
                    preparing = false
                    condition.broadcast()
                    condition.unlock()
                    continue
                }
                condition.lock()
                if let prepared {
                    while commitsHeld {
                        waitingToCommit = true
                        condition.broadcast()
                        condition.wait()
                    }
                    waitingToCommit = false
                    do { try prepared.commit() } catch { record(error) }
                    committed = i + 1
                }  // else abandoned: overtaken, its temporary file already removed
                preparing = false
                let stop = overtaken
                condition.broadcast()
                condition.unlock()
                if stop { return }
            }
        }

        /// Asked between two chunks of a file: whether ``wait()`` has taken over (then the file is abandoned).
        private func shouldAbandon() -> Bool {
            condition.lock()
            defer { condition.unlock() }
            while midFileHeld {
                heldMidFile = true
                condition.broadcast()
                condition.wait()
            }
            heldMidFile = false
            return overtaken
        }
    }

    private let shared = Shared()
    /// Seconds the caller spent in ``wait()`` (cumulative), for benchmarks.
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
        Thread { shared.run() }.start()
    }

    /// Lets the thread finish the batches in flight and waiting, then end. Call ``wait()`` first to know that
    /// they were written (and to hear of a failure).
    deinit {
        shared.condition.lock()
        shared.stopping = true
        shared.condition.broadcast()
        shared.condition.unlock()
    }

    /// Queues `files` (in order) behind the batch in flight, without waiting: into the waiting batch, where a file of
    /// the same path is replaced by the newer bytes in its place.
    /// - Throws: ``FlowIOError`` of an earlier file that failed, naming it (this batch is then not queued); an error
    ///   of the batch still in flight surfaces at a later call.
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

    /// Returns when every file submitted is on disk: at once when the thread has written them all; otherwise it takes
    /// over: it lets the thread finish or abandon the file it is writing (at most one chunk, or that file's `fsync`),
    /// then writes the files not yet committed (the rest of the batch in flight, then the waiting batch) on the
    /// calling thread. On return no temporary file of the writer's is on disk.
    /// - Throws: ``FlowIOError`` naming the first file whose write failed (the others are written all the same).
    public func wait() throws(FlowIOError) {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { secondsWaited += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        shared.condition.lock()
        var rest: [PendingFile] = []
        if shared.busy {
            if shared.active && !shared.overtaken {
                shared.overtaken = true
                let batch = shared.current
                if shared.preparing {
                    // The file the thread is writing: it completes and commits it, or (part-way through) removes its
                    // temporary file at its next chunk. Never two copies of a file on disk at once (a tight disk holds
                    // one), and nothing partial left behind by a process that exits after this wait. Meanwhile the
                    // thread takes no new batch (`committed` stays this batch's).
                    shared.takeOverWaiting = true
                    shared.condition.broadcast()
                    while shared.preparing {
                        shared.midFileHeld = false  // tests: a thread held mid-file (as if starved) goes on
                        shared.condition.broadcast()
                        shared.condition.wait()
                    }
                    shared.takeOverWaiting = false
                    shared.condition.broadcast()
                }
                rest = Array(batch[shared.committed...])
            }
            if let q = shared.queued {
                // Newer bytes of a file of the batch in flight replace it there (the same order as the thread's).
                for f in q {
                    if let i = rest.firstIndex(where: { $0.path == f.path }) { rest[i] = f } else { rest.append(f) }
                }
                shared.queued = nil
            }
            if !shared.active {
                shared.busy = false  // nothing left for the thread
                shared.condition.broadcast()
            }
        }
        var firstError = shared.failure
        shared.failure = nil
        shared.condition.unlock()
        for f in rest {
            takeOverWillWrite?(f.path)
            do { try AtomicFile.write(f.bytes, to: f.path) } catch { if firstError == nil { firstError = error } }
        }
        if let firstError { throw firstError }
    }

    /// Tests only: while `on`, the thread takes no new batch (a batch in flight completes), so that a test can
    /// queue several batches behind it deterministically.
    func hold(_ on: Bool) { update { $0.held = on } }

    /// Tests only: called by ``wait()`` before it writes a file it took over, with the file's path.
    var takeOverWillWrite: ((String) -> Void)?

    /// Tests only: while `on`, the thread stops after the first chunk (``AtomicFile/chunkBytes``) of each file it
    /// writes, its temporary file partly written, as a starved thread would; a ``wait()`` that takes over lets it go
    /// on (so that a take-over that did not wait for the thread would find its partial file on disk).
    func holdMidFile(_ on: Bool) { update { $0.midFileHeld = on } }

    /// Tests only: with ``holdMidFile(_:)`` on, waits until the thread is stopped part-way through a file.
    func waitUntilHeldMidFile() { waitUntil { $0.heldMidFile } }

    /// Tests only: while `on`, the thread commits no file (it prepares one and waits), so that a test can take over
    /// a batch in flight deterministically.
    func holdCommits(_ on: Bool) { update { $0.commitsHeld = on } }

    /// Tests only: with commits held, waits until the thread has prepared a file and waits to commit it.
    func waitUntilWaitingToCommit() { waitUntil { $0.waitingToCommit } }

    /// Tests only: waits until a ``wait()`` (on another thread) has taken over the batch in flight.
    func waitUntilOvertaken() { waitUntil { $0.overtaken } }

    /// Changes the shared state under its lock and wakes its waiters.
    private func update(_ change: (Shared) -> Void) {
        shared.condition.lock()
        change(shared)
        shared.condition.broadcast()
        shared.condition.unlock()
    }

    /// Waits until `holds` is true of the shared state.
    private func waitUntil(_ holds: (Shared) -> Bool) {
        shared.condition.lock()
        while !holds(shared) { shared.condition.wait() }
        shared.condition.unlock()
    }

    /// Tests only: waits until the thread itself has written every batch submitted (no take-over), leaving an
    /// error to the next ``submit(_:)`` or ``wait()``.
    func waitUntilWritten() { waitUntil { !$0.busy } }
}
