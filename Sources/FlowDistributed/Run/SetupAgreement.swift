/// The set-up phase's one collective: every rank contributes either the outcome of its own checks (a payload) or its
/// error, and every rank learns all of them, so that all leave set-up together whichever rank failed.
///
/// Why one form: a rank that fails before a collective must still take part in the collective the others are in, or
/// they wait for it forever (and a mismatched collective pairs one rank's error message with another's payload).
/// So every collective of set-up goes through ``exchange(_:_:)``, and a rank that fails calls it with its error at
/// its next agreement point (``TrainingRun/resolve(_:communicator:)`` has two; the tool's error path, one). The wire
/// form is one tag byte (1: payload, 0: error message in UTF-8) and the bytes.
///
/// Example (two ranks, rank 1 cannot read its data file):
///
///     let outcome: Result<[UInt8], any Error> = Result { try localChecks() }
///     let payloads = try SetupAgreement.exchange(communicator, outcome)
///     // rank 0 and rank 1 both throw SetupFailure(messages: ["", "data.csv: …"])
public enum SetupAgreement {
    /// Gathers every rank's outcome (collective: every rank of `communicator` calls it at the same point).
    /// - Parameters:
    ///   - communicator: the job's ranks.
    ///   - outcome: this rank's payload, or the error that stopped it.
    /// - Returns: every rank's payload, indexed by rank, when no rank failed.
    /// - Throws: ``SetupFailure`` with every rank's message (the same on every rank) when any rank failed (a job of
    ///   one rank: its own error, as it is); ``CommunicatorError`` when the collective itself fails.
    public static func exchange(_ communicator: any Communicator, _ outcome: Result<[UInt8], any Error>) throws -> [[UInt8]] {
        if communicator.worldSize == 1, case .failure(let error) = outcome { throw error }  // as it is: nobody to tell
        let mine: [UInt8]
        switch outcome {
        case .success(let payload): mine = [1] + payload
        case .failure(let error): mine = [0] + Array(String(describing: error).utf8)
        }
        let all = communicator.worldSize > 1 ? try communicator.allgatherPerRank(mine) : [mine]
        if all.contains(where: { $0.first != 1 }) {
            throw SetupFailure(messages: all.map { $0.first == 1 ? "" : String(decoding: $0.dropFirst(), as: UTF8.self) })
        }
        return all.map { Array($0.dropFirst()) }
    }
}

/// Set-up errors of one or more ranks, known to every rank (gathered by ``SetupAgreement/exchange(_:_:)``).
public struct SetupFailure: Error, CustomStringConvertible, Sendable {
    /// Per rank (indexed by rank): its error message, or "" for a rank that had none.
    public var messages: [String]

    /// A failure with `messages`.
    public init(messages: [String]) { self.messages = messages }

    /// The distinct messages in rank order, each with the ranks that gave it (`rank 1: …`, `ranks 1,2: …`); no prefix
    /// when every rank gave the same message, or the job has one rank.
    public var lines: [String] {
        var ranksOf: [String: [Int]] = [:]
        var order: [String] = []
        for (r, m) in messages.enumerated() where !m.isEmpty {
            if ranksOf[m] == nil { order.append(m) }
            ranksOf[m, default: []].append(r)
        }
        return order.map { m in
            let ranks = ranksOf[m]!
            let prefix = messages.count == 1 || ranks.count == messages.count
                ? "" : "rank\(ranks.count > 1 ? "s" : "") \(ranks.map(String.init).joined(separator: ",")): "
            return prefix + m
        }
    }

    /// ``lines``, one per line.
    public var description: String { lines.joined(separator: "\n") }
}
