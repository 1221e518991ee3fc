/// A named buffer of a ``FlowWorkspace``: `perRow` elements for each of the workspace's rows plus `fixed`
/// elements, 64-byte aligned. Obtained from ``WorkspaceLayout/Builder`` while a flow is built; read with
/// ``FlowWorkspace/subscript(_:)``.
public struct WorkspaceBuffer: Hashable, Sendable {
    /// Index into the workspace's table of buffers.
    let index: Int
}

/// The buffers every transform of a flow needs for a forward and backward pass, declared by the transforms
/// themselves (each names what it keeps and what scratch it uses) and allocated once per worker by
/// ``FlowWorkspace``.
///
/// Two kinds: a transform's own buffers (``Builder/buffer(_:perRow:)``: what its backward pass reads, e.g. a
/// coupling's hidden activations) and scratch shared by name among transforms that use it only inside one call
/// (``Builder/scratch(_:perRow:fixed:)``: e.g. the dense layers' backward ping-pong), sized for the largest
/// request.
public struct WorkspaceLayout: Hashable, Sendable {
    /// Name, elements per row and fixed elements of every buffer.
    let names: [String]
    let perRow: [Int]
    let fixed: [Int]

    /// Collects buffer declarations while a flow's transforms are built.
    public struct Builder: Sendable {
        var names: [String] = []
        var perRow: [Int] = []
        var fixed: [Int] = []
        var shared: [String: Int] = [:]

        /// An empty layout.
        public init() {}

        /// A buffer of `perRow` elements per row owned by one transform (`name` is for diagnostics, e.g.
        /// `couplings.2.s.act.0`).
        public mutating func buffer(_ name: String, perRow: Int) -> WorkspaceBuffer {
            names.append(name); self.perRow.append(perRow); fixed.append(0)
            return WorkspaceBuffer(index: names.count - 1)
        }

        /// Scratch shared by every transform that asks for `name`: `perRow` elements per row plus `fixed`, the
        /// largest request wins. Valid only within one call of a transform.
        public mutating func scratch(_ name: String, perRow: Int, fixed: Int = 0) -> WorkspaceBuffer {
            if let i = shared[name] {
                self.perRow[i] = max(self.perRow[i], perRow)
                self.fixed[i] = max(self.fixed[i], fixed)
                return WorkspaceBuffer(index: i)
            }
            names.append(name); self.perRow.append(perRow); self.fixed.append(fixed)
            shared[name] = names.count - 1
            return WorkspaceBuffer(index: names.count - 1)
        }

        /// The finished layout.
        public func layout() -> WorkspaceLayout { WorkspaceLayout(names: names, perRow: perRow, fixed: fixed) }
    }

    /// Elements of buffer `i` in a workspace of `capacity` rows.
    func count(_ i: Int, capacity: Int) -> Int { perRow[i] * capacity + fixed[i] }

    /// Number of buffers.
    public var bufferCount: Int { names.count }

    /// Elements per row over every buffer (the fixed parts aside): what one more row of capacity costs.
    public var elementsPerRow: Int { perRow.reduce(0, +) }
}
