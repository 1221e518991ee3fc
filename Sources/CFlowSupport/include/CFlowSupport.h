#ifndef CFLOWSUPPORT_H
#define CFLOWSUPPORT_H
/// Sets flush-to-zero and denormals-are-zero for the calling thread (MXCSR FTZ|DAZ on x86-64, FPCR.FZ on
/// AArch64). Per-thread state: every thread that computes must call it before its first step.
void flow_enable_flush_to_zero(void);
/// 1 when the calling thread flushes subnormal results to zero, else 0.
int flow_flush_to_zero_enabled(void);
/// The calling thread's floating-point control word (MXCSR on x86-64, FPCR on AArch64).
unsigned long long flow_get_float_control(void);
/// Restores a control word saved by flow_get_float_control().
void flow_set_float_control(unsigned long long value);
/// Restores IEEE gradual underflow for the calling thread (used by tests).
void flow_disable_flush_to_zero(void);
/// Number of CPUs in the calling thread's affinity mask (the cores mpirun's binding leaves this process),
/// or the online CPU count when the mask cannot be read.
int flow_affinity_cpu_count(void);
/// Asks the kernel to back [address, address + bytes) with transparent huge pages (Linux madvise MADV_HUGEPAGE;
/// `address` 2 MiB-aligned, before the memory is first touched). Returns 1 when the advice was taken, 0 otherwise
/// (other systems, THP disabled): only a hint, the memory works the same either way.
int flow_advise_huge_pages(void *address, long bytes);
/// Gives the calling thread the lowest CPU priority for good (Linux: nice 19 for this thread alone; its I/O priority
/// kept at the default best-effort level 4 rather than derived from the nice value), so
/// that background work such as writing a checkpoint runs mostly on CPU time the training threads leave, instead
/// of preempting one of them (which on a machine whose cores all train holds up the others at the step's end).
/// Unprivileged threads cannot lower their nice value again, so call it only on a thread of its own.
/// Returns 1 when the priority was set, 0 where it is not available.
int flow_thread_lowest_priority(void);
/// Names the calling thread as `top -H`, `perf` and /proc/<pid>/task/<tid>/comm show it. Linux refuses a name of
/// more than 15 bytes (the thread then keeps its old name).
void flow_thread_set_name(const char *name);
/// 1 when the CPU supports AVX-512F (x86-64), else 0.
int flow_cpu_has_avx512f(void);
/// 1 when the CPU supports AVX2 and FMA (x86-64), else 0.
int flow_cpu_has_avx2(void);
/// 1 when standard output is a terminal.
int flow_stdout_is_terminal(void);
/// Flushes the C standard output stream (what Swift's print writes to).
void flow_flush_stdout(void);
/// Flushes standard output and reports whether what was printed reached it: 0 when it did, the errno of a failed
/// flush (ENOSPC on a full disk, EPIPE), or -1 when an earlier write failed (its errno is gone).
int flow_stdout_write_error(void);
/// Records `path` as a temporary file being written (AtomicFile: from its creation until its rename or removal), so
/// that an exit from a signal handler removes it (a second SIGINT). Returns the slot to unregister, or -1 when all 16
/// slots are taken or the path is longer than 4095 bytes (the file is then simply not removed on such an exit).
int flow_temporary_file_register(const char *path);
/// Forgets the temporary file of `slot` (renamed into place or removed); -1 is ignored.
void flow_temporary_file_unregister(int slot);
/// Removes every registered temporary file whose path starts with `prefix` ("" for all); async-signal-safe.
/// Returns how many were removed.
int flow_temporary_files_remove(const char *prefix);
/// Installs handlers for the stop signals SIGINT, SIGTERM, SIGUSR1 and SIGUSR2 (Open MPI's mpirun forwards
/// SIGUSR1/2 to every rank without killing the job; it turns SIGTERM/SIGINT into SIGTERM, then SIGKILL after
/// `odls_base_sigkill_timeout` seconds): the first signal only records itself (see flow_stop_signal); a
/// second SIGINT removes the temporary files being written (flow_temporary_files_remove) and ends the process at
/// once with status 130; repeats of the other signals are ignored.
void flow_install_stop_handlers(void);
/// Gives the stop signals their default action (terminate) again: once a stopped run's checkpoint is written,
/// the SIGTERM that mpirun sends the ranks still finalising, when the first one exits with 128 + signal,
/// must end them at once rather than be taken for a stop request and wait for its SIGKILL.
void flow_restore_default_stop_handlers(void);
/// The first stop signal received (SIGINT, SIGTERM, SIGUSR1 or SIGUSR2), or 0.
int flow_stop_signal(void);
/// When the first stop signal arrived, in seconds of CLOCK_MONOTONIC (system-wide: comparable between the
/// processes of one host), or -1 when none has.
double flow_stop_signal_time(void);
/// How many stop signals have arrived (repeats included).
int flow_stop_signal_count(void);
/// Now, in seconds of CLOCK_MONOTONIC.
double flow_monotonic_seconds(void);
/// Records a stop request as if `signal` had arrived (tests).
void flow_request_stop(int signal);

