import FlowCore
import FlowDistributed

/// The checkpoint and the best model that an epoch's end hands to the ``BackgroundFileWriter``, as safetensors
/// bytes, snapshotted into storage kept from one checkpoint to the next.
///
/// A checkpoint of the seed model is 38 MB (parameters, their average, Adam's two moments) and its best model
/// 9.5 MB. Built afresh, each snapshot copied every value three times into newly allocated pages (trainer buffers
/// → arrays → one byte array per tensor → the file's bytes), 75 ms at 2 threads on the training thread, most of it
/// page faults. Here the arrays and the byte arrays are those of the previous snapshot: two copies into memory
/// already mapped, and no allocation of the data's size once the first checkpoint is written.
///
/// Ownership: the bytes returned are shared with the writer while it writes them; the caller waits for the
/// writer (``BackgroundFileWriter/wait()``) before taking the next snapshot, so the storage is then unshared and
/// overwritten in place (were it still shared, copy-on-write would make a fresh copy: slower, never wrong).
///
/// Memory: kept for the whole run on the rank that writes, about twice a checkpoint plus a best model (the arrays
/// and the bytes; 95 MB for the seed model, whose checkpoint is 38 MB).
struct CheckpointSnapshots {
    /// The model of the last checkpoint (its parameters' storage reused).
    private var model: RealNVP<Float>?
    /// The training state of the last checkpoint (its arrays' storage reused).
    private var state: TrainingState?
    /// The last checkpoint's file bytes.
    private var checkpointBytes: [UInt8] = []
    /// The last best model's file bytes.
    private var bestBytes: [UInt8] = []

    /// The bytes of the trainer's checkpoint (model and training state, after `synchronizeOptimizerState()`),
    /// checked as ``Checkpoint/checkedBytes(for:)`` does.
    /// - Throws: ``FlowIOError`` naming `path` when a parameter or moment is not finite.
    mutating func checkpoint(of trainer: DataParallelTrainer, metadata: [String: String], path: String) throws -> [UInt8] {
        trainer.copyModel(into: &model)
        trainer.copyState(into: &state)
        try Checkpoint(model: model!, state: state, training: trainer.configuration, metadata: metadata)
            .checkedBytes(for: path, into: &checkpointBytes)
        return checkpointBytes
    }

    /// The bytes of `best` (a checkpoint without training state), checked.
    /// - Throws: ``FlowIOError`` naming `path` when a parameter is not finite.
    mutating func best(_ best: Checkpoint, path: String) throws -> [UInt8] {
        try best.checkedBytes(for: path, into: &bestBytes)
        return bestBytes
    }
}
