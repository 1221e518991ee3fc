/// The element types of the safetensors format, spelled as in the file's JSON header (`"dtype": "F32"`).
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    /// IEEE 754 binary64, 8 bytes, little-endian.
    case F64
    /// IEEE 754 binary32, 4 bytes, little-endian.
    case F32
    /// IEEE 754 binary16, 2 bytes, little-endian (read only as raw bytes).
    case F16
    /// bfloat16, 2 bytes, little-endian (read only as raw bytes).
    case BF16
    /// Signed 64-bit integer, little-endian.
    case I64
    /// Signed 32-bit integer, little-endian.
    case I32
    /// Signed 16-bit integer, little-endian.
    case I16
    /// Signed 8-bit integer.
    case I8
    /// Unsigned 64-bit integer, little-endian.
    case U64
    /// Unsigned 32-bit integer, little-endian.
    case U32
    /// Unsigned 16-bit integer, little-endian.
    case U16
    /// Unsigned 8-bit integer.
    case U8
    /// Boolean, 1 byte (0 or 1).
    case BOOL

    /// The size of one element in bytes (1, 2, 4 or 8).
    public var byteSize: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL: return 1
        }
    }
}