/// Atomically adds `delta` to *counter (sequentially consistent); returns the new value.
long flow_atomic_add(long *counter, long delta);
/// Atomically reads *counter (sequentially consistent).
long flow_atomic_load(const long *counter);
/// Atomically stores `value` into *counter (sequentially consistent).
void flow_atomic_store(long *counter, long value);
/// A CPU relaxation hint for spin loops (x86 `pause`).
void flow_cpu_relax(void);

/// One Adam update (Kingma & Ba, Algorithm 1, PyTorch's form) of n Float32 parameters, vectorised:
///   g' = g·grad_scale + 2·l2·p;  m ← β₁m + (1−β₁)g';  v ← β₂v + (1−β₂)g'²;
///   p ← p − step_size·m / (√v·inv_sqrt_bc2 + eps)
/// with step_size = lr/(1−β₁ᵗ) and inv_sqrt_bc2 = 1/√(1−β₂ᵗ). Buffers must not overlap.
void flow_adam_update_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, long n,
                          float beta1, float beta2, float step_size, float inv_sqrt_bc2, float eps,
                          float grad_scale, float l2);
/// flow_adam_update_f32 with the gradient given as the sum of two buffers, g = g0 + g1 (rounded exactly as
/// a separate reduction pass would), so that a two-worker job never materialises the reduced gradient.
void flow_adam_update2_f32(float *restrict p, const float *restrict g0, const float *restrict g1, float *restrict m,
                           float *restrict v, long n, float beta1, float beta2, float step_size, float inv_sqrt_bc2,
                           float eps, float grad_scale, float l2);
/// im2col of a 3×3 convolution (stride 1, zero padding 1) on the channel-major batch layout [C, n, H, W] (plane =
/// n·H·W values per channel), for the image rows r = i·H + y in [row_begin, row_end): cols[(c·9 + ky·3 + kx),
/// (r − row_begin)·W + x] = x[c, r, y + ky − 1, x + kx − 1], 0 outside the image. The Float kernel of Swift's
/// Convolution3x3.im2col.
void flow_im2col3x3_f32(const float *restrict x, long channels, long plane, long height, long width,
                        long row_begin, long row_end, float *restrict cols);
/// sums[c] += Σ_j x[c·plane + j] for c < channels (a convolution's bias gradient from dY [C, n, H, W]), in 32
/// interleaved partial sums added pairwise: vectorised, and the same order on every call.
void flow_add_plane_sums_f32(const float *restrict x, long channels, long plane, float *restrict sums);
/// Direct 3×3 convolutions (stride 1, zero padding 1) in Float32, AVX2 + FMA (x86-64; call only when
/// flow_cpu_has_avx2() is 1): the Float path of Swift's Convolution3x3. Activations use a padded layout: channel c of
/// [C, n, H, W] becomes n frames of (H + 2) × (W + 2) values with zero borders, followed by a zero guard, at
/// xp + c·stride with stride = flow_conv3x3_padded_stride(n, H, W).
long flow_conv3x3_padded_stride(long images, long height, long width);
/// x [C, n, H, W] → xp [C, stride] (padded layout, borders and guard zeroed); channel c of x starts at x + c·plane
/// (plane ≥ n·H·W: n images of a larger batch).
void flow_conv3x3_pad_f32(const float *restrict x, long channels, long plane, long images, long height, long width,
                          float *restrict xp);
