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
/// (temporary file, `fsync`, `rename`, `fsync` of the directory) on one background Dispatch queue, while training
/// goes on. At most one batch is in flight: ``submit(_:)`` first waits for the previous one, so files are never
/// written out of order and memory holds at most two snapshots. The guarantees are ``AtomicFile``'s: a process
/// killed during a write (even `kill -9`) leaves the previous file whole; only a finished write replaces it.
///
/// The bytes are a snapshot taken by the caller (e.g. ``Checkpoint/checkedBytes(for:)`` at an epoch's end), so the
/// trainer may change its parameters while the snapshot is written. Taking the snapshot allocates (at the epoch's
/// end, not in a step); the writer thread makes a few small allocations per file (its temporary path), none per
/// byte.
///
/// Example:
///
///     let writer = BackgroundFileWriter()
///     try writer.submit([PendingFile(path: "run/model.safetensors", bytes: bytes)])
///     // … more training steps …
///     try writer.wait()   // before exiting, or before writing the same file synchronously
public final class BackgroundFileWriter: @unchecked Sendable {
    private let queue = DispatchQueue(label: "flow-mpirun.background-file-writer", qos: .utility)
    private let inFlight = DispatchGroup()
    private let lock = NSLock()
    /// The first error of the batch in flight, reported by the next ``submit(_:)`` or ``wait()``.
    private var failure: FlowIOError?
    /// Seconds the caller spent waiting for a previous batch (cumulative), for benchmarks.
    public private(set) var secondsWaited = 0.0
    /// Batches written.
    public private(set) var batches = 0

    /// A writer with nothing in flight.
    public init() {}

    /// Queues `files`, written in order once the batch in flight (if any) has been written. A file that fails stops
    /// its batch: the files after it are not written (each earlier one is whole).
    /// - Throws: ``FlowIOError`` of the previous batch, naming its file (this batch is then not queued).
    public func submit(_ files: [PendingFile]) throws(FlowIOError) {
        try wait()
        guard !files.isEmpty else { return }
        batches += 1
        inFlight.enter()
        queue.async { [self] in
            defer { inFlight.leave() }
            for f in files {
                do { try AtomicFile.write(f.bytes, to: f.path) } catch {
                    lock.lock()
                    failure = (error as? FlowIOError) ?? FlowIOError(path: f.path, message: "\(error)")
                    lock.unlock()
                    return
                }
            }
        }
    }

    /// Waits until the batch in flight is on disk.
    /// - Throws: ``FlowIOError`` naming the file whose write failed.
    public func wait() throws(FlowIOError) {
        let start = DispatchTime.now().uptimeNanoseconds
        inFlight.wait()
        secondsWaited += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        lock.lock()
        let error = failure
        failure = nil
        lock.unlock()
        if let error { throw error }
    }
}
