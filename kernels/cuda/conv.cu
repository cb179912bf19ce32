// Convolution kernels: conv2d, conv2d_bwd_data, conv2d_bwd_weight (no bias), beside kernels/src/cube/conv.rs
// and src/backend/cpu/conv.rs; launched by src/backend/cuda_native/conv.rs. conv_transpose2d needs nothing
// here: the trait routes it through these three.
//
// Every pass is an implicit GEMM, C[M, N] = Σ_k A[m, k]·B[k, n], whose operands are gathered from the NCHW
// tensors as they are staged (no im2col matrix in memory):
//
// | pass              | M (rows) | N (columns)            | K (reduction)          | A    | B            | C  |
// |-------------------|----------|------------------------|------------------------|------|--------------|----|
// | conv2d            | O        | N·Ho·Wo                | C·kh·kw                | w    | im2col(x)    | y  |
// | conv2d_bwd_data   | C        | N·t_h·t_w (one phase)  | O·taps_h·taps_w        | wᵀ   | gathered dy  | dx |
// | conv2d_bwd_weight | O        | C·kh·kw                | N·Ho·Wo                | dy   | im2col(x)ᵀ   | dw |
//
// conv2d_bwd_data is split by stride phase (as the cube kernels): the input rows ih ≡ a − pad (mod s) receive
// only the kernel rows ≡ a (mod s), so each of the s_h·s_w phases is a dense GEMM over its own taps, one
// launch each, with no multiply by the zeros a strided scatter would insert.
//
// Split-K: when the output has too few tiles to fill a GPU (always conv2d_bwd_weight, whose reduction runs
// over the batch; conv2d / bwd_data for layers like the discriminator's last, O = 1 with K = 8192), the
// reduction is cut into gridDim.z chunks of ConvGeom::kchunk, split z writing its own partial output at
// z·out_len, and conv_sum_splits adds the partials in split order: deterministic, no atomics.
//
// Versions (llm.c style; all kept: v1 is the plain reference the tiled ones are cross-checked against):
//   v1 *_naive  one thread per output element, a direct loop over its reduction; no shared memory. Slow.
//   v2 *_simt   64×64 output tile per block of 256 threads (16×64 when M ≤ 16), BK = 16; each thread owns a
//               4×4 (1×4) register block, rows ty·TM + i, columns tx·4 + j, read from shared memory as
//               float4. Operands are prefetched into registers for step s+1 while step s multiplies, into
//               double-buffered shared memory: one barrier per step. Exact f32 (--fmad=false): the
//               conformance path (Precision::Fp32).
//   v3 *_tf32   v2's tiles, staging and epilogue; the 8 warps (2×4) each compute a 32×16 sub-tile (1×8
//               warps of 16×8 for the 16-row tile) with mma.sync m16n8k8 TF32: operands rounded with
//               to_tf32 as the fragments are read from shared memory, f32 accumulation.
//   v4 *_tf32_pipe, *_bf16_pipe
//               v3's tiles and warp MMAs fed by a 3-stage cp.async pipeline (global → shared directly, zero
//               fill for padding; two steps in flight while one multiplies; no staging registers). TF32
//               (m16n8k8; bit for bit v3's result: same products, same order) for Precision::Tf32, and bf16
//               (m16n8k16, operands rounded to bf16 as the fragments are read) for Precision::Bf16.
//               f32 operands: bf16 here buys the tensor cores' bf16 rate; v6 reads bf16 storage.
//   v5 *_tf32_wgmma
//               sm_90a only, 64-row tiles (the 16-row tile stays v4): v4's pipeline staged into wgmma's
//               core-matrix layout (K-major, no swizzle), each thread rounding its own landed copies to TF32
//               (cvt.rna, as v3/v4) before the barrier; each of the two warpgroups multiplies its 64×32 half
//               of the tile with wgmma.mma_async m64n32k8 straight from shared memory: no fragment loads, no
//               per-warp MMA issue. On the emulator, bit for bit v4's result. Precision::Tf32 on an sm_90a
//               device (CXR_GAN_WGMMA=0: v4).
//   v6 *_bf16_store_<in0>_<in1>
//               bf16 storage (Precision::Bf16): operands that are bf16 in memory (activations, the weights'
//               bf16 shadows) read as such, halving their traffic, through v3's register staging (cp.async
//               copies at least 4 bytes, and the im2col gather is per element), widened exactly to f32 in
//               registers; v4's bf16 MMAs, so the products and their order are v4's (bit for bit v4 on the
//               same values); output stored as bf16 where it is an activation (ConvGeom::out_bf16).
#include "common.cuh"

// One launch's convolution and the GEMM it computes, mirrored by `ConvGeom` in
// src/backend/cuda_native/conv.rs. x [n, c, h, w], w [o, c, kh, kw], y [n, o, ho, wo].
struct ConvGeom {
    u32 n, c, h, w;
    u32 o, kh, kw;
    u32 ho, wo;
    u32 stride_h, stride_w, pad_h, pad_w;
    // The GEMM: m rows, cols columns, reduction length kdim; split z = blockIdx.z reduces
    // [z·kchunk, min((z+1)·kchunk, kdim)) into out[z·out_len ..] (with one split, the output itself).
    u32 m, cols, kdim, kchunk, out_len;
    // conv2d_bwd_data's stride phase (a_h, a_w): input positions ih = ih0 + stride_h·th (th < t_h),
    // iw = iw0 + stride_w·tw (tw < t_w) receive the kernel taps kh = a_h + stride_h·jh (jh < taps_h),
    // kw = a_w + stride_w·jw (jw < taps_w) from dy at oh = base_h + th − jh, ow = base_w + tw − jw.
    u32 a_h, a_w, taps_h, taps_w, ih0, iw0, t_h, t_w, base_h, base_w;
    // Where this launch's channel statistics go (conv_tile_stats): one partial per stats_seg columns (64, a
    // whole tile, or a conv2d's Ho·Wo where that divides 64, so that no partial straddles two images), at
    // column stats_base + n0 / stats_seg + j of stats_per_row per output channel.
    u32 stats_base, stats_per_row, stats_seg;
    // 1: the output is bf16 storage (v6's activations at --precision bf16; one split only, else the partials are
    // f32 and conv_sum_splits narrows).
    u32 out_bf16;
};

// `#pragma unroll` for NVRTC; nothing for the host compiler (which would warn about an unknown pragma).
#ifdef CXR_EMULATE
#define CONV_UNROLL
#else
#define CONV_UNROLL _Pragma("unroll")
#endif

constexpr u32 CONV_THREADS = 256;  // threads per tiled block (8 warps)
constexpr u32 CONV_BN = 64;        // output-tile columns
constexpr u32 CONV_BK = 16;        // reduction depth of one shared-memory step

