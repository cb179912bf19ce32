//! bf16 storage (`--precision bf16`): how a tensor's elements are stored, the casts between the two forms,
//! and the weights' bf16 shadows.
//!
//! At `--precision bf16` a forward convolution stores its output (an activation) as bf16; the norms,
//! activations and InceptionV3's channel ops (concat, the folded batch norm) keep the storage of their input
//! (their kernels have `_bf16` twins); the convolutions read bf16
//! operands as they are (v6) and each f32 master weight through a bf16 shadow. Every other op reads f32: the
//! trait widens a bf16 input first ([`CudaNativeBackend::f32_of`]), exactly. Gradients, statistics, losses, the
//! master weights and Adam's state are f32 at every precision.

use std::sync::{Arc, Mutex};

use cxr_gan_kernels::cuda::Family;

use super::launch::{self, Arg, Dims};
use super::{Buffer, CudaNativeBackend, CudaNativeTensor, Precision};
use crate::error::Result;

/// How a tensor's elements are stored on the device. Every kernel computes in f32; `Bf16` (the upper 16 bits
/// of an f32, `bf16` in kernels/cuda/common.cuh, [`half::bf16`] on the host) is written rounded to nearest
/// even and read back exactly widened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    F32,
    Bf16,
}

impl Storage {
    pub fn bytes(self) -> usize {
        match self {
            Storage::F32 => 4,
            Storage::Bf16 => 2,
        }
    }
}

/// A buffer's bf16 copy, and whether it still equals the buffer (every in-place write clears `fresh`; the
/// copy itself is kept, at a fixed address, so that a captured graph that recasts it finds it where it was).
pub(super) struct Shadow {
    buf: Arc<Buffer>,
    fresh: bool,
    /// Where the last cast ran. A capture (its pool's address; 0 for an eager cast) reuses only a cast it
    /// recorded itself, since its graph may be replayed after the weight changed outside it (the other
    /// graph's optimizer step): each graph recasts a weight at its first use. Eager code reuses only an eager
    /// cast made since the last replay (`epoch`, the device's replay count), since a replay may have
    /// written the weight (a captured optimizer step) without the host seeing it.
    cast_in: usize,
    epoch: u64,
}

impl Buffer {
    /// The buffer is about to be written in place: its shadow no longer equals it.
    pub(super) fn invalidate_shadow(&self) {
        if let Some(s) = self.shadow.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            s.fresh = false;
        }
    }
}

impl CudaNativeBackend {
    /// How this backend stores the activations its forward convolutions write: bf16 at `--precision bf16`.
    pub(super) fn activation_storage(&self) -> Storage {
        match self.precision {
            Precision::Bf16 => Storage::Bf16,
            Precision::Fp32 | Precision::Tf32 => Storage::F32,
        }
    }

