//! The FID ops of the f32 CPU backend (avg/max/global pooling, bilinear resize, channel concat and affine)
//! against the f64 oracle behind the same trait, on seeded random shapes, with a poisoned backend (fresh
//! buffers start as NaN, so an element a kernel forgets to write fails). Both sides see the same f32
//! values: ‖ours − ref‖₂ / ‖ref‖₂ ≤ 1e-5 per output. Also: Inception's own shapes, bad input rejected
//! with the same error by both, NaN propagation, and the default "backend lacks this op" body.

mod common;

use common::reference_backend::ReferenceBackend;
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::{Backend, Pool2dParams};
use cxr_gan::{Error, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TOL: f64 = 1e-5;

fn assert_close(name: &str, ours: &Tensor, reference: &cxr_gan_reference::Array, tol: f64) {
    assert_eq!(ours.shape(), reference.shape.as_slice(), "{name}: shape");
    common::compare::assert_close(name, ours.data(), &reference.data, tol);
}

fn rand_tensor(rng: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|_| rng.gen_range(-2.0f32..2.0)).collect()).unwrap()
}

/// A random pooling case: 1–3 samples, 1–5 channels, kernel 1–5, stride 1–3, padding ≤ kernel/2.
fn random_pool(rng: &mut ChaCha8Rng) -> (Vec<usize>, Pool2dParams) {
    let kernel = [rng.gen_range(1..=5), rng.gen_range(1..=5)];
    let padding = [rng.gen_range(0..=kernel[0] / 2), rng.gen_range(0..=kernel[1] / 2)];
    let stride = [rng.gen_range(1..=3), rng.gen_range(1..=3)];
    let shape = vec![rng.gen_range(1..=3), rng.gen_range(1..=5), rng.gen_range(kernel[0]..=kernel[0] + 12), rng.gen_range(kernel[1]..=kernel[1] + 12)];
    (shape, Pool2dParams::new(kernel, stride, padding))
}

/// The pools of FID's InceptionV3 at their real shapes (batch 2).
fn inception_pools() -> Vec<(&'static str, Vec<usize>, Pool2dParams, bool)> {
    let s2 = Pool2dParams::new([3, 3], [2, 2], [0, 0]);
    let s1 = Pool2dParams::new([3, 3], [1, 1], [1, 1]);
    vec![
        ("maxpool1 147", vec![2, 64, 147, 147], s2, true),
        ("maxpool2 71", vec![2, 192, 71, 71], s2, true),
        ("Mixed_5b pool", vec![2, 192, 35, 35], s1, false),
        ("Mixed_6a pool", vec![2, 288, 35, 35], s2, true),
        ("Mixed_6b pool", vec![2, 768, 17, 17], s1, false),
        ("Mixed_7a pool", vec![2, 768, 17, 17], s2, true),
        ("Mixed_7b pool", vec![2, 1280, 8, 8], s1, false),
        ("Mixed_7c pool", vec![2, 2048, 8, 8], s1, true),
    ]
}

#[test]
fn avg_and_max_pool2d_match_the_oracle_on_random_shapes() {
    let (cpu, oracle) = (CpuBackend::poisoned(), ReferenceBackend);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for case in 0..40 {
        let (shape, p) = random_pool(&mut rng);
        let x = rand_tensor(&mut rng, &shape);
        let xr = oracle.upload(&x).unwrap();
        let tag = format!("#{case} x {shape:?} {p:?}");
        for include in [false, true] {
            let ours = cpu.avg_pool2d(&x, p, include).unwrap();
            assert_close(&format!("avg_pool2d include_pad={include} {tag}"), &ours, &oracle.avg_pool2d(&xr, p, include).unwrap(), TOL);
        }
        let ours = cpu.max_pool2d(&x, p).unwrap();
        let reference = oracle.max_pool2d(&xr, p).unwrap();
        // max is exact: every output is one of the inputs.
        assert_eq!(ours.to_f64(), reference.data, "max_pool2d {tag}");
    }
}