/// Packs a weight W [co, ci, 3, 3] for flow_conv3x3_forward_direct_f32: blocks of 4 output channels,
/// [ceil(co/4)][ci][9][4], zeros past co. flip = 1 packs the weight of the backward-data pass instead,
/// W′[c, o, k] = W[o, c, 8 − k] (ci outputs, co inputs): dX = conv(dY, W′).
void flow_conv3x3_pack_weights_f32(const float *restrict w, long co, long ci, int flip, float *restrict packed);
/// y [co, n, H, W] = conv(x, W) + bias (or += when accumulate; bias may be NULL for none), from the padded input
/// xp [ci, stride] and the packed weight; channel o of y starts at y + o·plane; yp: scratch of ceil(co/4)·4 · stride
/// floats.
void flow_conv3x3_forward_direct_f32(const float *restrict xp, long ci, long images, long height, long width,
                                     const float *restrict packed, const float *restrict bias, long co,
                                     float *restrict y, long plane, int accumulate, float *restrict yp);
/// dW [co, ci, 3, 3] = Σ_{images, pixels} dY[o, p]·X[c, p + tap k] (or += when accumulate) from the padded dY
/// dyp [co, stride] and padded input xp [ci, stride]; partial: scratch of co·ci·9·8 floats.
void flow_conv3x3_backward_weights_direct_f32(const float *restrict dyp, const float *restrict xp, long ci,
                                              long images, long height, long width, long co,
                                              float *restrict dw, int accumulate, float *restrict partial);
/// Winograd F(2×2, 3×3) convolutions (Lavin & Gray, CVPR 2016) in Float32, AVX2 + FMA (x86-64; call only when
/// flow_cpu_has_avx2() is 1), on the padded layout of the direct kernels: 16 products per 2×2 output tile and channel
/// pair instead of 36. Scratch floats either pass needs for ci input and co output channels on images `width` wide.
long flow_conv3x3_winograd_scratch_count(long ci, long co, long width);
/// Floats of a weight packed by flow_conv3x3_winograd_pack_weights_f32 (ci inputs, co outputs of the packed pass).
long flow_conv3x3_winograd_packed_count(long ci, long co);
/// Packs U_ξ = (G g Gᵀ)_ξ of a weight W [co, ci, 3, 3] as [16][ceil(co/4)][ci][4] (zeros past co), computed in
/// Float64 and rounded once; flip = 1 packs the backward-data weight W′[c, o, k] = W[o, c, 8 − k] instead (ci outputs,
/// co inputs).
void flow_conv3x3_winograd_pack_weights_f32(const float *restrict w, long co, long ci, int flip, float *restrict packed);
/// y [co, n, H, W] = conv(x, W) + bias (or += when accumulate; bias may be NULL), like
/// flow_conv3x3_forward_direct_f32, from the padded input xp [ci, stride] and the Winograd-packed weight; scratch of
/// flow_conv3x3_winograd_scratch_count(ci, co, width) floats.
void flow_conv3x3_forward_winograd_f32(const float *restrict xp, long ci, long images, long height, long width,
                                       const float *restrict packed, const float *restrict bias, long co,
                                       float *restrict y, long plane, int accumulate, float *restrict scratch);
/// dW [co, ci, 3, 3] (or += when accumulate) from the padded dY dyp [co, stride] and padded input xp [ci, stride],
/// like flow_conv3x3_backward_weights_direct_f32; scratch of flow_conv3x3_winograd_scratch_count(ci, co, width).
void flow_conv3x3_backward_weights_winograd_f32(const float *restrict dyp, const float *restrict xp, long ci,
                                                long images, long height, long width, long co,
                                                float *restrict dw, int accumulate, float *restrict scratch);
#endif
