/// Byte-level helpers shared by the readers: UTF-8 validation and hex formatting for error messages.
enum FlowIOBytes {
    /// The offset of the first byte that makes `bytes` invalid UTF-8 (a bad lead byte, a missing or bad
    /// continuation byte, an overlong form, a surrogate, a value above U+10FFFF, or a sequence cut off by the
    /// end), or `nil` when all of `bytes` is valid UTF-8.
    static func firstInvalidUTF8Offset(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        let count = bytes.count
        var i = 0
        while i < count {
            let lead = bytes[i]
            if lead < 0x80 { i += 1; continue }
            let length: Int
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return i
            }
            guard i + 1 < count, bytes[i + 1] >= low, bytes[i + 1] <= high else { return i }
            for k in 2..<length {
                guard i + k < count, bytes[i + k] & 0xC0 == 0x80 else { return i }
            }
            i += length
        }
        return nil
    }

    /// The offset of the first invalid byte in `bytes` (see the pointer version), or `nil` when valid UTF-8.
    static func firstInvalidUTF8Offset(_ bytes: ArraySlice<UInt8>) -> Int? {
        bytes.withUnsafeBufferPointer { FlowIOBytes.firstInvalidUTF8Offset($0) }
    }

    /// Two hex digits for a byte, e.g. `0x0A` → "0A".
    static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}