// A 16-byte shared-memory read (LDS.128 on the GPU).
struct alignas(16) conv_f4 {
    float x, y, z, w;
};

// ---------------------------------------------------------------------------------------------- operands
// Each pass's operands, as the tiled kernels stage them. A thread stages a fixed column n of B (set_col) and
// fixed rows of A; per step it asks for the address of A at (m, k) through a k-dependent offset (a_koff,
// computed once per step) and of B at k. The caller bounds-checks m < M, n < N and k < the split's end;
// b_ptr returns nullptr where the tap falls into padding (a zero). out_at is the output element of C[m, n]
// (within one split's partial). Each operand's element type (f32, or bf16 storage for v6) is a template
// parameter: v2–v5 read f32 only.

// conv2d: A = w [O, K] row-major; B = im2col(x), column n = (image, oh, ow), row k = (ci, i, j).
template <class TX = float, class TW = float>
struct conv_fwd_ops {
    const TX* x;
    const TW* wt;
    ConvGeom g;
    u32 x_base;
    i32 ih_base, iw_base;

    __device__ __forceinline__ void set_col(u32 n) {
        const u32 hw = g.ho * g.wo, img = n / hw, q = n % hw;
        x_base = img * g.c * g.h * g.w;
        ih_base = (i32)((q / g.wo) * g.stride_h) - (i32)g.pad_h;
        iw_base = (i32)((q % g.wo) * g.stride_w) - (i32)g.pad_w;
    }
    __device__ __forceinline__ u32 a_koff(u32 k) const { return k; }
    __device__ __forceinline__ const TW* a_ptr(u32 koff, u32 m) const { return wt + m * g.kdim + koff; }
    __device__ __forceinline__ const TX* b_ptr(u32 k) const {
        const u32 khw = g.kh * g.kw, ci = k / khw, r = k % khw;
        const i32 ih = ih_base + (i32)(r / g.kw), iw = iw_base + (i32)(r % g.kw);
        if (ih < 0 || ih >= (i32)g.h || iw < 0 || iw >= (i32)g.w) return nullptr;
        return x + x_base + (ci * g.h + (u32)ih) * g.w + (u32)iw;
    }
    __device__ __forceinline__ u32 out_at(u32 m, u32 n) const {
        const u32 hw = g.ho * g.wo;
        return ((n / hw) * g.o + m) * hw + n % hw;
    }
};

// conv2d_bwd_data, one stride phase: A = wᵀ (row ci, column k = (oi, jh, jw)); B = dy gathered at the
// phase's taps, column n = (image, th, tw).
template <class TD = float, class TW = float>
struct conv_bwd_data_ops {
    const TD* dy;
    const TW* wt;
    ConvGeom g;
    u32 dy_base;
    i32 oh_base, ow_base;

    __device__ __forceinline__ void set_col(u32 n) {
        const u32 thw = g.t_h * g.t_w, img = n / thw, t = n % thw;
        dy_base = img * g.o * g.ho * g.wo;
        oh_base = (i32)(g.base_h + t / g.t_w);
        ow_base = (i32)(g.base_w + t % g.t_w);
    }
    __device__ __forceinline__ u32 a_koff(u32 k) const {
        const u32 taps = g.taps_h * g.taps_w, oi = k / taps, r = k % taps;
        const u32 ki = g.a_h + g.stride_h * (r / g.taps_w), kj = g.a_w + g.stride_w * (r % g.taps_w);
        return (oi * g.c * g.kh + ki) * g.kw + kj;
    }
    __device__ __forceinline__ const TW* a_ptr(u32 koff, u32 m) const { return wt + koff + m * g.kh * g.kw; }
    __device__ __forceinline__ const TD* b_ptr(u32 k) const {
        const u32 taps = g.taps_h * g.taps_w, oi = k / taps, r = k % taps;
        const i32 oh = oh_base - (i32)(r / g.taps_w), ow = ow_base - (i32)(r % g.taps_w);
        if (oh < 0 || oh >= (i32)g.ho || ow < 0 || ow >= (i32)g.wo) return nullptr;
        return dy + dy_base + (oi * g.ho + (u32)oh) * g.wo + (u32)ow;
    }
    __device__ __forceinline__ u32 out_at(u32 m, u32 n) const {
        const u32 thw = g.t_h * g.t_w, img = n / thw, t = n % thw;
        const u32 ih = g.ih0 + g.stride_h * (t / g.t_w), iw = g.iw0 + g.stride_w * (t % g.t_w);
        return ((img * g.c + m) * g.h + ih) * g.w + iw;
    }
};

// conv2d_bwd_weight: A = dy (row o, column k = (image, oh, ow)); B = im2col(x)ᵀ, row k, column n = (ci, i, j);
// C = dw [O, C·kh·kw] row-major.
template <class TX = float, class TD = float>
struct conv_bwd_weight_ops {
    const TX* x;
    const TD* dy;
    ConvGeom g;
    u32 ci;
    i32 dh, dw;  // kernel offset minus padding

    __device__ __forceinline__ void set_col(u32 n) {
        const u32 khw = g.kh * g.kw, r = n % khw;
        ci = n / khw;
        dh = (i32)(r / g.kw) - (i32)g.pad_h;
        dw = (i32)(r % g.kw) - (i32)g.pad_w;
    }
    __device__ __forceinline__ u32 a_koff(u32 k) const {
        const u32 hw = g.ho * g.wo;
        return (k / hw) * g.o * hw + k % hw;
    }
    __device__ __forceinline__ const TD* a_ptr(u32 koff, u32 m) const { return dy + koff + m * g.ho * g.wo; }
    __device__ __forceinline__ const TX* b_ptr(u32 k) const {
        const u32 hw = g.ho * g.wo, img = k / hw, q = k % hw;
        const i32 ih = (i32)((q / g.wo) * g.stride_h) + dh, iw = (i32)((q % g.wo) * g.stride_w) + dw;
        if (ih < 0 || ih >= (i32)g.h || iw < 0 || iw >= (i32)g.w) return nullptr;
        return x + ((img * g.c + ci) * g.h + (u32)ih) * g.w + (u32)iw;
    }
    __device__ __forceinline__ u32 out_at(u32 m, u32 n) const { return m * g.cols + n; }
};

// ---------------------------------------------------------------------------------------------- staging
// The shared memory of one tiled block: STAGES buffers of the A (k-major, BK × BM) and B (BK × BN) slices,
// rows padded by PAD floats (v2: 4, keeping the float4 reads aligned and the A stores at most 2-way
// conflicted; v3/v4: 8, making the TF32 fragment reads conflict-free: bank = 8·t + group).
template <u32 BM, u32 PAD, u32 STAGES>
struct alignas(16) conv_smem {
    static constexpr u32 LDA = BM + PAD, LDB = CONV_BN + PAD;
    float a[STAGES][CONV_BK][LDA];
    float b[STAGES][CONV_BK][LDB];
    __device__ __forceinline__ float* a_at(u32 stage, u32 k, u32 m) { return &a[stage][k][m]; }
    __device__ __forceinline__ float* b_at(u32 stage, u32 k, u32 n) { return &b[stage][k][n]; }
};

