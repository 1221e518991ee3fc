import Foundation

/// Decoding a JSON file that a user may have edited by hand (a run's `config.json`), with messages that name the
/// key and the value instead of Foundation's `DecodingError` dump.
///
/// Messages read `options.checkpoint_every: expected a whole number, found 2.5`,
/// `training.model.hidden: expected a whole number, found the string "x"`, `training.seed is missing`, or for a
/// syntax error `not valid JSON: …` with Foundation's line and column.
///
/// Example:
/// ```swift
/// let config = try JSONFile.decode(RunDirectory.RunConfig.self, from: data, path: "run/config.json")
/// ```
public enum JSONFile {
    /// Decodes a `T` from `data`, the contents of `path`.
    /// - Parameters:
    ///   - type: the type to decode.
    ///   - data: the file's bytes (UTF-8 JSON).
    ///   - path: the file's name as the user spelled it, for the message.
    /// - Returns: the decoded value.
    /// - Throws: ``FlowIOError`` naming `path`, the key path and what is wrong (see the type's documentation).
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw FlowIOError(path: path, message: describe(error, type: type, data: data))
        }
    }

    /// What is wrong with `data`, one line, from the decoder's `error`.
    static func describe<T: Decodable>(_ error: DecodingError, type: T.Type, data: Data) -> String {
        var tree: Any?, syntaxError: NSError?
        do { tree = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch { syntaxError = error as NSError }
        switch error {
        case .typeMismatch(let expected, let context):
            return "\(keyPath(context.codingPath)): expected \(typeName(expected)), found \(describeValue(at: context.codingPath, in: tree))"
        case .valueNotFound(let expected, let context):
            return "\(keyPath(context.codingPath)): expected \(typeName(expected)), found null"
        case .keyNotFound(let key, let context):
            return "\(keyPath(context.codingPath + [key])) is missing"
        case .dataCorrupted(let context):
            if !context.codingPath.isEmpty { return "\(keyPath(context.codingPath)): \(context.debugDescription)" }
            guard let tree else { return "not valid JSON: " + syntaxMessage(syntaxError, data: data) }
            // The text parses: Foundation reports a number that does not fit its field (2.5 or 1e30 for an Int, -1
            // for a UInt64) as invalid JSON at the root. Find it by replacing each suspect number in turn.
            if let culprit = fractionalCulprit(in: tree, type: type) {
                let negative = culprit.value.hasPrefix("-") && !culprit.value.contains(".") && !culprit.value.contains("e")
                return "\(keyPath(culprit.path)): expected a whole number\(negative ? " ≥ 0" : ""), found \(culprit.value)"
            }
            return context.debugDescription
        @unknown default:
            return "\(error)"
        }
    }

    /// Foundation's syntax error with its character offset as a line and column: "Invalid value around character
    /// 57" becomes "invalid value at line 4, column 21".
    static func syntaxMessage(_ error: NSError?, data: Data) -> String {
        guard let detail = error?.userInfo[NSDebugDescriptionErrorKey] as? String else { return "a syntax error" }
        guard let range = detail.range(of: "around character "),
              let offset = Int(detail[range.upperBound...].prefix { $0.isNumber }), offset <= data.count else { return detail }
        let before = data.prefix(offset)
        let line = before.filter { $0 == 10 }.count + 1
        let column = offset - (before.lastIndex(of: 10).map { $0 + 1 } ?? 0) + 1
        var what = String(detail[..<range.lowerBound]).trimmingCharacters(in: .whitespaces)
        what = what.prefix(1).lowercased() + what.dropFirst()
        return "\(what) at line \(line), column \(column)"
    }

    /// Whether a JSON value from `JSONSerialization` is `true` or `false` (an `NSNumber` of type `c`), not a number.
    static func isBool(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }

    /// The first non-integral, out-of-range or negative number whose replacement by 0 makes the root-level error go
    /// away.
    static func fractionalCulprit<T: Decodable>(in tree: Any, type: T.Type) -> (path: [any CodingKey], value: String)? {
        for (path, value) in numbers(in: tree, path: []) {
            // Fractional, beyond Int, or negative (for an unsigned field such as a seed).
            guard value != value.rounded() || abs(value) > 9.0e15 || value < 0 else { continue }
            let replaced = replacing(in: tree, path: path, with: NSNumber(value: 0))
            guard let bytes = try? JSONSerialization.data(withJSONObject: replaced, options: [.fragmentsAllowed]) else { continue }
            do {
                _ = try JSONDecoder().decode(type, from: bytes)
                return (path, format(value))
            } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
                continue  // still the same kind of failure: not this number (or not only it)
            } catch {
                return (path, format(value))
            }
        }
        return nil
    }

    /// Every number of `tree` with its key path, in document order (object keys sorted).
    static func numbers(in tree: Any, path: [any CodingKey]) -> [([any CodingKey], Double)] {
        if let object = tree as? [String: Any] {
            return object.keys.sorted().flatMap { numbers(in: object[$0]!, path: path + [Key(stringValue: $0)]) }
        }
        if let array = tree as? [Any] {
            return array.enumerated().flatMap { numbers(in: $0.element, path: path + [Key(intValue: $0.offset)]) }
        }
        if isBool(tree) { return [] }
        if let number = tree as? NSNumber { return [(path, number.doubleValue)] }
        return []
    }

    /// `tree` with the value at `path` replaced by `value`.
    static func replacing(in tree: Any, path: [any CodingKey], with value: Any) -> Any {
        guard let first = path.first else { return value }
        let rest = Array(path.dropFirst())
        if var object = tree as? [String: Any], let child = object[first.stringValue] {
            object[first.stringValue] = replacing(in: child, path: rest, with: value)
            return object
        }
        if var array = tree as? [Any], let i = first.intValue, array.indices.contains(i) {
            array[i] = replacing(in: array[i], path: rest, with: value)
            return array
        }
        return tree
    }

    /// The JSON value at `path`, described for a message: `2.5`, `the string "x"`, `an object`, `null`.
    static func describeValue(at path: [any CodingKey], in tree: Any?) -> String {
        var node = tree
        for key in path {
            if let object = node as? [String: Any] { node = object[key.stringValue] }
            else if let array = node as? [Any], let i = key.intValue, array.indices.contains(i) { node = array[i] }
            else { return "a value of another type" }
        }
        switch node {
        case let s as String: return "the string \"\(s)\""
        case is [String: Any]: return "an object"
        case is [Any]: return "an array"
        case is NSNull: return "null"
        case let n as NSNumber: return isBool(n) ? (n.boolValue ? "true" : "false") : format(n.doubleValue)
        default: return "a value of another type"
        }
    }

    /// `options.checkpoint_every`, `training.schedule.steps[2]`; `the top level` for the root.
    static func keyPath(_ path: [any CodingKey]) -> String {
        var text = ""
        for key in path {
            if let i = key.intValue, key.stringValue == "Index \(i)" || key.stringValue == "\(i)" { text += "[\(i)]" }
            else { text += (text.isEmpty ? "" : ".") + key.stringValue }
        }
        return text.isEmpty ? "the top level" : text
    }

    /// The expected type in words.
    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt64.Type, is UInt32.Type, is UInt.Type: return "a whole number"
        case is Double.Type, is Float.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") || name.hasPrefix("[") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object (\(name))"
        }
    }

    /// A number as JSON would show it: `3`, `2.5`, `1e+30`.
    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }

    /// A coding key built from a JSON object's key or an array index.
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(stringValue: String) { self.stringValue = stringValue; intValue = nil }
        init(intValue: Int) { stringValue = "Index \(intValue)"; self.intValue = intValue }
    }
}