    /// `t` as f32, for the ops that read f32 only: `t` itself, or a widened copy of bf16 storage (exact).
    pub(super) fn f32_of(&self, op: &'static str, t: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        if !t.is_bf16() {
            return Ok(t.clone());
        }
        self.cast(op, t, Storage::F32)
    }

    /// A copy of `t` stored as `storage` (cast_f32_to_bf16 rounds to nearest even; the reverse is exact).
    pub(super) fn cast(&self, op: &'static str, t: &CudaNativeTensor, storage: Storage) -> Result<CudaNativeTensor> {
        let out = self.alloc_as(op, &t.shape, storage)?;
        self.cast_into(op, t, &out)?;
        Ok(out)
    }

    fn cast_into(&self, op: &'static str, t: &CudaNativeTensor, out: &CudaNativeTensor) -> Result<()> {
        let n = launch::u32_of(op, t.len())?;
        let kernel = match (t.storage, out.storage) {
            (Storage::F32, Storage::Bf16) => "cast_f32_to_bf16",
            (Storage::Bf16, Storage::F32) => "cast_bf16_to_f32",
            (Storage::F32, Storage::F32) => "copy",
            (Storage::Bf16, Storage::Bf16) => return Err(self.err(format!("{op}: no bf16 → bf16 cast (share the tensor)"))),
        };
        if n == 0 {
            return Ok(());
        }
        self.launch(op, Family::Elementwise, kernel, Dims::grid_stride(t.len()), &[t.arg(), out.arg(), Arg::U32(n)])
    }

    /// The bf16 copy of weight `w` the convolutions read at `--precision bf16`: `w` itself if bf16, else its
    /// buffer's shadow, recast (one cast_f32_to_bf16 launch) only if `w` was written since it was last cast
    /// (or a graph replayed since, or, in a graph being captured, if this capture has not cast it yet).
    /// A weight is read by several convolutions per iteration (forward, backward-data, again for a second
    /// batch), each reading 2 bytes per element instead of 4, for one cast after each optimizer step. The
    /// shadow is allocated outside any graph's pool, once, and lives with the weight's buffer.
    pub(super) fn weight_bf16(&self, op: &'static str, w: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        if w.is_bf16() {
            return Ok(w.clone());
        }
        let mut shadow = w.buf.shadow.lock().unwrap_or_else(|p| p.into_inner());
        let as_tensor =
            |buf: &Arc<Buffer>| CudaNativeTensor { buf: Arc::clone(buf), storage: Storage::Bf16, shape: w.shape.clone(), stats: None };
        let capture = self.device.capturing().map_or(0, |pool| Arc::as_ptr(&pool) as usize);
        let epoch = self.device.replays.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(s) = shadow.as_ref().filter(|s| s.fresh && s.cast_in == capture && (capture != 0 || s.epoch == epoch)) {
            return Ok(as_tensor(&s.buf));
        }
        let buf = match shadow.take() {
            Some(s) => s.buf,
            None => {
                let bytes = (w.len() * 2).next_multiple_of(4).max(4);
                let ptr = self.device.exec.alloc(bytes).map_err(|e| self.fail(op, e))?;
                Arc::new(Buffer { ptr, bytes, device: Arc::clone(&self.device), pool: None, shadow: Mutex::new(None) })
            }
        };
        let t = as_tensor(&buf);
        self.cast_into(op, w, &t)?;
        *shadow = Some(Shadow { buf, fresh: true, cast_in: capture, epoch });
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    //! On the CPU emulator: each bf16-storage kernel against its f32 twin on values bf16 holds exactly (the same
    //! f32 arithmetic on the same values, so equal bit for bit, forward outputs rounded once more), and the
    //! weights' shadows recast exactly when, and only when, the weight changed. Accuracy against the oracle at
    //! bf16 is the op tests' (`cuda_native_emu_bf16`) and the golden runner's.
    use super::*;
    use crate::backend::{Activation, AdamConfig, AdamSlot, Backend, Conv2dParams};
    use crate::tensor::Tensor;
    use rand::{Rng, SeedableRng};

    type Rng8 = rand_chacha::ChaCha8Rng;

    fn to_bf16(v: f32) -> f32 {
        half::bf16::from_f32(v).to_f32()
    }

    /// Random values in [-2, 2) that bf16 holds exactly.
    fn bf16_values(r: &mut Rng8, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(shape, (0..n).map(|_| to_bf16(r.gen_range(-2.0f32..2.0))).collect()).unwrap()
    }

    fn bits(be: &CudaNativeBackend, t: &CudaNativeTensor) -> Vec<u32> {
        be.download(t).unwrap().data().iter().map(|v| v.to_bits()).collect()
    }

    fn rounded_bits(be: &CudaNativeBackend, t: &CudaNativeTensor) -> Vec<u32> {
        be.download(t).unwrap().data().iter().map(|&v| to_bf16(v).to_bits()).collect()
    }

    /// `t` uploaded as f32 and as bf16 storage.
    fn both(be: &CudaNativeBackend, t: &Tensor) -> (CudaNativeTensor, CudaNativeTensor) {
        let f = be.upload(t).unwrap();
        let b = be.cast("test", &f, Storage::Bf16).unwrap();
        assert_eq!((b.storage(), b.bytes()), (Storage::Bf16, 2 * t.len()));
        (f, b)
    }

    /// v6 reads bf16 operands as v4 reads f32 ones rounded to bf16: on bf16 values every operand combination
    /// gives v4's weight gradient bit for bit; a forward convolution's bf16 output is its f32 result rounded,
    /// through the epilogue and through conv_sum_splits (split-K).
    #[test]
    fn bf16_storage_convolutions_equal_the_f32_ones_on_bf16_values() {
        let be = CudaNativeBackend::emulator().with_precision(Precision::Bf16).poisoned();
        let mut r = Rng8::seed_from_u64(3);
        // 64-row tiles, a ragged column tile and padding; 16-row tiles and stride 2; a split reduction.
        let cases = [
            ([2, 8, 9, 9], [20, 8, 3, 3], [1, 1], [1, 1]),
            ([3, 16, 5, 5], [8, 16, 4, 4], [2, 2], [1, 1]),
            ([2, 64, 4, 4], [2, 64, 4, 4], [1, 1], [0, 0]),
        ];
        for (xs, ws, stride, pad) in cases {
            let tag = format!("x {xs:?} w {ws:?}");
            let p = Conv2dParams::new(stride, pad);
            let (xf, xb) = both(&be, &bf16_values(&mut r, &xs));
            let w = be.upload(&bf16_values(&mut r, &ws)).unwrap();
            let y_from_f32 = be.conv2d(&xf, &w, p).unwrap();
            let y = be.conv2d(&xb, &w, p).unwrap();
            assert_eq!(y.storage(), Storage::Bf16, "{tag}: a forward convolution's output is an activation");
            assert_eq!(bits(&be, &y), bits(&be, &y_from_f32), "{tag}: conv2d from bf16 vs f32 x");
            // The same GEMM with an f32 output (the trait's conv_transpose2d_bwd_data is conv2d's kernel).
            let y_f32 = be.conv_transpose2d_bwd_data(&xf, &w, p).unwrap();
            assert_eq!(y_f32.storage(), Storage::F32, "{tag}: a gradient is f32");
            assert_eq!(bits(&be, &y), rounded_bits(&be, &y_f32), "{tag}: the bf16 output is the f32 one rounded");

            let (dyf, dyb) = both(&be, &bf16_values(&mut r, y.shape()));
            let dw_v4 = bits(&be, &be.conv2d_bwd_weight(&xf, &dyf, ws, p).unwrap());
            for (xi, dyi, name) in [(&xb, &dyf, "bf16 x, f32 dy"), (&xf, &dyb, "f32 x, bf16 dy"), (&xb, &dyb, "bf16 x, bf16 dy")] {
                assert_eq!(bits(&be, &be.conv2d_bwd_weight(xi, dyi, ws, p).unwrap()), dw_v4, "{tag}: conv2d_bwd_weight, {name}");
            }
            let dx = bits(&be, &be.conv2d_bwd_data(&dyf, &w, xs, p).unwrap());
            assert_eq!(bits(&be, &be.conv2d_bwd_data(&dyb, &w, xs, p).unwrap()), dx, "{tag}: conv2d_bwd_data from bf16 dy");
        }
    }

    /// Which convolution kernels bf16 storage launches: v6 wherever an operand is bf16, v4 for two f32 ones.
    #[test]
    fn bf16_storage_launches_v6_where_an_operand_is_bf16() {
        let be = CudaNativeBackend::recorder(false).with_precision(Precision::Bf16);
        let mut r = Rng8::seed_from_u64(4);
        let (xs, ws, p) = ([2, 8, 9, 9], [20, 8, 3, 3], Conv2dParams::new([1, 1], [1, 1]));
        let (xf, xb) = both(&be, &bf16_values(&mut r, &xs));
        let w = be.upload(&bf16_values(&mut r, &ws)).unwrap();
        let (dyf, dyb) = both(&be, &bf16_values(&mut r, &[2, 20, 9, 9]));
        let convs = |be: &CudaNativeBackend| -> Vec<&str> {
            be.take_launches().into_iter().map(|(k, _)| k.name).filter(|n| n.starts_with("conv2d")).collect()
        };
        be.take_launches();
        be.conv2d(&xb, &w, p).unwrap();
        assert_eq!(convs(&be), ["conv2d_fwd_bf16_store_bf16_bf16"]);
        be.conv2d(&xf, &w, p).unwrap();
        assert_eq!(convs(&be), ["conv2d_fwd_bf16_store_f32_bf16"]);
        be.conv2d_bwd_data(&dyb, &w, xs, p).unwrap();
        assert_eq!(convs(&be), ["conv2d_bwd_data_bf16_store_bf16_bf16_m16"]);
        be.conv2d_bwd_weight(&xb, &dyf, ws, p).unwrap();
        assert_eq!(convs(&be), ["conv2d_bwd_weight_bf16_store_bf16_f32"]);
        be.conv2d_bwd_weight(&xf, &dyb, ws, p).unwrap();
        assert_eq!(convs(&be), ["conv2d_bwd_weight_bf16_store_f32_bf16"]);
        be.conv2d_bwd_weight(&xf, &dyf, ws, p).unwrap();
        assert_eq!(convs(&be), ["conv2d_bwd_weight_bf16_pipe"]);
    }

    /// A captured graph recasts each weight it reads, so that replays see changes made outside it (here an
    /// eager add_assign between replays, in training the other graph's optimizer step).
    #[test]
    fn a_replayed_graph_reads_the_weight_as_it_is_at_replay() {
        let be = CudaNativeBackend::emulator().with_precision(Precision::Bf16);
        let mut r = Rng8::seed_from_u64(12);
        let (x, w0, g) = (bf16_values(&mut r, &[2, 3, 8, 8]), bf16_values(&mut r, &[4, 3, 4, 4]), bf16_values(&mut r, &[4, 3, 4, 4]));
        let p = Conv2dParams::new([2, 2], [1, 1]);
        let xd = be.upload(&x).unwrap();
        let (mut w, gd) = (be.upload(&w0).unwrap(), be.upload(&g).unwrap());
        be.conv2d(&xd, &w, p).unwrap(); // an eager cast: the shadow is fresh when the capture starts
        assert!(be.capture_begin().unwrap());
        let y = be.conv2d(&xd, &w, p).unwrap();
        let graph = be.capture_end().unwrap();
        be.add_assign(&mut w, &gd).unwrap();
        be.replay(&graph).unwrap();
        let expected = be.conv2d(&xd, &be.upload(&be.download(&w).unwrap()).unwrap(), p).unwrap();
        assert_eq!(bits(&be, &y), bits(&be, &expected), "the replay read a stale shadow");
    }

    /// The norms', activations' and channel ops' `_bf16` twins: the same statistics and gradients bit for
    /// bit, outputs rounded once, stored as bf16.
    #[test]
    fn bf16_storage_norms_activations_and_channel_ops_equal_their_f32_twins() {
        let be = CudaNativeBackend::emulator().with_precision(Precision::Bf16).poisoned();
        let mut r = Rng8::seed_from_u64(5);
        let shape = [3, 4, 5, 5];
        let (xf, xb) = both(&be, &bf16_values(&mut r, &shape));
        let dy = be.upload(&bf16_values(&mut r, &shape)).unwrap();
        let up = |t: Tensor| be.upload(&t).unwrap();
        let (gamma, beta) = (up(bf16_values(&mut r, &[4])), up(bf16_values(&mut r, &[4])));

        for act in [Activation::Relu, Activation::LeakyRelu { slope: 0.2 }, Activation::Tanh, Activation::Sigmoid] {
            let (yf, yb) = (be.activation(act, &xf).unwrap(), be.activation(act, &xb).unwrap());
            assert_eq!(yb.storage(), Storage::Bf16, "{act:?}");
            assert_eq!(bits(&be, &yb), rounded_bits(&be, &yf), "{act:?} forward");
            // The backward from the stored y (tanh, sigmoid) or x: as the f32 kernel from the same values.
            let yb_as_f32 = be.f32_of("test", &yb).unwrap();
            let dx_b = be.activation_bwd(act, &xb, &yb, &dy).unwrap();
            let dx_f = be.activation_bwd(act, &xf, &yb_as_f32, &dy).unwrap();
            assert_eq!((dx_b.storage(), bits(&be, &dx_b)), (Storage::F32, bits(&be, &dx_f)), "{act:?} backward");
        }

        let run = |x: &CudaNativeTensor| {
            let (mut rm, mut rv) = (up(Tensor::zeros(&[4])), up(Tensor::new(&[4], vec![1.0; 4]).unwrap()));
            let (y, st) = be.batch_norm2d_train_act(x, &gamma, &beta, &mut rm, &mut rv, 1e-5, 0.1, Activation::Relu).unwrap();
            let g = be.batch_norm2d_bwd(&dy, x, &gamma, &st).unwrap();
            let eval = be.batch_norm2d_eval(x, &gamma, &beta, &rm, &rv, 1e-5).unwrap();
            let (yi, sti) = be.instance_norm2d_act(x, &gamma, &beta, 1e-5, Activation::LeakyRelu { slope: 0.2 }).unwrap();
            let gi = be.instance_norm2d_bwd(&dy, x, &gamma, &sti).unwrap();
            let outputs = [y, eval, yi];
            let exact = [st.mean, st.invstd, rm, rv, g.dx, g.dgamma, g.dbeta, sti.mean, sti.invstd, gi.dx, gi.dgamma, gi.dbeta];
            (outputs, exact)
        };
        let ((out_f, exact_f), (out_b, exact_b)) = (run(&xf), run(&xb));
        for (i, (f, b)) in out_f.iter().zip(&out_b).enumerate() {
            assert_eq!(b.storage(), Storage::Bf16, "output {i} (batch norm, eval, instance norm)");
            assert_eq!(bits(&be, b), rounded_bits(&be, f), "output {i} (batch norm, eval, instance norm)");
        }
        for (i, (f, b)) in exact_f.iter().zip(&exact_b).enumerate() {
            assert_eq!(bits(&be, b), bits(&be, f), "statistic or gradient {i}");
        }

        // InceptionV3's channel ops: bf16 pieces concatenate as bf16 (an f32 piece makes the result f32), and
        // affine_channels updates bf16 in place (copying first what a clone shares).
        let (x2f, x2b) = both(&be, &bf16_values(&mut r, &[3, 2, 5, 5]));
        let cat_f = be.concat_channels(&[&xf, &x2f]).unwrap();
        let cat_b = be.concat_channels(&[&xb, &x2b]).unwrap();
        let mixed = be.concat_channels(&[&xb, &x2f]).unwrap();
        assert_eq!((cat_b.storage(), mixed.storage()), (Storage::Bf16, Storage::F32));
        assert_eq!(bits(&be, &cat_b), bits(&be, &cat_f), "concat_channels");
        assert_eq!(bits(&be, &mixed), bits(&be, &cat_f), "concat_channels of bf16 and f32 pieces");
        let (mut af, mut ab) = (xf.clone(), xb.clone());
        be.affine_channels(&mut af, &gamma, &beta, true).unwrap();
        be.affine_channels(&mut ab, &gamma, &beta, true).unwrap();
        assert_eq!(ab.storage(), Storage::Bf16);
        assert_eq!(bits(&be, &ab), rounded_bits(&be, &af), "affine_channels");
        assert_eq!(bits(&be, &xb), bits(&be, &xf), "affine_channels changed a clone's data");
    }

    /// A weight's bf16 shadow is cast once and reused until the weight is written (add_assign, Adam,
    /// overwrite); the recast shadow equals a fresh weight's.
    #[test]
    fn weight_shadows_are_recast_exactly_when_the_weight_changes() {
        let casts = |b: &CudaNativeBackend| b.take_launches().iter().filter(|(k, _)| k.name == "cast_f32_to_bf16").count();
        let rec = CudaNativeBackend::recorder(false).with_precision(Precision::Bf16);
        let emu = CudaNativeBackend::emulator().with_precision(Precision::Bf16);
        let mut r = Rng8::seed_from_u64(9);
        let (x, w0, g) = (bf16_values(&mut r, &[2, 3, 8, 8]), bf16_values(&mut r, &[4, 3, 4, 4]), bf16_values(&mut r, &[4, 3, 4, 4]));
        let p = Conv2dParams::new([2, 2], [1, 1]);
        for be in [&rec, &emu] {
            // The recorder counts the casts (it runs nothing); the emulator computes the results.
            let one_cast = |what: &str| {
                if std::ptr::eq(be, &rec) {
                    assert_eq!(casts(be), 1, "{what}");
                }
            };
            let xd = be.upload(&x).unwrap();
            let (mut w, gd) = (be.upload(&w0).unwrap(), be.upload(&g).unwrap());
            let y0 = be.conv2d(&xd, &w, p).unwrap();
            let dy = be.upload(&Tensor::zeros(y0.shape())).unwrap();
            be.conv2d_bwd_data(&dy, &w, [2, 3, 8, 8], p).unwrap();
            be.conv2d(&xd, &w, p).unwrap();
            one_cast("one cast for three convolutions of an unchanged weight");

            be.add_assign(&mut w, &gd).unwrap();
            let y1 = be.conv2d(&xd, &w, p).unwrap();
            one_cast("add_assign: recast");
            let (mut m, mut v) = (be.upload(&Tensor::zeros(&[4, 3, 4, 4])).unwrap(), be.upload(&Tensor::zeros(&[4, 3, 4, 4])).unwrap());
            let cfg = AdamConfig { lr: 0.1, beta1: 0.5, beta2: 0.9, eps: 1e-8 };
            be.adam_step_all(&mut [AdamSlot { param: &mut w, grad: &gd, exp_avg: &mut m, exp_avg_sq: &mut v }], &cfg, 1).unwrap();
            let y2 = be.conv2d(&xd, &w, p).unwrap();
            one_cast("adam_step_all: recast");
            be.overwrite(&w, &w0).unwrap();
            let y3 = be.conv2d(&xd, &w, p).unwrap();
            one_cast("overwrite: recast");

            if std::ptr::eq(be, &emu) {
                // Each result is the one a freshly uploaded copy of the weight gives (no stale shadow).
                let fresh = |t: &CudaNativeTensor| {
                    let copy = be.upload(&be.download(t).unwrap()).unwrap();
                    bits(be, &be.conv2d(&xd, &copy, p).unwrap())
                };
                let w_now = be.download(&w).unwrap();
                assert_eq!(w_now.data(), w0.data(), "overwrite wrote the weight");
                assert_eq!(bits(be, &y3), bits(be, &y0), "after overwrite: the first weight's result");
                let w1 = Tensor::new(w0.shape(), w0.data().iter().zip(g.data()).map(|(a, b)| a + b).collect()).unwrap();
                assert_eq!(bits(be, &y1), bits(be, &be.conv2d(&xd, &be.upload(&w1).unwrap(), p).unwrap()), "after add_assign");
                assert_ne!(bits(be, &y1), bits(be, &y0), "add_assign changed the result");
                assert_ne!(bits(be, &y2), bits(be, &y1), "Adam changed the result");
                assert_eq!(bits(be, &y3), fresh(&w), "the shadow equals a fresh weight's");
            }
        }
    }
}