// v5's stages: A (64 rows × BK) and B (64 columns × BK), both K-major in wgmma's canonical no-swizzle
// layout: core matrices of 8 rows × 4 k (16 bytes per row, 128 bytes each), the BK/4 core matrices of an
// 8-row group adjacent (LBO = 128 bytes apart along k), 8-row groups SBO = 512 bytes apart.
template <u32 STAGES>
struct alignas(128) conv_wgmma_smem {
    static constexpr u32 CORE = 32;                    // floats per core matrix
    static constexpr u32 LBO = CORE * 4;               // bytes between core matrices adjacent along k
    static constexpr u32 SBO = LBO * (CONV_BK / 4);    // bytes between core matrices adjacent along rows
    float a[STAGES][64 * CONV_BK];
    float b[STAGES][CONV_BN * CONV_BK];
    // The float index of (row, k) in a stage.
    static __device__ __forceinline__ u32 at(u32 row, u32 k) { return (row / 8) * (SBO / 4) + (row % 8) * 4 + (k / 4) * CORE + k % 4; }
    __device__ __forceinline__ float* a_at(u32 stage, u32 k, u32 m) { return &a[stage][at(m, k)]; }
    __device__ __forceinline__ float* b_at(u32 stage, u32 k, u32 n) { return &b[stage][at(n, k)]; }
};

// Which elements of one BK step this thread stages, shared by every version. Thread u stages A at column
// u % BK, rows u / BK + 16·i (i < BM/16; w and dy are contiguous along k, so a warp reads runs of 16), and B
// at column u % BN, rows u / BN + 4·i (i < 4; consecutive output positions, consecutive addresses).
template <u32 BM, class Ops>
struct conv_stager {
    static constexpr u32 TM = BM / 16;
    static constexpr u32 B_ROWS = CONV_BK * CONV_BN / CONV_THREADS;
    u32 a_k, a_m, b_n, b_k, m0, k_end;
    bool col_ok;

    __device__ __forceinline__ void init(Ops& op, u32 tid, u32 m0_, u32 n0, u32 k_end_) {
        a_k = tid % CONV_BK;
        a_m = tid / CONV_BK;
        b_n = tid % CONV_BN;
        b_k = tid / CONV_BN;
        m0 = m0_;
        k_end = k_end_;
        const u32 n = n0 + b_n;
        col_ok = n < op.g.cols;
        op.set_col(col_ok ? n : 0);
    }
    // Calls a(i, p) for this thread's A elements of the step at k0 and b(i, p) for its B elements: p is the
    // element's address, or nullptr where the element is zero (outside the GEMM, or padding).
    template <class FA, class FB>
    __device__ __forceinline__ void visit(const Ops& op, u32 k0, FA a, FB b) const {
        const u32 ka = k0 + a_k;
        const bool ka_ok = ka < k_end;
        const u32 koff = ka_ok ? op.a_koff(ka) : 0;
CONV_UNROLL
        for (u32 i = 0; i < TM; ++i) {
            const u32 m = m0 + a_m + 16 * i;
            a(i, ka_ok && m < op.g.m ? op.a_ptr(koff, m) : nullptr);
        }
CONV_UNROLL
        for (u32 i = 0; i < B_ROWS; ++i) {
            const u32 k = k0 + b_k + (CONV_THREADS / CONV_BN) * i;
            b(i, col_ok && k < k_end ? op.b_ptr(k) : nullptr);
        }
    }
    // Where element i of A / B goes in a stage of shared memory.
    template <class Smem>
    __device__ __forceinline__ float* a_slot(Smem& s, u32 stage, u32 i) const {
        return s.a_at(stage, a_k, a_m + 16 * i);
    }
    template <class Smem>
    __device__ __forceinline__ float* b_slot(Smem& s, u32 stage, u32 i) const {
        return s.b_at(stage, b_k + (CONV_THREADS / CONV_BN) * i, b_n);
    }
};

// v2/v3/v6 staging: global → registers (the loads of step s+1 in flight while step s multiplies, widened to
// f32 where they are bf16) → shared.
template <u32 BM, class Ops>
struct conv_register_stager : conv_stager<BM, Ops> {
    using base = conv_stager<BM, Ops>;
    float ra[base::TM], rb[base::B_ROWS];

    __device__ __forceinline__ void load(const Ops& op, u32 k0) {
        this->visit(
            op, k0, [&](u32 i, auto p) { ra[i] = p ? ::load(p, 0) : 0.0f; }, [&](u32 i, auto p) { rb[i] = p ? ::load(p, 0) : 0.0f; });
    }
    template <class Smem>
    __device__ __forceinline__ void store(Smem& s, u32 stage) {
CONV_UNROLL
        for (u32 i = 0; i < base::TM; ++i) *this->a_slot(s, stage, i) = ra[i];
CONV_UNROLL
        for (u32 i = 0; i < base::B_ROWS; ++i) *this->b_slot(s, stage, i) = rb[i];
    }
};

// v4 staging: cp.async straight from global to a stage of shared memory, zero fill for the zeros; no
// registers held across the multiply. `fallback` is a valid global address for the zero fills.
template <u32 BM, class Ops>
struct conv_async_stager : conv_stager<BM, Ops> {
    using base = conv_stager<BM, Ops>;
    const float* fallback;

    template <class Smem>
    __device__ __forceinline__ void issue(const Ops& op, Smem& s, u32 stage, u32 k0) {
        this->visit(
            op, k0, [&](u32 i, const float* p) { cp_async_f32(this->a_slot(s, stage, i), p, fallback); },
            [&](u32 i, const float* p) { cp_async_f32(this->b_slot(s, stage, i), p, fallback); });
    }
    // Rounds this thread's landed elements of `stage` to TF32 in place (cvt.rna, as v3/v4 round fragments),
    // for v5, whose tensor cores read shared memory directly.
    template <class Smem>
    __device__ __forceinline__ void round_tf32(Smem& s, u32 stage) const {
        auto round = [](float* p) { *p = __int_as_float((i32)to_tf32(*p)); };
CONV_UNROLL
        for (u32 i = 0; i < base::TM; ++i) round(this->a_slot(s, stage, i));
CONV_UNROLL
        for (u32 i = 0; i < base::B_ROWS; ++i) round(this->b_slot(s, stage, i));
    }
};

