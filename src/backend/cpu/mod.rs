//! The f32 CPU backend: host [`Tensor`]s, rayon over the batch / channels, convolutions as im2col + GEMM
//! through the `gemm` crate, every reduction accumulated in f64.
//!
//! One op family per file: `conv` (conv2d and its two backward passes), `norm` (batch / instance norm and
//! the instance norm's forward-mode pair), `act`, `loss`, `adam`. This file holds the struct, memory,
//! the elementwise ops and the `Backend` impl that delegates to the others.
//!
//! [`CpuBackend::poisoned`] fills every freshly allocated output and scratch buffer with NaN instead of 0,
//! so a kernel that forgets to write an element (or reads an accumulator it never initialised) shows up
//! as NaN in the tests instead of passing by luck on zeroed memory.

mod act;
mod adam;
mod channels;
mod conv;
mod loss;
mod norm;
mod pool;
mod resize;

use rayon::prelude::*;

use super::{shapes, Activation, AdamConfig, Backend, Conv2dParams, InstanceNormJvpGrads, NormGrads, NormStats, PenaltyHead, Pool2dParams};
use crate::error::Result;
use crate::tensor::Tensor;

/// Elements per rayon task in elementwise loops: large enough that task overhead is noise, small enough
/// that a 64x64 image batch still splits across all cores.
pub(crate) const ELEMWISE_CHUNK: usize = 1 << 15;

/// The f32 CPU backend. Cheap to create; it holds no memory of its own (rayon's global pool does the work).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBackend {
    poisoned: bool,
}

impl CpuBackend {
    /// The normal backend: fresh buffers start as zeros.
    pub fn new() -> Self {
        CpuBackend { poisoned: false }
    }

    /// A checking backend for tests: fresh output and scratch buffers start as NaN, so any element a kernel
    /// fails to write (or any accumulator it fails to initialise) surfaces as NaN.
    pub fn poisoned() -> Self {
        CpuBackend { poisoned: true }
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// A fresh buffer of `len` elements: zeros, or NaN when poisoned. Kernels must not rely on either.
    pub(crate) fn buffer(&self, len: usize) -> Vec<f32> {
        // Zeroed first (calloc: a large one is fresh, untouched mmap memory), so that the huge-page advice
        // comes before the first touch; then poisoned if asked.
        let mut v = vec![0.0; len];
        advise_huge_pages(&mut v);
        if self.poisoned {
            v.fill(f32::NAN);
        }
        v
    }

    /// A fresh output tensor (see [`CpuBackend::buffer`]).
    pub(crate) fn alloc(&self, shape: &[usize]) -> Tensor {
        let len = shape.iter().product();
        Tensor::new(shape, self.buffer(len)).expect("buffer length is the shape's product")
    }

    /// out[i] = f(a[i], b[i]) over same-shaped tensors, in parallel chunks.
    fn zip_map(&self, op: &'static str, a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32 + Sync) -> Result<Tensor> {
        shapes::same(op, "a", a.shape(), "b", b.shape())?;
        let mut out = self.alloc(a.shape());
        out.data_mut()
            .par_chunks_mut(ELEMWISE_CHUNK)
            .zip(a.data().par_chunks(ELEMWISE_CHUNK).zip(b.data().par_chunks(ELEMWISE_CHUNK)))
            .for_each(|(o, (a, b))| {
                for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                    *o = f(a, b);
                }
            });
        Ok(out)
    }
}

/// Buffers from this size up ask for transparent huge pages (see [`advise_huge_pages`]).
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// Allocations above glibc's mmap threshold (32 MiB at most, e.g. a [128, 64, 32, 32] activation) come
/// back as fresh mmap pages on every call, and first-touching them 4 KiB at a time costs more than the
/// kernel that writes them: ~12 ms for 33.5 MB against ~2.5 ms with 2 MiB pages, measured, which is the
/// difference between a 29% and a ~50% efficient first DCGAN layer. So a large fresh buffer asks for
/// transparent huge pages on its 2 MiB-aligned interior. It is advice only: contents are unchanged, the
/// kernel may decline (THP "never"), and it is a no-op where THP is already "always".
#[cfg(target_os = "linux")]
fn advise_huge_pages(v: &mut [f32]) {
    const HUGE: usize = 2 << 20;
    const MADV_HUGEPAGE: i32 = 14;
    extern "C" {
        fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
    }
    let bytes = std::mem::size_of_val(v);
    if bytes < HUGE_PAGE_MIN_BYTES {
        return;
    }
    let start = v.as_mut_ptr() as usize;
    let (lo, hi) = (start.next_multiple_of(HUGE), (start + bytes) / HUGE * HUGE);
    if hi > lo {
        // SAFETY: [lo, hi) lies inside `v`'s allocation, which we borrow mutably; MADV_HUGEPAGE changes only
        // how the kernel backs those pages, never their contents, and its failure is harmless (ignored).
        unsafe { madvise(lo as *mut std::ffi::c_void, hi - lo, MADV_HUGEPAGE) };
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_: &mut [f32]) {}

/// Σ x in f64, eight independent lanes so the loop vectorizes (f64 keeps the sum exact to ~1e-16 relative
/// for any realistic length, so results agree with the f64 oracle to f32 rounding).
pub(crate) fn sum_f64(x: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v as f64;
        }
    }
    let mut s: f64 = acc.iter().sum();
    for &v in tail {
        s += v as f64;
    }
    s
}

