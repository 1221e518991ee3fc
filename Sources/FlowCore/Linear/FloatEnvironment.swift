import CFloatEnv

/// Per-thread floating-point environment.
///
/// Adam's second-moment estimates of weights whose gradient stays zero decay geometrically into the
/// subnormal range, where every x86 arithmetic instruction is ~100× slower. Flush-to-zero and
/// denormals-are-zero (MXCSR FTZ|DAZ on x86-64, FPCR.FZ on AArch64) remove that cliff; they are per-thread
/// state, so every thread that computes calls ``enableFlushToZero()`` before its first step.
public enum FloatEnvironment {
    /// Turns on flush-to-zero and denormals-are-zero for the calling thread.
    @inline(__always)
    public static func enableFlushToZero() { flow_enable_flush_to_zero() }

    /// Restores IEEE gradual underflow for the calling thread.
    public static func disableFlushToZero() { flow_disable_flush_to_zero() }

    /// Whether the calling thread flushes subnormals to zero.
    public static var flushesToZero: Bool { flow_flush_to_zero_enabled() != 0 }
}