// This block's split of the reduction: [begin, end).
__device__ __forceinline__ void conv_split_range(const ConvGeom& g, u32& begin, u32& end) {
    begin = blockIdx.z * g.kchunk;
    end = begin + g.kchunk < g.kdim ? begin + g.kchunk : g.kdim;
}

// v2/v3's main loop over the split's BK steps: step(buf) multiplies the slices in shared buffer `buf` while
// the next step's loads are in flight in registers; one barrier per step.
template <class Ops, class Stager, class Smem, class Step>
__device__ __forceinline__ void conv_register_loop(const Ops& op, Stager& st, Smem& s, u32 k_begin, u32 k_end, Step step) {
    u32 buf = 0;
    if (k_begin < k_end) {
        st.load(op, k_begin);
        st.store(s, 0);
    }
    __syncthreads();
    for (u32 k0 = k_begin; k0 < k_end; k0 += CONV_BK) {
        const bool next = k0 + CONV_BK < k_end;
        if (next) st.load(op, k0 + CONV_BK);  // global loads in flight while this step multiplies
        step(buf);
        if (next) st.store(s, buf ^ 1);  // the other buffer: everyone finished reading it before the last barrier
        __syncthreads();
        buf ^= 1;
    }
}

// ---------------------------------------------------------------------------------------------- epilogue
// Row stride of the C tile when the epilogue stages it in shared memory (odd: row reads spread over banks).
constexpr u32 CONV_TILE_LD = CONV_BN + 1;

// Per-segment channel statistics for a norm that follows (the rows of conv2d's and conv_transpose2d's GEMMs
// are output channels): for row m of the C tile and each segment of stats_seg columns, the number of valid
// columns, their mean and their sum of squared deviations from it, at
// stats[(m·stats_per_row + stats_base + (n0 + j0) / stats_seg)·3 + {0, 1, 2}]. A segment is the whole tile
// for batch norm, which combines all of a channel's partials; a conv2d whose Ho·Wo divides 64 cuts its tiles
// at image boundaries, so that instance norm can combine one plane's partials as well. Both combine as Chan
// et al. (M2 = Σ M2ᵢ + nᵢ·(meanᵢ − mean)², norm_combine_partials in norm.cu), so no sum of squares cancels,
// and the norm reads its input once (apply) instead of three times. `tile` holds the C tile row-major,
// CONV_TILE_LD floats per row. Every thread of the block calls it; the segment loop is uniform over the block.
template <u32 BM>
__device__ __forceinline__ void conv_tile_stats(const ConvGeom& g, const float* tile, u32 m0, u32 n0, float* __restrict__ stats) {
    constexpr u32 PER_ROW = CONV_THREADS / BM;  // threads per row: 4 or 16, consecutive lanes of one warp
    const u32 row = threadIdx.x / PER_ROW, q = threadIdx.x % PER_ROW;
    const u32 m = m0 + row;
    for (u32 j0 = 0; j0 < CONV_BN && n0 + j0 < g.cols; j0 += g.stats_seg) {
        const u32 left = g.cols - n0 - j0;
        const u32 ncols = left < g.stats_seg ? left : g.stats_seg;
        const float* seg = tile + row * CONV_TILE_LD + j0;
        float sum = 0.0f;
        for (u32 j = q; j < ncols; j += PER_ROW) sum += seg[j];
        for (u32 mask = PER_ROW / 2; mask > 0; mask >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, mask);
        const float mean = sum / (float)ncols;
        float m2 = 0.0f;
        for (u32 j = q; j < ncols; j += PER_ROW) {
            const float dv = seg[j] - mean;
            m2 += dv * dv;
        }
        for (u32 mask = PER_ROW / 2; mask > 0; mask >>= 1) m2 += __shfl_xor_sync(0xffffffffu, m2, mask);
        if (q == 0 && m < g.m) {
            float* st = stats + (m * g.stats_per_row + g.stats_base + (n0 + j0) / g.stats_seg) * 3;
            st[0] = (float)ncols;
            st[1] = mean;
            st[2] = m2;
        }
    }
}

// Every version's end: the accumulators (Acc::for_each(f) calls f(row, column, value) for each, in tile
// coordinates) into split blockIdx.z's output (rounded to bf16 where g.out_bf16, and so are the values the
// statistics below are computed from: those of the tensor as stored, as a norm reading it would compute them), then, when `stats` is given (a kernel argument, so uniform
// over the block), the tile through shared memory (`smem`, the operand stages, free now) into
// conv_tile_stats.
template <u32 BM, class Ops, class Acc>
__device__ __forceinline__ void conv_epilogue(const Ops& op, const Acc& acc, u32 m0, u32 n0, float* __restrict__ out,
                                              float* __restrict__ stats, float* smem) {
    float* o = out + blockIdx.z * op.g.out_len;
    bf16* o_bf16 = reinterpret_cast<bf16*>(out);  // out_bf16: one split, so z = 0
    acc.for_each([&](u32 ml, u32 nl, float v) {
        const u32 m = m0 + ml, n = n0 + nl;
        if (m < op.g.m && n < op.g.cols) {
            if (op.g.out_bf16)
                store(o_bf16, op.out_at(m, n), v);
            else
                o[op.out_at(m, n)] = v;
        }
    });
    if (stats == nullptr) return;
    __syncthreads();  // every warp has finished reading the stages the tile overwrites
    acc.for_each([&](u32 ml, u32 nl, float v) { smem[ml * CONV_TILE_LD + nl] = op.g.out_bf16 ? bf16_round(v) : v; });
    __syncthreads();
    conv_tile_stats<BM>(op.g, smem, m0, n0, stats);
}

// ---------------------------------------------------------------------------------------------- v2: SIMT
// C tile [BM, 64] at (blockIdx.y·BM, blockIdx.x·64) of split blockIdx.z; thread (ty, tx) = (u / 16, u % 16)
// owns rows ty·TM + i (i < TM = BM/16) and columns tx·4 + j (j < 4).
template <u32 TM>
struct conv_simt_acc {
    u32 ty, tx;
    float v[TM][4];
    template <class F>
    __device__ __forceinline__ void for_each(F f) const {
CONV_UNROLL
        for (u32 i = 0; i < TM; ++i)
CONV_UNROLL
            for (u32 j = 0; j < 4; ++j) f(ty * TM + i, tx * 4 + j, v[i][j]);
    }
};

template <u32 BM>
struct conv_simt {
    static constexpr u32 ROWS = BM;
    using smem = conv_smem<BM, 4, 2>;