#[test]
fn pools_match_the_oracle_at_inception_shapes() {
    let (cpu, oracle) = (CpuBackend::poisoned(), ReferenceBackend);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for (name, shape, p, is_max) in inception_pools() {
        let x = rand_tensor(&mut rng, &shape);
        let xr = oracle.upload(&x).unwrap();
        if is_max {
            assert_eq!(cpu.max_pool2d(&x, p).unwrap().to_f64(), oracle.max_pool2d(&xr, p).unwrap().data, "{name}");
        } else {
            assert_close(name, &cpu.avg_pool2d(&x, p, false).unwrap(), &oracle.avg_pool2d(&xr, p, false).unwrap(), TOL);
        }
    }
}

#[test]
fn global_avg_pool2d_matches_the_oracle() {
    let (cpu, oracle) = (CpuBackend::poisoned(), ReferenceBackend);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for shape in [[2, 2048, 8, 8], [3, 64, 73, 73], [1, 5, 1, 1], [4, 7, 3, 11]] {
        let x = rand_tensor(&mut rng, &shape);
        let ours = cpu.global_avg_pool2d(&x).unwrap();
        assert_eq!(ours.shape(), &[shape[0], shape[1]]);
        assert_close(&format!("global_avg_pool2d {shape:?}"), &ours, &oracle.global_avg_pool2d(&oracle.upload(&x).unwrap()).unwrap(), TOL);
    }
}

#[test]
fn resize_bilinear_matches_the_oracle() {
    let (cpu, oracle) = (CpuBackend::poisoned(), ReferenceBackend);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut cases: Vec<([usize; 4], usize, usize)> = vec![
        ([2, 3, 64, 64], 299, 299),  // FID on DCGAN samples
        ([1, 3, 80, 100], 299, 299), // rectangular, upscaled
        ([1, 3, 320, 400], 299, 299), // downscaled
        ([2, 3, 299, 299], 299, 299), // identity
        ([1, 2, 1, 1], 5, 3),
    ];
    for _ in 0..20 {
        let shape = [rng.gen_range(1..=2), rng.gen_range(1..=3), rng.gen_range(1..=40), rng.gen_range(1..=40)];
        cases.push((shape, rng.gen_range(1..=60), rng.gen_range(1..=60)));
    }
    for (shape, oh, ow) in cases {
        let x = rand_tensor(&mut rng, &shape);
        let ours = cpu.resize_bilinear(&x, oh, ow).unwrap();
        let reference = oracle.resize_bilinear(&oracle.upload(&x).unwrap(), oh, ow).unwrap();
        assert_close(&format!("resize_bilinear {shape:?} -> {oh}x{ow}"), &ours, &reference, TOL);
        if (shape[2], shape[3]) == (oh, ow) {
            assert_eq!(ours, x, "resizing to the same size is the identity");
        }
    }
}

