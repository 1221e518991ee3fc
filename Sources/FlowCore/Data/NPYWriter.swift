/// Writes 2-D float32 arrays as NumPy `.npy` files, byte-for-byte as `numpy.save` writes them.
public enum NPYWriter {
    /// Writes `values` (shape `[rows, columns]`, row-major) to `path` as an `.npy` file, atomically
    /// (see ``AtomicFile``).
    ///
    /// The file is format version 1.0 with dtype `'<f4'` (little-endian float32), `fortran_order` `False` and
    /// shape `(rows, columns)`. The header dictionary is followed by the same spare spaces NumPy adds, padded
    /// with spaces and ended with `\n` so that the data starts at a multiple of 64 bytes. Values are written
    /// as they are (NaN and ±Inf included, though ``NPYReader`` rejects them).
    ///
    /// - Parameters:
    ///   - values: `rows * columns` numbers, row-major.
    ///   - rows: `>= 0`.
    ///   - columns: `>= 1`.
    ///   - path: the destination file.
    /// - Throws: ``FlowIOError`` when `values.count != rows * columns`, the shape is invalid, or writing fails.
    public static func write(_ values: [Float], rows: Int, columns: Int, to path: String) throws(FlowIOError) {
        try TabularData.checkShape(count: values.count, rows: rows, columns: columns, path: path)
        var output = header(descr: "<f4", rows: rows, columns: columns)
        output.reserveCapacity(output.count + values.count * 4)
        for value in values {
            let bits = value.bitPattern.littleEndian
            withUnsafeBytes(of: bits) { output.append(contentsOf: $0) }
        }
        try AtomicFile.write(output, to: path)
    }

    /// The complete version 1.0 header (magic, version, length, dictionary, padding, `\n`) for a C-order
    /// 2-D array; its length is a multiple of 64.
    static func header(descr: String, rows: Int, columns: Int) -> [UInt8] {
        var dictionary = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
        // NumPy leaves room for the first dimension to grow to 21 digits when appending in place.
        dictionary += String(repeating: " ", count: max(0, 21 - String(rows).count))
        let lengthWithNewline = dictionary.utf8.count + 1
        let padding = 64 - (10 + lengthWithNewline) % 64
        let headerLength = lengthWithNewline + padding
        var bytes: [UInt8] = NPYReader.magic + [1, 0, UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)]
        bytes += Array(dictionary.utf8)
        bytes += [UInt8](repeating: 0x20, count: padding)
        bytes.append(0x0A)
        return bytes
    }
}