    template <class Ops>
    static __device__ __forceinline__ void run(Ops& op, smem& s, float* __restrict__ out, float* __restrict__ stats) {
        constexpr u32 TM = BM / 16;
        const u32 tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
        const u32 m0 = blockIdx.y * BM, n0 = blockIdx.x * CONV_BN;
        u32 k_begin, k_end;
        conv_split_range(op.g, k_begin, k_end);
        conv_register_stager<BM, Ops> st;
        st.init(op, tid, m0, n0, k_end);

        conv_simt_acc<TM> a;
        a.ty = ty, a.tx = tx;
        auto& acc = a.v;
CONV_UNROLL
        for (u32 i = 0; i < TM; ++i)
CONV_UNROLL
            for (u32 j = 0; j < 4; ++j) acc[i][j] = 0.0f;

        conv_register_loop(op, st, s, k_begin, k_end, [&](u32 buf) {
CONV_UNROLL
            for (u32 kk = 0; kk < CONV_BK; ++kk) {
                float av[TM], bv[4];
                if constexpr (TM == 4) {
                    const conv_f4 a4 = *reinterpret_cast<const conv_f4*>(&s.a[buf][kk][ty * 4]);
                    av[0] = a4.x, av[1] = a4.y, av[2] = a4.z, av[3] = a4.w;
                } else {
                    av[0] = s.a[buf][kk][ty];
                }
                const conv_f4 b4 = *reinterpret_cast<const conv_f4*>(&s.b[buf][kk][tx * 4]);
                bv[0] = b4.x, bv[1] = b4.y, bv[2] = b4.z, bv[3] = b4.w;
CONV_UNROLL
                for (u32 i = 0; i < TM; ++i)
CONV_UNROLL
                    for (u32 j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
            }
        });

        conv_epilogue<BM>(op, a, m0, n0, out, stats, reinterpret_cast<float*>(&s));
    }
};

// ---------------------------------------------------------------------------------------------- MMA tiles
// The tensor-core versions' warp tiling of the [BM, 64] C tile: the 8 warps (2×4; 1×8 for the 16-row tile)
// each own rows wm0 + [0, WTM), columns wn0 + [0, WTN) as MI × NI m16n8 accumulators.
template <u32 BM>
struct conv_warp_tile {
    static constexpr u32 WARPS_M = BM == 64 ? 2 : 1, WARPS_N = (CONV_THREADS / CXR_WARP) / WARPS_M;
    static constexpr u32 WTM = BM / WARPS_M, WTN = CONV_BN / WARPS_N;
    static constexpr u32 MI = WTM / 16, NI = WTN / 8;
    u32 wm0, wn0, grp, t4;
    float d[MI][NI][4];

    __device__ __forceinline__ void init() {
        const u32 warp = threadIdx.x / CXR_WARP, lane = threadIdx.x % CXR_WARP;
        grp = lane / 4, t4 = lane % 4;
        wm0 = (warp / WARPS_N) * WTM, wn0 = (warp % WARPS_N) * WTN;
CONV_UNROLL
        for (u32 mi = 0; mi < MI; ++mi)
CONV_UNROLL
            for (u32 ni = 0; ni < NI; ++ni)
CONV_UNROLL
                for (u32 r = 0; r < 4; ++r) d[mi][ni][r] = 0.0f;
    }
    // One BK step from a stage's slices a[BK][LDA], b[BK][LDB], with MMA kind Mma.
    template <class Mma, u32 LDA, u32 LDB>
    __device__ __forceinline__ void step(const float (*a)[LDA], const float (*b)[LDB]) {
        Mma::template step<MI, NI, LDA, LDB>(a, b, d, wm0, wn0, grp, t4);
    }
    // f(row, column, value) for each accumulator (conv_epilogue); C fragment r holds (grp + 8·(r ≥ 2),
    // 2·t4 + r % 2) of its m16n8 block.
    template <class F>
    __device__ __forceinline__ void for_each(F f) const {
CONV_UNROLL
        for (u32 mi = 0; mi < MI; ++mi)
CONV_UNROLL
            for (u32 ni = 0; ni < NI; ++ni)
CONV_UNROLL
                for (u32 r = 0; r < 4; ++r) f(wm0 + mi * 16 + grp + (r >= 2 ? 8 : 0), wn0 + ni * 8 + 2 * t4 + (r & 1), d[mi][ni][r]);
    }
};

// TF32: two m16n8k8 MMAs per BK step, operands rounded with to_tf32 as the fragments are read.
struct conv_mma_tf32 {
    template <u32 MI, u32 NI, u32 LDA, u32 LDB>
    static __device__ __forceinline__ void step(const float (*a)[LDA], const float (*b)[LDB], float d[MI][NI][4], u32 wm0, u32 wn0,
                                                u32 grp, u32 t4) {
CONV_UNROLL
        for (u32 ks = 0; ks < CONV_BK; ks += 8) {
            u32 af[MI][4], bf[NI][2];
CONV_UNROLL
            for (u32 mi = 0; mi < MI; ++mi) {
                const u32 r = wm0 + mi * 16 + grp;
                af[mi][0] = to_tf32(a[ks + t4][r]);
                af[mi][1] = to_tf32(a[ks + t4][r + 8]);
                af[mi][2] = to_tf32(a[ks + t4 + 4][r]);
                af[mi][3] = to_tf32(a[ks + t4 + 4][r + 8]);
            }
CONV_UNROLL
            for (u32 ni = 0; ni < NI; ++ni) {
                const u32 c = wn0 + ni * 8 + grp;
                bf[ni][0] = to_tf32(b[ks + t4][c]);
                bf[ni][1] = to_tf32(b[ks + t4 + 4][c]);
            }
CONV_UNROLL
            for (u32 mi = 0; mi < MI; ++mi)
CONV_UNROLL
                for (u32 ni = 0; ni < NI; ++ni) mma_m16n8k8_tf32(d[mi][ni], af[mi], bf[ni]);
        }
    }
};

// bf16: one m16n8k16 MMA per BK step, operand pairs rounded to bf16 (to_bf16x2) as the fragments are read.
// (The fragment reads pair k rows 2t, 2t+1: 2-way bank conflicts at PAD 8.)
struct conv_mma_bf16 {
    template <u32 MI, u32 NI, u32 LDA, u32 LDB>
    static __device__ __forceinline__ void step(const float (*a)[LDA], const float (*b)[LDB], float d[MI][NI][4], u32 wm0, u32 wn0,
                                                u32 grp, u32 t4) {
        static_assert(CONV_BK == 16, "one k16 MMA per step");
        const u32 k = 2 * t4;
        u32 af[MI][4], bf[NI][2];
CONV_UNROLL
        for (u32 mi = 0; mi < MI; ++mi) {
            const u32 r = wm0 + mi * 16 + grp;
            af[mi][0] = to_bf16x2(a[k][r], a[k + 1][r]);
            af[mi][1] = to_bf16x2(a[k][r + 8], a[k + 1][r + 8]);
            af[mi][2] = to_bf16x2(a[k + 8][r], a[k + 9][r]);
            af[mi][3] = to_bf16x2(a[k + 8][r + 8], a[k + 9][r + 8]);
        }
CONV_UNROLL
        for (u32 ni = 0; ni < NI; ++ni) {
            const u32 c = wn0 + ni * 8 + grp;
            bf[ni][0] = to_bf16x2(b[k][c], b[k + 1][c]);
            bf[ni][1] = to_bf16x2(b[k + 8][c], b[k + 9][c]);
        }
CONV_UNROLL
        for (u32 mi = 0; mi < MI; ++mi)
CONV_UNROLL
            for (u32 ni = 0; ni < NI; ++ni) mma_m16n8k16_bf16(d[mi][ni], af[mi], bf[ni]);
    }
};

// ---------------------------------------------------------------------------------------------- v3: TF32 MMA
// v2's staging (registers, two shared buffers, one barrier per step) with the multiply on tensor cores (Mma:
// v3 TF32; v6 bf16, whose operands may be bf16 storage, which cp.async cannot gather element by element).
template <u32 BM, class Mma>
struct conv_register_mma {
    static constexpr u32 ROWS = BM;
    using smem = conv_smem<BM, 8, 2>;

