/// Every activation and scratch buffer one worker needs to run a flow's forward and backward pass on up to
/// `capacity` rows, as declared by its transforms (``WorkspaceLayout``), allocated once in one block with every
/// buffer 64-byte aligned, and reused by every step.
///
/// Example: a coupling declares `let hidden = builder.buffer("couplings.0.s.act.0", perRow: H)` when the flow is
/// built, and reads `workspace[hidden]` (`[capacity, H]`) in its passes.
public final class FlowWorkspace<Scalar: FlowScalar>: @unchecked Sendable {
    /// Maximum rows per pass.
    public let capacity: Int
    /// The buffers' declarations.
    public let layout: WorkspaceLayout
    let storage: AlignedBuffer<Scalar>
    let offsets: [Int]

    /// Allocates the buffers of `layout` for up to `capacity` rows per pass.
    public init(layout: WorkspaceLayout, capacity: Int) {
        precondition(capacity >= 1)
        // Parallelism comes from our workers: BLAS itself stays single-threaded (its threaded path also
        // allocates per call).
        BLASRuntime.useSingleThread()
        self.capacity = capacity
        self.layout = layout
        var offsets: [Int] = []
        var total = 0
        for i in 0..<layout.bufferCount {
            offsets.append(total)
            total += (layout.count(i, capacity: capacity) + 15) / 16 * 16
        }
        self.offsets = offsets
        storage = AlignedBuffer(count: max(total, 1))
    }

    /// Bytes held by this workspace.
    public var byteCount: Int { storage.count * MemoryLayout<Scalar>.stride }

    /// The first element of `buffer`.
    @inline(__always) public subscript(_ buffer: WorkspaceBuffer) -> UnsafeMutablePointer<Scalar> {
        storage.base + offsets[buffer.index]
    }
}
