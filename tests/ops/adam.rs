//! adam_step against torch.optim.Adam's formula in f64 over several steps (moments, parameter, and the
//! accumulated update itself); bad input.

use crate::common::backends::BackendUnderTest;
use crate::common::compare::{assert_close, TOL};
use crate::common::random::{rand_tensor, rng};
use crate::common::rejection::{assert_rejected, Rejection::*};
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::{AdamConfig, Backend};
use cxr_gan_reference as oracle;

pub fn adam_matches_torch_formula<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(111);
    let shape = [7, 5, 3, 3];
    let cfg = AdamConfig { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
    let cfg_ref = oracle::AdamConfig { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps };
    let p0 = rand_tensor(&mut r, &shape, -1.0, 1.0);
    let mut p = b.up(&p0);
    let p_alias = p.clone();
    let mut m = b.zeros(&shape).unwrap();
    let mut v = b.zeros(&shape).unwrap();
    let (mut p_ref, mut m_ref, mut v_ref) = (p0.to_f64(), vec![0.0; p0.len()], vec![0.0; p0.len()]);
    for step in 1..=5u64 {
        let g = rand_tensor(&mut r, &shape, -1.0, 1.0);
        b.adam_step(&mut p, &b.up(&g), &mut m, &mut v, &cfg, step).unwrap();
        oracle::adam_step(&mut p_ref, &g.to_f64(), &mut m_ref, &mut v_ref, &cfg_ref, step);
        // The update lr·m̂/denom is ~1e-4 of the parameter: check it, not just the (nearly unchanged) param.
        assert_close(&format!("adam exp_avg step {step}"), b.down(&m).data(), &m_ref, TOL);
        assert_close(&format!("adam exp_avg_sq step {step}"), b.down(&v).data(), &v_ref, TOL);
        assert_close(&format!("adam param step {step}"), b.down(&p).data(), &p_ref, TOL);
    }
    // The accumulated update p − p0 itself, to 1e-3 of its size: p is f32 near 1, so p − p0 (~1e-3) only
    // keeps ~4 significant digits of f32 rounding; this catches a wrong step size the param check cannot.
    let pd = b.down(&p);
    let upd: Vec<f32> = pd.data().iter().zip(p0.data()).map(|(a, b)| a - b).collect();
    let upd_ref: Vec<f64> = p_ref.iter().zip(p0.data()).map(|(a, &b)| a - b as f64).collect();
    assert_close("adam accumulated update", &upd, &upd_ref, 1e-3);
    assert_eq!(b.down(&p_alias), p0, "a clone of the parameter is not changed by the step");
}

pub fn adam_bad_input<B: Backend>(b: &BackendUnderTest<B>) {
    let c = CpuBackend::new();
    let mut r = rng(131);
    let x = rand_tensor(&mut r, &[2, 3, 8, 8], -1.0, 1.0);
    let g_short = rand_tensor(&mut r, &[2, 3, 8, 7], -1.0, 1.0);
    let cfg = AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let xt = b.up(&x);
    let (mut p, mut m, mut v) = (xt.clone(), xt.clone(), xt.clone());
    let (mut pc, mut mc, mut vc) = (x.clone(), x.clone(), x.clone());
    assert_rejected(
        "adam_step grad",
        Shape,
        b.adam_step(&mut p, &b.up(&g_short), &mut m, &mut v, &cfg, 1),
        c.adam_step(&mut pc, &g_short, &mut mc, &mut vc, &cfg, 1),
        &["[2, 3, 8, 8]", "[2, 3, 8, 7]"],
    );
    assert_rejected(
        "adam_step step 0",
        InvalidArgument,
        b.adam_step(&mut p, &xt, &mut m, &mut v, &cfg, 0),
        c.adam_step(&mut pc, &x, &mut mc, &mut vc, &cfg, 0),
        &[],
    );
}

/// adam_step_all (one launch over every parameter on backends that fuse it) gives bit for bit what
/// adam_step gives tensor by tensor, on tensors of different lengths (one empty), over three steps; a clone
/// of a parameter taken before the step keeps its values.
pub fn adam_step_all_matches_adam_step<B: Backend>(b: &BackendUnderTest<B>) {
    use cxr_gan::backend::AdamSlot;
    let mut r = rng(113);
    let shapes: [&[usize]; 4] = [&[64, 3, 4, 4], &[5], &[0], &[300, 7]];
    let cfg = AdamConfig { lr: 1e-4, beta1: 0.5, beta2: 0.9, eps: 1e-8 };
    let init: Vec<_> = shapes.iter().map(|s| rand_tensor(&mut r, s, -1.0, 1.0)).collect();
    let mut all: Vec<_> = init.iter().map(|p| (b.up(p), b.zeros(p.shape()).unwrap(), b.zeros(p.shape()).unwrap())).collect();
    let mut one: Vec<_> = init.iter().map(|p| (b.up(p), b.zeros(p.shape()).unwrap(), b.zeros(p.shape()).unwrap())).collect();
    let alias = all[0].0.clone();
    for step in 1..=3u64 {
        let grads: Vec<_> = shapes.iter().map(|s| b.up(&rand_tensor(&mut r, s, -1.0, 1.0))).collect();
        let mut slots: Vec<_> =
            all.iter_mut().zip(&grads).map(|((p, m, v), g)| AdamSlot { param: p, grad: g, exp_avg: m, exp_avg_sq: v }).collect();
        b.adam_step_all(&mut slots, &cfg, step).unwrap();
        for ((p, m, v), g) in one.iter_mut().zip(&grads) {
            b.adam_step(p, g, m, v, &cfg, step).unwrap();
        }
        for (i, ((pa, ma, va), (po, mo, vo))) in all.iter().zip(&one).enumerate() {
            assert_eq!(b.down(pa), b.down(po), "param {i} step {step}");
            assert_eq!(b.down(ma), b.down(mo), "exp_avg {i} step {step}");
            assert_eq!(b.down(va), b.down(vo), "exp_avg_sq {i} step {step}");
        }
    }
    assert_eq!(b.down(&alias), init[0], "a clone of a parameter is not changed by the step");
}