    template <class Ops>
    static __device__ __forceinline__ void run(Ops& op, smem& s, float* __restrict__ out, float* __restrict__ stats) {
        const u32 m0 = blockIdx.y * BM, n0 = blockIdx.x * CONV_BN;
        u32 k_begin, k_end;
        conv_split_range(op.g, k_begin, k_end);
        conv_register_stager<BM, Ops> st;
        st.init(op, threadIdx.x, m0, n0, k_end);
        conv_warp_tile<BM> tile;
        tile.init();

        conv_register_loop(op, st, s, k_begin, k_end,
                           [&](u32 buf) { tile.template step<Mma, smem::LDA, smem::LDB>(s.a[buf], s.b[buf]); });
        conv_epilogue<BM>(op, tile, m0, n0, out, stats, reinterpret_cast<float*>(&s));
    }
};
template <u32 BM>
using conv_tf32 = conv_register_mma<BM, conv_mma_tf32>;
template <u32 BM>
using conv_bf16_store = conv_register_mma<BM, conv_mma_bf16>;

// ---------------------------------------------------------------------------------------------- v4: cp.async
// v3's tiles and MMAs (TF32, or bf16 with Mma = conv_mma_bf16) fed by a 3-stage cp.async pipeline: steps
// s+1 and s+2 are in flight, global → shared with no register round trip, while step s multiplies. Per
// step: wait for this thread's copies of step s, one barrier (every thread's copies have landed, and every
// warp has finished step s−1, whose stage the next issue overwrites), issue step s+2, multiply. One group
// is committed per step even when empty, so "all but the newest STAGES−2 groups" always means "up to s".
// `Tile` is the multiply (v4: conv_mma_tile; v5: conv_wgmma_tile): its shared-memory layout, what a thread
// does with its landed copies before the barrier, one step from a stage, and its accumulators (for_each).
constexpr u32 CONV_PIPE_STAGES = 3;

template <u32 BM, class Tile>
struct conv_pipelined {
    static constexpr u32 STAGES = CONV_PIPE_STAGES;
    static constexpr u32 ROWS = BM;
    using smem = typename Tile::smem;

    template <class Ops>
    static __device__ __forceinline__ void run(Ops& op, smem& s, float* __restrict__ out, float* __restrict__ stats) {
        const u32 m0 = blockIdx.y * BM, n0 = blockIdx.x * CONV_BN;
        u32 k_begin, k_end;
        conv_split_range(op.g, k_begin, k_end);
        conv_async_stager<BM, Ops> st;
        st.init(op, threadIdx.x, m0, n0, k_end);
        st.fallback = op.a_ptr(0, 0);
        Tile tile;
        tile.init();

CONV_UNROLL
        for (u32 i = 0; i + 1 < STAGES; ++i) {
            const u32 k0 = k_begin + i * CONV_BK;
            if (k0 < k_end) st.issue(op, s, i, k0);
            cp_async_commit();
        }
        u32 stage = 0;
        for (u32 k0 = k_begin; k0 < k_end; k0 += CONV_BK) {
            cp_async_wait<STAGES - 2>();
            tile.landed(st, s, stage);
            __syncthreads();
            const u32 k_next = k0 + (STAGES - 1) * CONV_BK;
            if (k_next < k_end) st.issue(op, s, (stage + STAGES - 1) % STAGES, k_next);
            cp_async_commit();
            tile.step(s, stage);
            stage = (stage + 1) % STAGES;
        }
        cp_async_wait<0>();
        conv_epilogue<BM>(op, tile, m0, n0, out, stats, reinterpret_cast<float*>(&s));
    }
};

// v4's multiply: v3's warp tiles and mma.sync (Mma), fragments rounded as they are read.
template <u32 BM, class Mma>
struct conv_mma_tile : conv_warp_tile<BM> {
    using smem = conv_smem<BM, 8, CONV_PIPE_STAGES>;
    template <class Stager>
    __device__ __forceinline__ void landed(const Stager&, smem&, u32) {}
    __device__ __forceinline__ void step(smem& s, u32 stage) {
        conv_warp_tile<BM>::template step<Mma, smem::LDA, smem::LDB>(s.a[stage], s.b[stage]);
    }
};
template <u32 BM>
using conv_tf32_pipe = conv_pipelined<BM, conv_mma_tile<BM, conv_mma_tf32>>;
template <u32 BM>
using conv_bf16_pipe = conv_pipelined<BM, conv_mma_tile<BM, conv_mma_bf16>>;

// ---------------------------------------------------------------------------------------------- v5: wgmma
// v4's 3-stage cp.async pipeline into wgmma's layout (conv_wgmma_smem), the multiply as Hopper warpgroup
// MMAs straight from shared memory: warpgroup wg (threads 128·wg ..) computes columns 32·wg + [0, 32) of the
// 64×64 tile with two m64n32k8 per BK step, no fragment loads. Each thread rounds its own landed copies to
// TF32 before the barrier, so the products are v4's; on the emulator (which sums a wgmma's products in k
// order, as it does an mma's) the result is v4's bit for bit. 64-row tiles only (wgmma's M); the 16-row
// tile stays v4. sm_90a.
template <u32 BM>
struct conv_wgmma_tile {
    static_assert(BM == 64, "wgmma computes 64 rows");
    using smem = conv_wgmma_smem<CONV_PIPE_STAGES>;
    u32 wg, row0, col0;
    float d[16];

