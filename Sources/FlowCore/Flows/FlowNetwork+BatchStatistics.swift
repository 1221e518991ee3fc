/// One pass of a training step with batch statistics: `rows` rows already loaded into `workspace` by
/// ``FlowNetwork/loadInput(_:rows:workspace:)``, their gradient buffer `[storageCount]`, and the ``BatchStatisticsReducer``
/// slot their partial statistics go to.
public struct BatchPass<Scalar: FlowScalar>: @unchecked Sendable {
    /// Rows of the pass (≤ the workspace's capacity).
    public var rows: Int
    /// The pass's activations.
    public var workspace: FlowWorkspace<Scalar>
    /// Where the pass's parameter gradients go `[storageCount]` (overwritten).
    public var gradient: UnsafeMutablePointer<Scalar>
    /// The reducer slot of the pass's partial statistics.
    public var slot: Int

    /// A pass of `rows` rows in `workspace`, its gradient into `gradient`, its statistics into slot `slot`.
    public init(rows: Int, workspace: FlowWorkspace<Scalar>, gradient: UnsafeMutablePointer<Scalar>, slot: Int) {
        self.rows = rows
        self.workspace = workspace
        self.gradient = gradient
        self.slot = slot
    }
}

extension FlowNetwork {
    /// The training forward pass of a chain with batch statistics, over every pass a worker holds of a step
    /// (``BatchPass``; one in the default modes, one per micro-batch in exact mode), transform by transform: every
    /// pass goes through transform i before any goes through i + 1, and at a ``BatchStatisticsTransform`` the passes'
    /// partial sums go to `statistics`, whose ``BatchStatisticsReducer/reduce(worker:count:record:)`` waits for every
    /// worker of every rank and returns the global batch's totals. Every worker of the step must call it, with no
    /// passes if it has no rows. Afterwards each pass's workspace holds z and the per-row log-det as after
    /// ``forward(_:rows:parameters:workspace:)``.
    public func forwardWithBatchStatistics(
        _ passes: [BatchPass<Scalar>], worker: Int, parameters p: UnsafePointer<Scalar>, statistics: any BatchStatisticsReducer
    ) {
        var ordinal = 0
        for (i, f) in transforms.enumerated() {
            if let b = f.batchStatistics {
                for pass in passes { b.forwardStatistics(pass.workspace[values[i]], pass.rows, statistics.partials(slot: pass.slot)) }
                let totals = statistics.reduce(worker: worker, count: b.count, record: ordinal)
                ordinal += 1
                for pass in passes {
                    let ws = pass.workspace
                    b.forward(ws[values[i]], pass.rows, totals, p, ws, ws[values[i + 1]], ws[logDetBuffer])
                }
            } else {
                for pass in passes {
                    let ws = pass.workspace
                    f.forward(ws[values[i]], rows: pass.rows, parameters: p, workspace: ws, output: ws[values[i + 1]],
                              logDet: ws[logDetBuffer])
                }
            }
        }
    }

    /// The backward pass of the summed NLL after ``forwardWithBatchStatistics(_:worker:parameters:statistics:)`` on the
    /// same passes (dL/dz = z, dL/d(log-det) = −1), transform by transform from the last down, the batch-statistics
    /// transforms' sums of dL/dy reduced like the forward's. Each pass's parameter gradients overwrite its
    /// ``BatchPass/gradient``; `bucketDone(b)` is called as each transform's bucket is final on every pass.
    public func backwardNLLWithBatchStatistics(
        _ passes: [BatchPass<Scalar>], worker: Int, parameters p: UnsafePointer<Scalar>, statistics: any BatchStatisticsReducer,
        bucketDone: ((Int) -> Void)? = nil
    ) {
        for pass in passes {
            let ws = pass.workspace
            ws[dCurrent].update(from: latent(in: ws), count: pass.rows * dim)  // dL/dz = z
            if let context { ws[context.gradient].update(repeating: 0, count: pass.rows * context.features) }
        }
        // dL/dy of transform i is in dCurrent when `flipped` is false, else in dNext (the single pass's ping-pong).
        var flipped = false
        for i in stride(from: transforms.count - 1, through: firstTrainable, by: -1) {
            let wantDx = i > firstTrainable, f = transforms[i]
            if let b = f.batchStatistics {
                for pass in passes {
                    let ws = pass.workspace
                    b.backwardStatistics(ws[flipped ? dNext : dCurrent], ws[values[i]], pass.rows, ws, statistics.partials(slot: pass.slot))
                }
                let totals = statistics.reduce(worker: worker, count: b.count, record: nil)
                for pass in passes {
                    let ws = pass.workspace
                    b.backward(ws[flipped ? dNext : dCurrent], -1, ws[values[i]], pass.rows, totals, p, pass.gradient, false, ws,
                               wantDx ? ws[flipped ? dCurrent : dNext] : nil)
                }
            } else {
                for pass in passes {
                    let ws = pass.workspace
                    f.backward(ws[flipped ? dNext : dCurrent], dLogDet: -1, input: ws[values[i]], rows: pass.rows, parameters: p,
                               gradient: pass.gradient, accumulate: false, workspace: ws, dx: wantDx ? ws[flipped ? dCurrent : dNext] : nil)
                }
            }
            if let bucket = layout.bucketOfTransform[i] { bucketDone?(bucket) }
            flipped.toggle()
        }
    }

    /// The fewest rows a training batch needs for every batch-statistics transform (1 without any).
    public var batchStatisticsMinimumRows: Int { transforms.reduce(1) { max($0, $1.batchStatistics?.minimumRows ?? 1) } }

    /// The name of the first batch-statistics transform whose batch statistics (forward totals of the step, k-th such
    /// transform: `forwardTotals(k)`) or updated running averages would not be finite in `Scalar`; nil when all are.
    public func nonFiniteBatchStatistics(parameters p: UnsafePointer<Scalar>, forwardTotals: (Int) -> UnsafePointer<Double>) -> String? {
        var ordinal = 0
        for f in transforms {
            guard let b = f.batchStatistics else { continue }
            if !b.runningAveragesStayFinite(forwardTotals(ordinal), p) { return f.name }
            ordinal += 1
        }
        return nil
    }

    /// After a training step: every batch-statistics transform's running averages in `p` move towards the forward
    /// totals of that step (`forwardTotals(k)` for the k-th such transform in chain order). The same on every rank.
    public func updateRunningAverages(parameters p: UnsafeMutablePointer<Scalar>, forwardTotals: (Int) -> UnsafePointer<Double>) {
        var ordinal = 0
        for f in transforms {
            guard let b = f.batchStatistics else { continue }
            b.updateRunningAverages(forwardTotals(ordinal), p)
            ordinal += 1
        }
    }
}