#[test]
fn concat_and_affine_channels_match_the_oracle() {
    let (cpu, oracle) = (CpuBackend::poisoned(), ReferenceBackend);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (n, h, w, chans) in [(2, 35, 35, vec![64, 64, 96, 32]), (3, 8, 8, vec![320, 768, 768, 192]), (1, 4, 5, vec![1]), (2, 3, 1, vec![2, 5])] {
        let xs: Vec<Tensor> = chans.iter().map(|&c| rand_tensor(&mut rng, &[n, c, h, w])).collect();
        let xr: Vec<_> = xs.iter().map(|x| oracle.upload(x).unwrap()).collect();
        let ours = cpu.concat_channels(&xs.iter().collect::<Vec<_>>()).unwrap();
        let reference = oracle.concat_channels(&xr.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(ours.to_f64(), reference.data, "concat_channels {chans:?} (a copy: exact)");

        let c: usize = chans.iter().sum();
        let scale = rand_tensor(&mut rng, &[c]);
        let shift = rand_tensor(&mut rng, &[c]);
        let (sr, tr) = (oracle.upload(&scale).unwrap(), oracle.upload(&shift).unwrap());
        let yr = oracle.upload(&ours).unwrap();
        for relu in [false, true] {
            let mut a = ours.clone();
            cpu.affine_channels(&mut a, &scale, &shift, relu).unwrap();
            let mut ar = yr.clone();
            oracle.affine_channels(&mut ar, &sr, &tr, relu).unwrap();
            assert_close(&format!("affine_channels relu={relu} [{n}, {c}, {h}, {w}]"), &a, &ar, TOL);
            if relu {
                assert!(a.data().iter().all(|&v| v >= 0.0));
            }
        }
    }
}

#[test]
fn nan_propagates_like_pytorch() {
    let cpu = CpuBackend::poisoned();
    let mut x = Tensor::new(&[1, 1, 3, 3], (1..=9).map(|v| v as f32).collect()).unwrap();
    x.data_mut()[4] = f32::NAN;
    let p = Pool2dParams::new([3, 3], [1, 1], [1, 1]);
    assert!(cpu.max_pool2d(&x, p).unwrap().data().iter().all(|v| v.is_nan()), "max_pool2d keeps NaN");
    assert!(cpu.avg_pool2d(&x, p, false).unwrap().data().iter().all(|v| v.is_nan()));
    let one = Tensor::full(&[1], 1.0);
    let zero = Tensor::full(&[1], 0.0);
    cpu.affine_channels(&mut x, &one, &zero, true).unwrap();
    assert!(x.data()[4].is_nan(), "relu(NaN) = NaN");
}

#[test]
fn bad_input_is_rejected_alike_by_cpu_and_oracle() {
    let (cpu, oracle) = (CpuBackend::new(), ReferenceBackend);
    let x = Tensor::zeros(&[1, 2, 5, 5]);
    let xr = oracle.upload(&x).unwrap();
    let both = |name: &str, a: cxr_gan::Result<Tensor>, b: cxr_gan::Result<cxr_gan_reference::Array>| {
        let (ea, eb) = (a.expect_err(name), b.expect_err(name));
        assert!(matches!(ea, Error::Shape { .. } | Error::InvalidArgument { .. }), "{name}: {ea}");
        assert_eq!(ea.to_string(), eb.to_string(), "{name}");
        println!("{name}: {ea}");
    };
    let too_much_pad = Pool2dParams::new([3, 3], [1, 1], [2, 2]);
    both("pad > k/2", cpu.max_pool2d(&x, too_much_pad), oracle.max_pool2d(&xr, too_much_pad));
    let zero_stride = Pool2dParams::new([3, 3], [0, 1], [0, 0]);
    both("zero stride", cpu.avg_pool2d(&x, zero_stride, false), oracle.avg_pool2d(&xr, zero_stride, false));
    let big = Pool2dParams::new([7, 3], [1, 1], [0, 0]);
    both("window too big", cpu.avg_pool2d(&x, big, true), oracle.avg_pool2d(&xr, big, true));
    let flat = Tensor::zeros(&[2, 5]);
    let flat_r = oracle.upload(&flat).unwrap();
    both("3-d pool input", cpu.global_avg_pool2d(&flat), oracle.global_avg_pool2d(&flat_r));
    both("resize to 0", cpu.resize_bilinear(&x, 0, 4), oracle.resize_bilinear(&xr, 0, 4));
    let other = Tensor::zeros(&[1, 2, 4, 5]);
    let other_r = oracle.upload(&other).unwrap();
    both("concat H mismatch", cpu.concat_channels(&[&x, &other]), oracle.concat_channels(&[&xr, &other_r]));
    both("concat nothing", cpu.concat_channels(&[]), oracle.concat_channels(&[]));
    let s3 = Tensor::zeros(&[3]);
    let s3r = oracle.upload(&s3).unwrap();
    let (mut xm, mut xrm) = (x.clone(), xr.clone());
    let (ea, eb) = (cpu.affine_channels(&mut xm, &s3, &s3, false).unwrap_err(), oracle.affine_channels(&mut xrm, &s3r, &s3r, false).unwrap_err());
    assert_eq!(ea.to_string(), eb.to_string());
    assert!(ea.to_string().contains("scale [3] must be [2]"), "{ea}");
}

/// A backend with only the required ops: every FID op answers with a `Backend` error naming the op.
#[test]
fn default_bodies_report_the_missing_op() {
    struct Bare;
    // Delegate every required method to the oracle adapter; leave the FID ops to their defaults.
    macro_rules! delegate {
        ($($name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty;)*) => {
            $(fn $name(&self, $($arg: $ty),*) -> $ret { ReferenceBackend.$name($($arg),*) })*
        };
    }
    use cxr_gan::backend::{Activation, AdamConfig, Conv2dParams, InstanceNormJvpGrads, NormGrads, NormStats, PenaltyHead};
    use cxr_gan_reference::Array;
    type R<T> = cxr_gan::Result<T>;
    impl Backend for Bare {
        type Tensor = Array;
        fn name(&self) -> String {
            "bare".into()
        }
        fn shape(&self, t: &Array) -> Vec<usize> {
            t.shape.clone()
        }
        delegate! {
            upload(t: &Tensor) -> R<Array>;
            download(t: &Array) -> R<Tensor>;
            full(shape: &[usize], value: f32) -> R<Array>;
            reshape(t: &Array, shape: &[usize]) -> R<Array>;
            add(a: &Array, b: &Array) -> R<Array>;
            add_assign(a: &mut Array, b: &Array) -> R<()>;
            scale(a: &Array, s: f32) -> R<Array>;
            lerp_per_sample(a: &Array, b: &Array, alpha: &[f32]) -> R<Array>;
            mean(t: &Array) -> R<f64>;
            conv2d(x: &Array, w: &Array, p: Conv2dParams) -> R<Array>;
            conv2d_bwd_data(dy: &Array, w: &Array, xs: [usize; 4], p: Conv2dParams) -> R<Array>;
            conv2d_bwd_weight(x: &Array, dy: &Array, ws: [usize; 4], p: Conv2dParams) -> R<Array>;
            batch_norm2d_train(x: &Array, g: &Array, b: &Array, rm: &mut Array, rv: &mut Array, eps: f32, m: f32) -> R<(Array, NormStats<Array>)>;
            batch_norm2d_eval(x: &Array, g: &Array, b: &Array, rm: &Array, rv: &Array, eps: f32) -> R<Array>;
            batch_norm2d_bwd(dy: &Array, x: &Array, g: &Array, s: &NormStats<Array>) -> R<NormGrads<Array>>;
            instance_norm2d(x: &Array, g: &Array, b: &Array, eps: f32) -> R<(Array, NormStats<Array>)>;
            instance_norm2d_bwd(dy: &Array, x: &Array, g: &Array, s: &NormStats<Array>) -> R<NormGrads<Array>>;
            instance_norm2d_jvp(x: &Array, xd: &Array, g: &Array, s: &NormStats<Array>) -> R<Array>;
            instance_norm2d_jvp_bwd(x: &Array, xd: &Array, g: &Array, s: &NormStats<Array>, yb: &Array, ydb: &Array) -> R<InstanceNormJvpGrads<Array>>;
            activation(a: Activation, x: &Array) -> R<Array>;
            activation_bwd(a: Activation, x: &Array, y: &Array, dy: &Array) -> R<Array>;
            bce(p: &Array, t: &Array) -> R<(f64, Array)>;
            bce_logits(l: &Array, t: &Array) -> R<(f64, Array)>;
            gradient_penalty_head(g: &Array, lambda: f32) -> R<PenaltyHead<Array>>;
            adam_step(p: &mut Array, g: &Array, m: &mut Array, v: &mut Array, c: &AdamConfig, step: u64) -> R<()>;
        }
    }
    let b = Bare;
    let x = b.zeros(&[1, 1, 4, 4]).unwrap();
    let p = Pool2dParams::new([2, 2], [2, 2], [0, 0]);
    let errors = [
        b.avg_pool2d(&x, p, true).unwrap_err(),
        b.max_pool2d(&x, p).unwrap_err(),
        b.global_avg_pool2d(&x).unwrap_err(),
        b.resize_bilinear(&x, 2, 2).unwrap_err(),
        b.concat_channels(&[&x]).unwrap_err(),
        b.affine_channels(&mut x.clone(), &x, &x, true).unwrap_err(),
    ];
    for (e, op) in errors.iter().zip(["avg_pool2d", "max_pool2d", "global_avg_pool2d", "resize_bilinear", "concat_channels", "affine_channels"]) {
        assert!(matches!(e, Error::Backend { .. }), "{e}");
        assert!(e.to_string().contains(op) && e.to_string().contains("bare"), "{e}");
    }
}
