/// A Python literal as found in a NumPy `.npy` header: `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }`.
indirect enum PythonLiteral: Equatable {
    case string(String)
    /// An integer (a trailing `L` from Python 2 is accepted): its value, `nil` when it does not fit in `Int`,
    /// and its digits as written.
    case integer(Int?, text: String)
    case boolean(Bool)
    case none
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    /// Keys in file order; a later duplicate key replaces an earlier one when looked up with ``value(for:)``.
    case dictionary([(key: PythonLiteral, value: PythonLiteral)])

    static func == (lhs: PythonLiteral, rhs: PythonLiteral) -> Bool { lhs.repr == rhs.repr }

    /// Python's `repr`-like text, used in error messages, e.g. `(3, 2)`, `(5,)`, `'<f4'`.
    var repr: String {
        switch self {
        case .string(let text): return "'\(text)'"
        case .integer(_, let text): return text
        case .boolean(let value): return value ? "True" : "False"
        case .none: return "None"
        case .tuple(let items):
            return items.count == 1 ? "(\(items[0].repr),)" : "(" + items.map(\.repr).joined(separator: ", ") + ")"
        case .list(let items): return "[" + items.map(\.repr).joined(separator: ", ") + "]"
        case .dictionary(let pairs): return "{" + pairs.map { "\($0.key.repr): \($0.value.repr)" }.joined(separator: ", ") + "}"
        }
    }
}

/// A failure to parse a Python literal: what was expected and the byte offset (0-based) where.
struct PythonLiteralError: Error {
    var message: String
    var offset: Int
}

/// Parses the Python literals NumPy writes in `.npy` headers: dicts, tuples, lists, strings (`'..'` or `".."`
/// with backslash escapes), integers, `True`, `False`, `None`. Nesting is limited to 32 levels.
struct PythonLiteralParser {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Parses `bytes` as exactly one literal surrounded by optional whitespace.
    static func parse(_ bytes: [UInt8]) throws(PythonLiteralError) -> PythonLiteral {
        var parser = PythonLiteralParser(bytes)
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.position != bytes.count {
            throw PythonLiteralError(message: "unexpected text after the dictionary", offset: parser.position)
        }
        return value
    }

    private mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    private func fail(_ message: String) -> PythonLiteralError { PythonLiteralError(message: message, offset: position) }

    private mutating func parseValue(depth: Int) throws(PythonLiteralError) -> PythonLiteral {
        guard depth < 32 else { throw fail("nesting deeper than 32 levels") }
        skipWhitespace()
        guard position < bytes.count else { throw fail("unexpected end of header, expected a value") }
        switch bytes[position] {
        case 0x7B:  // {
            position += 1
            var pairs: [(key: PythonLiteral, value: PythonLiteral)] = []
            while true {
                skipWhitespace()
                if position < bytes.count && bytes[position] == 0x7D { position += 1; break }
                let key = try parseValue(depth: depth + 1)
                skipWhitespace()
                guard position < bytes.count, bytes[position] == 0x3A else { throw fail("expected ':' after key \(key.repr)") }
                position += 1
                let value = try parseValue(depth: depth + 1)
                pairs.append((key, value))
                skipWhitespace()
                guard position < bytes.count else { throw fail("unexpected end of header, expected ',' or '}'") }
                if bytes[position] == 0x2C { position += 1; continue }
                guard bytes[position] == 0x7D else { throw fail("expected ',' or '}'") }
                position += 1
                break
            }
            return .dictionary(pairs)
        case 0x28, 0x5B:  // ( [
            let isTuple = bytes[position] == 0x28
            let close: UInt8 = isTuple ? 0x29 : 0x5D
            position += 1
            var items: [PythonLiteral] = []
            var sawComma = false
            while true {
                skipWhitespace()
                if position < bytes.count && bytes[position] == close { position += 1; break }
                items.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard position < bytes.count else { throw fail("unexpected end of header, expected ',' or '\(isTuple ? ")" : "]")'") }
                if bytes[position] == 0x2C { position += 1; sawComma = true; continue }
                guard bytes[position] == close else { throw fail("expected ',' or '\(isTuple ? ")" : "]")'") }
                position += 1
                break
            }
            // `(3)` is just the integer 3 in Python, not a tuple.
            if isTuple && items.count == 1 && !sawComma { return items[0] }
            return isTuple ? .tuple(items) : .list(items)
        case 0x27, 0x22:  // ' "
            return .string(try parseString())
        case 0x2D, 0x30...0x39:
            let start = position
            let value = try parseInteger()
            let digits = bytes[start..<position].filter { $0 != 0x4C && $0 != 0x6C }
            return .integer(value, text: String(decoding: digits, as: UTF8.self))
        default:
            for (word, value) in [("True", PythonLiteral.boolean(true)), ("False", .boolean(false)), ("None", .none)] {
                let utf8 = Array(word.utf8)
                if bytes.count - position >= utf8.count && Array(bytes[position..<(position + utf8.count)]) == utf8 {
                    position += utf8.count
                    return value
                }
            }
            throw fail("unexpected character '\(Character(Unicode.Scalar(bytes[position])))'")
        }
    }

    private mutating func parseString() throws(PythonLiteralError) -> String {
        let quote = bytes[position]
        position += 1
        var content: [UInt8] = []
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            if byte == quote { return String(decoding: content, as: UTF8.self) }
            if byte == 0x0A { break }
            if byte == 0x5C {  // backslash: keep the next byte literally
                guard position < bytes.count else { break }
                content.append(bytes[position])
                position += 1
            } else {
                content.append(byte)
            }
        }
        throw fail("unterminated string")
    }

    private mutating func parseInteger() throws(PythonLiteralError) -> Int? {
        var negative = false
        if bytes[position] == 0x2D {
            negative = true
            position += 1
        }
        var value = 0
        var overflow = false
        var digits = 0
        while position < bytes.count, bytes[position] &- 0x30 < 10 {
            let digit = Int(bytes[position] - 0x30)
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(negative ? -digit : digit)
            overflow = overflow || o1 || o2
            value = sum
            digits += 1
            position += 1
        }
        guard digits > 0 else { throw fail("expected digits after '-'") }
        if position < bytes.count && (bytes[position] == 0x4C || bytes[position] == 0x6C) { position += 1 }  // 3L
        if position < bytes.count, bytes[position] == 0x2E || bytes[position] == 0x65 || bytes[position] == 0x45 {
            throw fail("expected an integer, found a floating-point number")
        }
        return overflow ? nil : value
    }
}