impl Backend for CpuBackend {
    type Tensor = Tensor;
    type Graph = super::NoGraph;

    fn name(&self) -> String {
        "cpu".to_string()
    }

    // ------------------------------------------------------------------ memory
    fn upload(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.clone())
    }
    fn download(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.clone())
    }
    fn shape(&self, t: &Tensor) -> Vec<usize> {
        t.shape().to_vec()
    }
    fn full(&self, shape: &[usize], value: f32) -> Result<Tensor> {
        Ok(Tensor::full(shape, value))
    }
    fn reshape(&self, t: &Tensor, shape: &[usize]) -> Result<Tensor> {
        t.clone().reshape(shape)
    }

    // ------------------------------------------------------------------ elementwise
    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.zip_map("add", a, b, |a, b| a + b)
    }
    fn add_assign(&self, a: &mut Tensor, b: &Tensor) -> Result<()> {
        shapes::same("add_assign", "a", a.shape(), "b", b.shape())?;
        a.data_mut().par_chunks_mut(ELEMWISE_CHUNK).zip(b.data().par_chunks(ELEMWISE_CHUNK)).for_each(|(a, b)| {
            for (a, &b) in a.iter_mut().zip(b) {
                *a += b;
            }
        });
        Ok(())
    }
    fn scale(&self, a: &Tensor, s: f32) -> Result<Tensor> {
        let mut out = self.alloc(a.shape());
        out.data_mut().par_chunks_mut(ELEMWISE_CHUNK).zip(a.data().par_chunks(ELEMWISE_CHUNK)).for_each(|(o, a)| {
            for (o, &a) in o.iter_mut().zip(a) {
                *o = s * a;
            }
        });
        Ok(out)
    }
    fn lerp_per_sample(&self, a: &Tensor, b: &Tensor, alpha: &[f32]) -> Result<Tensor> {
        let per = shapes::lerp_per_sample("lerp_per_sample", a.shape(), b.shape(), alpha.len())?;
        let mut out = self.alloc(a.shape());
        if per == 0 {
            return Ok(out);
        }
        out.data_mut().par_chunks_mut(per).zip(a.data().par_chunks(per).zip(b.data().par_chunks(per))).zip(alpha.par_iter()).for_each(
            |((o, (a, b)), &al)| {
                let bl = 1.0 - al;
                for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                    *o = al * a + bl * b;
                }
            },
        );
        Ok(out)
    }
    fn mean(&self, t: &Tensor) -> Result<f64> {
        shapes::nonempty("mean", "the mean of an empty tensor", t.shape())?;
        let s: f64 = t.data().par_chunks(ELEMWISE_CHUNK).map(sum_f64).sum();
        Ok(s / t.len() as f64)
    }

    // ------------------------------------------------------------------ convolution
    fn conv2d(&self, x: &Tensor, w: &Tensor, p: Conv2dParams) -> Result<Tensor> {
        conv::conv2d(self, x, w, p)
    }
    fn conv2d_bwd_data(&self, dy: &Tensor, w: &Tensor, x_shape: [usize; 4], p: Conv2dParams) -> Result<Tensor> {
        conv::conv2d_bwd_data(self, dy, w, x_shape, p)
    }
    fn conv2d_bwd_weight(&self, x: &Tensor, dy: &Tensor, w_shape: [usize; 4], p: Conv2dParams) -> Result<Tensor> {
        conv::conv2d_bwd_weight(self, x, dy, w_shape, p)
    }

    // ------------------------------------------------------------------ normalization
    fn batch_norm2d_train(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running_mean: &mut Tensor,
        running_var: &mut Tensor,
        eps: f32,
        momentum: f32,
    ) -> Result<(Tensor, NormStats<Tensor>)> {
        norm::batch_norm2d_train(self, x, gamma, beta, running_mean, running_var, eps, momentum)
    }
    fn batch_norm2d_eval(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        eps: f32,
    ) -> Result<Tensor> {
        norm::batch_norm2d_eval(self, x, gamma, beta, running_mean, running_var, eps)
    }
    fn batch_norm2d_bwd(&self, dy: &Tensor, x: &Tensor, gamma: &Tensor, stats: &NormStats<Tensor>) -> Result<NormGrads<Tensor>> {
        norm::batch_norm2d_bwd(self, dy, x, gamma, stats)
    }
    fn instance_norm2d(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<(Tensor, NormStats<Tensor>)> {
        norm::instance_norm2d(self, x, gamma, beta, eps)
    }
    fn instance_norm2d_bwd(&self, dy: &Tensor, x: &Tensor, gamma: &Tensor, stats: &NormStats<Tensor>) -> Result<NormGrads<Tensor>> {
        norm::instance_norm2d_bwd(self, dy, x, gamma, stats)
    }
    fn instance_norm2d_jvp(&self, x: &Tensor, x_dot: &Tensor, gamma: &Tensor, stats: &NormStats<Tensor>) -> Result<Tensor> {
        norm::instance_norm2d_jvp(self, x, x_dot, gamma, stats)
    }
    fn instance_norm2d_jvp_bwd(
        &self,
        x: &Tensor,
        x_dot: &Tensor,
        gamma: &Tensor,
        stats: &NormStats<Tensor>,
        y_bar: &Tensor,
        y_dot_bar: &Tensor,
    ) -> Result<InstanceNormJvpGrads<Tensor>> {
        norm::instance_norm2d_jvp_bwd(self, x, x_dot, gamma, stats, y_bar, y_dot_bar)
    }

    // ------------------------------------------------------------------ activations
    fn activation(&self, act: Activation, x: &Tensor) -> Result<Tensor> {
        act::activation(self, act, x)
    }
    fn activation_bwd(&self, act: Activation, x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Tensor> {
        act::activation_bwd(self, act, x, y, dy)
    }

    // ------------------------------------------------------------------ losses
    fn bce(&self, p: &Tensor, target: &Tensor) -> Result<(f64, Tensor)> {
        loss::bce(self, p, target)
    }
    fn bce_logits(&self, logits: &Tensor, target: &Tensor) -> Result<(f64, Tensor)> {
        loss::bce_logits(self, logits, target)
    }
    fn gradient_penalty_head(&self, g: &Tensor, lambda: f32) -> Result<PenaltyHead<Tensor>> {
        loss::gradient_penalty_head(self, g, lambda)
    }

    // ------------------------------------------------------------------ optimizer
    fn adam_step(
        &self,
        param: &mut Tensor,
        grad: &Tensor,
        exp_avg: &mut Tensor,
        exp_avg_sq: &mut Tensor,
        cfg: &AdamConfig,
        step: u64,
    ) -> Result<()> {
        adam::adam_step(param, grad, exp_avg, exp_avg_sq, cfg, step)
    }

    // ------------------------------------------------------------------ InceptionV3's ops (pool, resize, channels)
    fn avg_pool2d(&self, x: &Tensor, p: Pool2dParams, count_include_pad: bool) -> Result<Tensor> {
        pool::avg_pool2d(self, x, p, count_include_pad)
    }
    fn max_pool2d(&self, x: &Tensor, p: Pool2dParams) -> Result<Tensor> {
        pool::max_pool2d(self, x, p)
    }
    fn global_avg_pool2d(&self, x: &Tensor) -> Result<Tensor> {
        pool::global_avg_pool2d(self, x)
    }
    fn resize_bilinear(&self, x: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
        resize::resize_bilinear(self, x, out_h, out_w)
    }
    fn concat_channels(&self, xs: &[&Tensor]) -> Result<Tensor> {
        channels::concat_channels(self, xs)
    }
    fn affine_channels(&self, x: &mut Tensor, scale: &Tensor, shift: &Tensor, relu: bool) -> Result<()> {
        channels::affine_channels(x, scale, shift, relu)
    }

    // ------------------------------------------------------------------ the classifier's backward passes
    fn max_pool2d_bwd(&self, dy: &Tensor, x: &Tensor, p: Pool2dParams) -> Result<Tensor> {
        pool::max_pool2d_bwd(self, dy, x, p)
    }
    fn avg_pool2d_bwd(&self, dy: &Tensor, x_shape: [usize; 4], p: Pool2dParams, count_include_pad: bool) -> Result<Tensor> {
        pool::avg_pool2d_bwd(self, dy, x_shape, p, count_include_pad)
    }
    fn global_avg_pool2d_bwd(&self, dy: &Tensor, x_shape: [usize; 4]) -> Result<Tensor> {
        pool::global_avg_pool2d_bwd(self, dy, x_shape)
    }
    fn concat_channels_bwd(&self, dy: &Tensor, channels: &[usize]) -> Result<Vec<Tensor>> {
        channels::concat_channels_bwd(self, dy, channels)
    }
    fn cross_entropy(&self, logits: &Tensor, target: &[usize]) -> Result<(f64, Tensor)> {
        loss::cross_entropy(self, logits, target)
    }
    fn dropout(&self, x: &Tensor, mask: &Tensor, p: f32) -> Result<Tensor> {
        act::dropout(self, x, mask, p)
    }
}
