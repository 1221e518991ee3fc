/// A seeded train/validation split of a data set's rows.
public struct DataSplit: Sendable, Equatable {
    /// Row indices of the training split, in data-set order of the permutation.
    public var train: [Int]
    /// Row indices of the validation split.
    public var validation: [Int]

    /// Splits `rows` rows: a permutation from (seed, purpose `.split`); its last ⌊rows·fraction⌉ rows are the
    /// validation split (the seed's Keras example holds out 20%).
    public init(rows: Int, validationFraction: Double, seed: UInt64) {
        precondition(validationFraction >= 0 && validationFraction < 1)
        let perm = RandomStream(seed: seed, purpose: .split).permutation(rows)
        let nTrain = Self.trainingRows(rows, validationFraction: validationFraction)
        train = Array(perm[0..<nTrain])
        validation = Array(perm[nTrain...])
    }

    /// Rows of the training split of `rows` rows: rows − ⌊rows·fraction⌉ (half away from zero). The one formula
    /// for the split and for everything sized by it (steps per epoch, the cosine schedule's length).
    public static func trainingRows(_ rows: Int, validationFraction: Double) -> Int {
        rows - Int((Double(rows) * validationFraction).rounded())
    }
}
