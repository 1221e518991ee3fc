/// An error reading or writing one of FlowCore's file formats (CSV, NPY, safetensors) or a file on disk.
///
/// The ``description`` follows the compiler convention `path:line: column N: message`, with the line and
/// column parts present only when they are known, for example
/// `data.csv:7: column 3: expected a number, found "abc"` or
/// `model.safetensors: header length 1234567 exceeds the file size (120 bytes)`.
public struct FlowIOError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file the error is about, exactly as the caller spelled it (or the name passed to a `parse` function).
    public var path: String
    /// The 1-based line number in a text file (CSV), or `nil` when the error is not about one line.
    public var line: Int?
    /// The 1-based column (field index in a CSV line), or `nil` when the error is not about one column.
    public var column: Int?
    /// What is wrong, naming the offending value, key, tensor or limit; never ends with a period.
    public var message: String

    /// Creates an error; `line` and `column` are 1-based and optional.
    public init(path: String, line: Int? = nil, column: Int? = nil, message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
    }

    /// `path:line: column N: message`, omitting the parts that are `nil`.
    public var description: String {
        var text = path
        if let line { text += ":\(line)" }
        text += ": "
        if let column { text += "column \(column): " }
        text += message
        return text
    }
}
