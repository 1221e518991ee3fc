#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif
import CFlowSupport
import RealModule

/// The floating-point types the flow math runs in: `Float` (training, checkpoints) and `Double`
/// (reference checks, finite-difference gradient tests).
///
/// Elementary functions (`exp`, `log`, `tanh`, …) come from swift-numerics' `Real`; matrix products go
/// to the system BLAS (OpenBLAS on Linux, Accelerate on Apple platforms).
public protocol FlowScalar: Real, BinaryFloatingPoint, SIMDScalar, Sendable, Codable
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

    /// One Adam update of `count` parameters (see ``AdamState``), with the gradient taken as
    /// (g + g2)·`gradientScale` + 2·`l2`·p (g2 optional). Vectorised C for Float; a plain loop for Double.
    static func adamUpdate(
        parameters p: UnsafeMutablePointer<Self>, gradient g: UnsafePointer<Self>, secondGradient g2: UnsafePointer<Self>?,
        firstMoment m: UnsafeMutablePointer<Self>, secondMoment v: UnsafeMutablePointer<Self>, count: Int,
        beta1: Self, beta2: Self, stepSize: Self, inverseSqrtBiasCorrection2: Self, epsilon: Self,
        gradientScale: Self, l2: Self)
}

extension FlowScalar {
    /// The reference loop of ``FlowScalar/adamUpdate(parameters:gradient:firstMoment:secondMoment:count:beta1:beta2:stepSize:inverseSqrtBiasCorrection2:epsilon:gradientScale:l2:)``.
    @inlinable
    public static func adamUpdateLoop(
        parameters p: UnsafeMutablePointer<Self>, gradient g: UnsafePointer<Self>, secondGradient g2: UnsafePointer<Self>?,
        firstMoment m: UnsafeMutablePointer<Self>, secondMoment v: UnsafeMutablePointer<Self>, count: Int,
        beta1: Self, beta2: Self, stepSize: Self, inverseSqrtBiasCorrection2: Self, epsilon: Self,
        gradientScale: Self, l2: Self
    ) {
        let ob1 = 1 - beta1, ob2 = 1 - beta2, twoL2 = 2 * l2
        for e in 0..<count {
            let sum = g2.map { g[e] + $0[e] } ?? g[e]
            let ge = sum * gradientScale + twoL2 * p[e]
            let me = beta1 * m[e] + ob1 * ge
            let ve = beta2 * v[e] + ob2 * ge * ge
            m[e] = me
            v[e] = ve
            p[e] -= stepSize * me / (ve.squareRoot() * inverseSqrtBiasCorrection2 + epsilon)
        }
    }
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

    @inlinable
    public static func adamUpdate(
        parameters p: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>, secondGradient g2: UnsafePointer<Float>?,
        firstMoment m: UnsafeMutablePointer<Float>, secondMoment v: UnsafeMutablePointer<Float>, count: Int,
        beta1: Float, beta2: Float, stepSize: Float, inverseSqrtBiasCorrection2: Float, epsilon: Float,
        gradientScale: Float, l2: Float
    ) {
        if let g2 {
            flow_adam_update2_f32(p, g, g2, m, v, count, beta1, beta2, stepSize, inverseSqrtBiasCorrection2, epsilon, gradientScale, l2)
        } else {
            flow_adam_update_f32(p, g, m, v, count, beta1, beta2, stepSize, inverseSqrtBiasCorrection2, epsilon, gradientScale, l2)
        }
    }
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

    @inlinable
    public static func adamUpdate(
        parameters p: UnsafeMutablePointer<Double>, gradient g: UnsafePointer<Double>, secondGradient g2: UnsafePointer<Double>?,
        firstMoment m: UnsafeMutablePointer<Double>, secondMoment v: UnsafeMutablePointer<Double>, count: Int,
        beta1: Double, beta2: Double, stepSize: Double, inverseSqrtBiasCorrection2: Double, epsilon: Double,
        gradientScale: Double, l2: Double
    ) {
        adamUpdateLoop(parameters: p, gradient: g, secondGradient: g2, firstMoment: m, secondMoment: v, count: count, beta1: beta1, beta2: beta2,
                       stepSize: stepSize, inverseSqrtBiasCorrection2: inverseSqrtBiasCorrection2, epsilon: epsilon,
                       gradientScale: gradientScale, l2: l2)
    }
}
