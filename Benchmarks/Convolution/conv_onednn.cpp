// oneDNN 2.6's 3×3 convolutions (forward, backward-data, backward-weights + bias) on every convolution shape of
// realnvp-small (BENCHMARKS.md §13), one thread, one worker's shard of 32 images: the comparison the image issue asks
// for against our im2col + BLAS (Benchmarks/Convolution/main.swift, `flow-conv-bench`, the same shapes and counts).
//   apt-get install libdnnl-dev
//   g++ -O2 -std=c++17 conv_onednn.cpp -o /tmp/conv_onednn -ldnnl
//   OMP_NUM_THREADS=1 /tmp/conv_onednn [any|reorder|nchw|cnhw]
// Layouts: `any` lets oneDNN pick its blocked layouts (nChw16c …) and times the convolutions alone (the best case: a
// ResNet kept in that layout throughout); `reorder` is `any` plus the reorders a drop-in replacement of our
// convolutions would need (activations and gradients from and back to NCHW around every call, timed); `nchw` gives
// oneDNN PyTorch's plain layout, `cnhw` ours, [C, n, H, W] (oneDNN's tag `bacd`: a reference kernel, very slow).
#include <oneapi/dnnl/dnnl.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

struct Conv { int ci, co, hw, count; };

static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Median of 5 timings of `repeat` runs of f, seconds per run.
template <class F> static double timeIt(F f, int repeat) {
    std::vector<double> t;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        for (int i = 0; i < repeat; i++) f();
        t.push_back((now() - t0) / repeat);
    }
    std::sort(t.begin(), t.end());
    return t[2];
}