    __device__ __forceinline__ void init() {
        const u32 t = threadIdx.x % 128, lane = t % CXR_WARP;
        wg = threadIdx.x / 128;
        row0 = 16 * (t / CXR_WARP) + lane / 4;
        col0 = 32 * wg + 2 * (lane % 4);
CONV_UNROLL
        for (u32 i = 0; i < 16; ++i) d[i] = 0.0f;
    }
    // This thread's landed copies of `stage`: rounded to TF32 in place, then made visible to the async proxy
    // wgmma reads through (the barrier that follows makes everyone's visible).
    template <class Stager>
    __device__ __forceinline__ void landed(const Stager& st, smem& s, u32 stage) {
        st.round_tf32(s, stage);
        fence_proxy_async_shared();
    }
    // One BK step from stage `stage`: both k8 halves, committed and waited for (the stage is rewritten two
    // steps later, and the epilogue reads d).
    __device__ __forceinline__ void step(const smem& s, u32 stage) {
        wgmma_fence();
CONV_UNROLL
        for (u32 ks = 0; ks < CONV_BK; ks += 8) {
            const u64 da = wgmma_desc(&s.a[stage][smem::at(0, ks)], &s, smem::LBO, smem::SBO);
            const u64 db = wgmma_desc(&s.b[stage][smem::at(32 * wg, ks)], &s, smem::LBO, smem::SBO);
            wgmma_m64n32k8_tf32(d, da, db, &s);
        }
        wgmma_commit();
        wgmma_wait_all();
    }
    template <class F>
    __device__ __forceinline__ void for_each(F f) const {
CONV_UNROLL
        for (u32 j = 0; j < 4; ++j)
CONV_UNROLL
            for (u32 h = 0; h < 2; ++h)
CONV_UNROLL
                for (u32 c = 0; c < 2; ++c) f(row0 + 8 * h, col0 + 8 * j + c, d[4 * j + 2 * h + c]);
    }
};
template <u32 BM>
using conv_tf32_wgmma = conv_pipelined<BM, conv_wgmma_tile<BM>>;

// ---------------------------------------------------------------------------------------------- kernels
// Tiled kernels: grid (⌈cols / 64⌉, ⌈m / BM⌉, splits) of CONV_THREADS threads. `out` is the output itself
// (one split) or the [splits, out_len] partials conv_sum_splits adds; `stats`, nullptr or (one split only)
// where conv_tile_stats writes the output channels' per-tile statistics. The *_m16 variants take the 16-row
// tile, for outputs of at most 16 rows (3 colour channels, the discriminator's single logit).

// Defines kernel NAME: pass OPS (inputs in0, in1) computed by BODY (a version's tile: conv_simt<64>, ...),
// at least MINB resident blocks per SM (registers from ptxas -v: BENCHMARKS.md §6; no spills).
// CONV_TILED_KERNEL_T takes the two inputs' element types T0, T1 (v6); CONV_TILED_KERNEL reads f32.
#define CONV_TILED_KERNEL_T(NAME, OPS, T0, T1, BODY, MINB)                                                        \
    CXR_KERNEL void __launch_bounds__(CONV_THREADS, MINB)                                                         \
        NAME(const T0* __restrict__ in0, const T1* __restrict__ in1, float* __restrict__ out,                     \
             float* __restrict__ stats, ConvGeom g) {                                                             \
        __shared__ BODY::smem s;                                                                                  \
        static_assert(sizeof(BODY::smem) >= sizeof(float) * BODY::ROWS * CONV_TILE_LD, "the epilogue's tile");   \
        OPS<T0, T1> op;                                                                                           \
        op.g = g;                                                                                                 \
        conv_bind(op, in0, in1);                                                                                  \
        BODY::run(op, s, out, stats);                                                                             \
    }                                                                                                             \
    CXR_EXPORT(NAME)
#define CONV_TILED_KERNEL(NAME, OPS, BODY, MINB) CONV_TILED_KERNEL_T(NAME, OPS, float, float, BODY, MINB)

// The kernels' two inputs, in each pass's launch order: conv2d (x, w), bwd_data (dy, w), bwd_weight (x, dy).
template <class A, class B>
__device__ __forceinline__ void conv_bind(conv_fwd_ops<A, B>& op, const A* x, const B* w) {
    op.x = x, op.wt = w;
}
template <class A, class B>
__device__ __forceinline__ void conv_bind(conv_bwd_data_ops<A, B>& op, const A* dy, const B* w) {
    op.dy = dy, op.wt = w;
}
template <class A, class B>
__device__ __forceinline__ void conv_bind(conv_bwd_weight_ops<A, B>& op, const A* x, const B* dy) {
    op.x = x, op.dy = dy;
}

// Every version at both tile heights for the three passes.
#define CONV_VERSION(SUFFIX, BODY, MINB64, MINB16)                                                 \
    CONV_TILED_KERNEL(conv2d_fwd_##SUFFIX, conv_fwd_ops, BODY<64>, MINB64)                         \
    CONV_TILED_KERNEL(conv2d_fwd_##SUFFIX##_m16, conv_fwd_ops, BODY<16>, MINB16)                   \
    CONV_TILED_KERNEL(conv2d_bwd_data_##SUFFIX, conv_bwd_data_ops, BODY<64>, MINB64)               \
    CONV_TILED_KERNEL(conv2d_bwd_data_##SUFFIX##_m16, conv_bwd_data_ops, BODY<16>, MINB16)         \
    CONV_TILED_KERNEL(conv2d_bwd_weight_##SUFFIX, conv_bwd_weight_ops, BODY<64>, MINB64)           \
    CONV_TILED_KERNEL(conv2d_bwd_weight_##SUFFIX##_m16, conv_bwd_weight_ops, BODY<16>, MINB16)

CONV_VERSION(simt, conv_simt, 4, 8)            // v2, exact f32
CONV_VERSION(tf32, conv_tf32, 4, 6)            // v3, TF32 tensor cores
CONV_VERSION(tf32_pipe, conv_tf32_pipe, 4, 6)  // v4, TF32, cp.async pipeline
CONV_VERSION(bf16_pipe, conv_bf16_pipe, 4, 6)  // v4, bf16, cp.async pipeline
// v5, TF32 wgmma (sm_90a), 64-row tiles only: the 16-row tile is v4's.
CONV_TILED_KERNEL(conv2d_fwd_tf32_wgmma, conv_fwd_ops, conv_tf32_wgmma<64>, 4)
CONV_TILED_KERNEL(conv2d_bwd_data_tf32_wgmma, conv_bwd_data_ops, conv_tf32_wgmma<64>, 4)
CONV_TILED_KERNEL(conv2d_bwd_weight_tf32_wgmma, conv_bwd_weight_ops, conv_tf32_wgmma<64>, 4)

// v6, bf16 storage (--precision bf16): v3's register staging, widening bf16 operands as they are loaded, and
// v4's bf16 MMAs; one kernel per pass, tile height and operand types <in0>_<in1> that has a bf16 operand
// (two f32 operands, as a weight gradient from f32 images, take v4 *_bf16_pipe).
#define CONV_BF16_STORE(PASS, OPS, T0, T1)                                                           \
    CONV_TILED_KERNEL_T(PASS##_bf16_store_##T0##_##T1, OPS, T0, T1, conv_bf16_store<64>, 4)        \
    CONV_TILED_KERNEL_T(PASS##_bf16_store_##T0##_##T1##_m16, OPS, T0, T1, conv_bf16_store<16>, 6)
typedef float f32;
#define CONV_BF16_STORE_PASS(PASS, OPS) \
    CONV_BF16_STORE(PASS, OPS, bf16, bf16) CONV_BF16_STORE(PASS, OPS, bf16, f32) CONV_BF16_STORE(PASS, OPS, f32, bf16)
CONV_BF16_STORE_PASS(conv2d_fwd, conv_fwd_ops)
CONV_BF16_STORE_PASS(conv2d_bwd_data, conv_bwd_data_ops)
CONV_BF16_STORE_PASS(conv2d_bwd_weight, conv_bwd_weight_ops)

// out[i] = Σ_z part[z·len + i] over the splits in order (z·len + i < 2^32, checked on the host), stored as
// bf16 where out_bf16. Grid-stride over len, CXR_BLOCK threads.
CXR_KERNEL void conv_sum_splits(const float* __restrict__ part, float* __restrict__ out, u32 len, u32 splits, u32 out_bf16) {
    for (u32 i = grid_start(); i < len; i += grid_stride()) {
        float s = part[i];
        for (u32 z = 1; z < splits; ++z) s += part[z * len + i];
        if (out_bf16)
            store(reinterpret_cast<bf16*>(out), i, s);
        else
            out[i] = s;
    }
}
CXR_EXPORT(conv_sum_splits)

// ---------------------------------------------------------------------------------------------- v1: naive
// One thread per output element (grid-stride, CXR_BLOCK threads), f32 sums in a fixed loop order. Not used
// by the backend's ops: the unit tests in src/backend/cuda_native/conv.rs check v2 and v3 against them.

// y[img, o, oh, ow] = Σ_{ci, i, j} x[img, ci, oh·sh + i − ph, ow·sw + j − pw] · w[o, ci, i, j].
CXR_KERNEL void conv2d_fwd_naive(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y, ConvGeom g) {
    const u32 len = g.n * g.o * g.ho * g.wo;
    for (u32 idx = grid_start(); idx < len; idx += grid_stride()) {
        const u32 ow = idx % g.wo, oh = (idx / g.wo) % g.ho, o = (idx / (g.wo * g.ho)) % g.o, img = idx / (g.wo * g.ho * g.o);
        float acc = 0.0f;
        for (u32 ci = 0; ci < g.c; ++ci)
            for (u32 i = 0; i < g.kh; ++i) {
                const i32 ih = (i32)(oh * g.stride_h + i) - (i32)g.pad_h;
                if (ih < 0 || ih >= (i32)g.h) continue;
                for (u32 j = 0; j < g.kw; ++j) {
                    const i32 iw = (i32)(ow * g.stride_w + j) - (i32)g.pad_w;
                    if (iw < 0 || iw >= (i32)g.w) continue;
                    acc += x[((img * g.c + ci) * g.h + (u32)ih) * g.w + (u32)iw] * w[((o * g.c + ci) * g.kh + i) * g.kw + j];
                }
            }
        y[idx] = acc;
    }
}
CXR_EXPORT(conv2d_fwd_naive)

// dx[img, ci, ih, iw] = Σ over (o, i, j) with oh = (ih + ph − i) / sh, ow = (iw + pw − j) / sw exact and in
// range of dy[img, o, oh, ow] · w[o, ci, i, j].
CXR_KERNEL void conv2d_bwd_data_naive(const float* __restrict__ dy, const float* __restrict__ w, float* __restrict__ dx, ConvGeom g) {
    const u32 len = g.n * g.c * g.h * g.w;
    for (u32 idx = grid_start(); idx < len; idx += grid_stride()) {
        const u32 iw = idx % g.w, ih = (idx / g.w) % g.h, ci = (idx / (g.w * g.h)) % g.c, img = idx / (g.w * g.h * g.c);
        float acc = 0.0f;
        for (u32 o = 0; o < g.o; ++o)
            for (u32 i = 0; i < g.kh; ++i) {
                const i32 th = (i32)(ih + g.pad_h) - (i32)i;
                if (th < 0 || th % (i32)g.stride_h != 0 || th / (i32)g.stride_h >= (i32)g.ho) continue;
                for (u32 j = 0; j < g.kw; ++j) {
                    const i32 tw = (i32)(iw + g.pad_w) - (i32)j;
                    if (tw < 0 || tw % (i32)g.stride_w != 0 || tw / (i32)g.stride_w >= (i32)g.wo) continue;
                    const u32 oh = (u32)th / g.stride_h, ow = (u32)tw / g.stride_w;
                    acc += dy[((img * g.o + o) * g.ho + oh) * g.wo + ow] * w[((o * g.c + ci) * g.kh + i) * g.kw + j];
                }
            }
        dx[idx] = acc;
    }
}
CXR_EXPORT(conv2d_bwd_data_naive)

// dw[o, ci, i, j] = Σ_{img, oh, ow} dy[img, o, oh, ow] · x[img, ci, oh·sh + i − ph, ow·sw + j − pw].
CXR_KERNEL void conv2d_bwd_weight_naive(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ dw, ConvGeom g) {
    const u32 len = g.o * g.c * g.kh * g.kw;
    for (u32 idx = grid_start(); idx < len; idx += grid_stride()) {
        const u32 j = idx % g.kw, i = (idx / g.kw) % g.kh, ci = (idx / (g.kw * g.kh)) % g.c, o = idx / (g.kw * g.kh * g.c);
        float acc = 0.0f;
        for (u32 img = 0; img < g.n; ++img)
            for (u32 oh = 0; oh < g.ho; ++oh) {
                const i32 ih = (i32)(oh * g.stride_h + i) - (i32)g.pad_h;
                if (ih < 0 || ih >= (i32)g.h) continue;
                for (u32 ow = 0; ow < g.wo; ++ow) {
                    const i32 iw = (i32)(ow * g.stride_w + j) - (i32)g.pad_w;
                    if (iw < 0 || iw >= (i32)g.w) continue;
                    acc += dy[((img * g.o + o) * g.ho + oh) * g.wo + ow] * x[((img * g.c + ci) * g.h + (u32)ih) * g.w + (u32)iw];
                }
            }
        dw[idx] = acc;
    }
}
CXR_EXPORT(conv2d_bwd_weight_naive)
