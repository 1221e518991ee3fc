#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif
import RealModule

/// The floating-point types the flow math runs in: `Float` (training, checkpoints) and `Double`
/// (reference checks, finite-difference gradient tests).
///
/// Elementary functions (`exp`, `log`, `tanh`, …) come from swift-numerics' `Real`; matrix products go
/// to the system BLAS (OpenBLAS on Linux, Accelerate on Apple platforms).
public protocol FlowScalar: Real, BinaryFloatingPoint, Sendable, Codable
where RawSignificand: FixedWidthInteger, Stride == Self {
    /// Row-major general matrix product `C ← α·op(A)·op(B) + β·C`, with `op(A)` of shape `[m, k]` and
    /// `op(B)` of shape `[k, n]`; `lda`, `ldb`, `ldc` are the row strides (elements) of the stored
    /// matrices. BLAS `?gemm` (CBLAS, `CblasRowMajor`).
    static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Self, a: UnsafePointer<Self>, lda: Int,
        b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)

    /// The safetensors dtype string of this type (`"F32"`, `"F64"`).
    static var safetensorsDType: String { get }
}

extension Float: FlowScalar {
    @inlinable
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    public static var safetensorsDType: String { "F32" }
}

extension Double: FlowScalar {
    @inlinable
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Double, a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    public static var safetensorsDType: String { "F64" }
}