int main(int argc, char** argv) {
    std::string layout = argc > 1 ? argv[1] : "any";
    bool blocked = layout == "any" || layout == "reorder", reorders = layout == "reorder";
    tag act = blocked ? tag::any : layout == "cnhw" ? tag::bacd : tag::nchw;
    tag wt = blocked ? tag::any : tag::oihw;
    engine eng(engine::kind::cpu, 0);
    stream s(eng);
    const int N = 32, C = 32;
    // realnvp-small on 1×28×28, per coupling: conv in (c_in → 32), 4 residual convolutions (32 → 32), conv out (32 → 2·c_out).
    std::vector<Conv> convs;
    auto coupling = [&](int ci, int co, int hw, int n) {
        convs.push_back({ci, C, hw, n});
        convs.push_back({C, C, hw, 4 * n});
        convs.push_back({C, 2 * co, hw, n});
    };
    coupling(1, 1, 28, 3);  // level 0, checkerboard on 1×28×28
    coupling(2, 2, 14, 3);  // level 0, channel-wise on 4×14×14
    coupling(2, 2, 14, 3);  // level 1, checkerboard on 2×14×14
    coupling(4, 4, 7, 3);   // level 1, channel-wise on 8×7×7
    coupling(4, 4, 7, 4);   // final, checkerboard on 4×7×7
    double total = 0, flops = 0, tf = 0, tbd = 0, tbw = 0;
    for (auto c : convs) {
        memory::dims src = {N, c.ci, c.hw, c.hw}, wei = {c.co, c.ci, 3, 3}, bia = {c.co}, dst = {N, c.co, c.hw, c.hw};
        memory::dims strides = {1, 1}, pad = {1, 1};
        auto srcMd = memory::desc(src, dt::f32, act), weiMd = memory::desc(wei, dt::f32, wt),
             biaMd = memory::desc(bia, dt::f32, tag::x), dstMd = memory::desc(dst, dt::f32, act);
        auto fd = convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, srcMd, weiMd, biaMd,
                                            dstMd, strides, pad, pad);
        auto fpd = convolution_forward::primitive_desc(fd, eng);
        auto bdd = convolution_backward_data::desc(algorithm::convolution_direct, srcMd, weiMd, dstMd, strides, pad, pad);
        auto bdpd = convolution_backward_data::primitive_desc(bdd, eng, fpd);
        auto bwd = convolution_backward_weights::desc(algorithm::convolution_direct, srcMd, weiMd, biaMd, dstMd, strides, pad, pad);
        auto bwpd = convolution_backward_weights::primitive_desc(bwd, eng, fpd);
        memory x(fpd.src_desc(), eng), w(fpd.weights_desc(), eng), b(fpd.bias_desc(), eng), y(fpd.dst_desc(), eng);
        memory dy(bdpd.diff_dst_desc(), eng), dx(bdpd.diff_src_desc(), eng), dw(bwpd.diff_weights_desc(), eng),
            db(bwpd.diff_bias_desc(), eng), dy2(bwpd.diff_dst_desc(), eng), x2(bwpd.src_desc(), eng);
        for (auto* m : {&x, &w, &b, &dy, &dy2, &x2}) {
            float* p = static_cast<float*>(m->get_data_handle());
            size_t n = m->get_desc().get_size() / 4;
            for (size_t i = 0; i < n; i++) p[i] = 0.01f * float((i * 7) % 13) - 0.06f;
        }
        convolution_forward f(fpd);
        convolution_backward_data bd(bdpd);
        convolution_backward_weights bw(bwpd);
        int repeat = c.hw == 28 ? 5 : 20;
        double t1 = timeIt([&] { f.execute(s, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, y}}); s.wait(); }, repeat);
        double t2 = timeIt([&] { bd.execute(s, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx}}); s.wait(); }, repeat);
        double t3 = timeIt([&] { bw.execute(s, {{DNNL_ARG_SRC, x2}, {DNNL_ARG_DIFF_DST, dy2}, {DNNL_ARG_DIFF_WEIGHTS, dw}, {DNNL_ARG_DIFF_BIAS, db}}); s.wait(); }, repeat);
        if (reorders) {
            // Plain NCHW tensors of ours, reordered into oneDNN's layouts before each call and the results back after.
            auto plain = [&](memory::dims d) { return memory(memory::desc(d, dt::f32, tag::nchw), eng); };
            memory px = plain(src), py = plain(dst), pdy = plain(dst), pdx = plain(src);
            reorder toX(px, x), fromY(y, py), toDy(pdy, dy), fromDx(dx, pdx), toDy2(pdy, dy2), toX2(px, x2);
            t1 += timeIt([&] { toX.execute(s, px, x); fromY.execute(s, y, py); s.wait(); }, repeat);
            t2 += timeIt([&] { toDy.execute(s, pdy, dy); fromDx.execute(s, dx, pdx); s.wait(); }, repeat);
            t3 += timeIt([&] { toDy2.execute(s, pdy, dy2); toX2.execute(s, px, x2); s.wait(); }, repeat);
        }
        double fl = 2.0 * N * c.hw * c.hw * c.co * c.ci * 9 * 3 * c.count;
        total += (t1 + t2 + t3) * c.count;
        tf += t1 * c.count; tbd += t2 * c.count; tbw += t3 * c.count;
        flops += fl;
        std::printf("%2d → %2d  %2d×%-2d ×%2d  fwd %7.3f ms  bwd-data %7.3f ms  bwd-weights %7.3f ms  %6.1f GFLOP/s  (%s)\n", c.ci, c.co, c.hw,
                    c.hw, c.count, t1 * 1e3, t2 * 1e3, t3 * 1e3, fl / ((t1 + t2 + t3) * c.count) / 1e9, fpd.impl_info_str());
    }
    std::printf("layout %s: all convolutions of a training step on %d images: %.1f ms (fwd %.1f, bwd-data %.1f, bwd-weights %.1f), %.1f GFLOP/s, %.1f images/s\n",
                layout.c_str(), N, total * 1e3, tf * 1e3, tbd * 1e3, tbw * 1e3, flops / total / 1e9, N / total);
    return 0;
}
