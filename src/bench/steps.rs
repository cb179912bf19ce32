//! Whole workloads, checked against `cpu` then timed like the ops: one DCGAN iteration, one WGAN-GP critic
//! iteration and one generator iteration (nz 100, ngf = ndf = 64, as benches/train_step.rs), and FID's
//! InceptionV3 features of generated-size images (64×64, resized to 299 as pytorch-fid does) with random
//! weights: the real ones do not change the speed, and they are too large to ship to a GPU machine.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::check::{compare, Check, Named, Tolerances};
use super::report::Row;
use super::time::{time, Plan, Timing};
use crate::backend::cpu::CpuBackend;
use crate::backend::Backend;
use crate::error::Result;
use crate::fid::inception::InceptionV3;
use crate::nn::dcgan::{discriminator, generator, Head, Widths, IMAGE_SIZE, NC};
use crate::nn::Grads;
use crate::tensor::{fmt_shape, Tensor};
use crate::train::dcgan::PendingDcganStep;
use crate::train::dcgan::{Dcgan, DcganStep};
use crate::train::graphed::{AdamCounts, Replayer};
use crate::train::wgan_gp::{CriticStep, GeneratorStep, PendingCriticStep, PendingGeneratorStep, WganGp};

pub const DCGAN: &str = "dcgan step";
/// The DCGAN iteration captured as a graph and replayed (backends that capture: cuda-native).
pub const DCGAN_GRAPH: &str = "dcgan step, graph replay";
pub const WGAN_CRITIC: &str = "wgan-gp critic step";
pub const WGAN_GENERATOR: &str = "wgan-gp generator step";
/// The WGAN-GP iterations captured as graphs and replayed (backends that capture: cuda-native).
pub const WGAN_CRITIC_GRAPH: &str = "wgan-gp critic step, graph replay";
pub const WGAN_GENERATOR_GRAPH: &str = "wgan-gp generator step, graph replay";
pub const FID: &str = "inception_v3 features 2048";
/// The group of the three training iterations.
pub const ITERATION: &str = "iteration";
pub const FID_GROUP: &str = "fid";

/// The host inputs of a training iteration: real images in [−1, 1], noise ~ N(0, 1), the GP's α.
struct Batch {
    real: Tensor,
    noise: Tensor,
    alpha: Vec<f32>,
}

impl Batch {
    fn new(n: usize, nz: usize) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let image = [n, NC, IMAGE_SIZE, IMAGE_SIZE];
        let real = Tensor::new(&image, (0..image.iter().product()).map(|_| rng.gen_range(-1.0..1.0)).collect())?;
        let noise = Tensor::new(&[n, nz, 1, 1], (0..n * nz).map(|_| rng.sample(StandardNormal)).collect())?;
        let alpha = (0..n).map(|_| rng.gen_range(0.0..1.0)).collect();
        Ok(Batch { real, noise, alpha })
    }
}

fn batch_shapes(n: usize, nz: usize) -> String {
    format!("real {}, noise {}", fmt_shape(&[n, NC, IMAGE_SIZE, IMAGE_SIZE]), fmt_shape(&[n, nz, 1, 1]))
}

fn grads<B: Backend>(b: &B, net: &str, g: &Grads<B::Tensor>, out: &mut Vec<Named>) -> Result<()> {
    for (name, t) in &g.entries {
        out.push(Named::tensor(b, format!("grad {net}.{name}"), t)?);
    }
    Ok(())
}

/// A row from a check and a timing of `images` per call; an error in either is kept on the row.
fn finish(mut r: Row, check: Result<Check>, timing: Option<Result<Timing>>, images: usize) -> Row {
    match check {
        Ok(c) => r.check = Some(c),
        Err(e) => r.error = Some(e.to_string()),
    }
    match timing {
        Some(Ok(t)) => {
            r.images_per_s = Some(images as f64 / t.median_s);
            r.time = Some(t);
        }
        Some(Err(e)) => r.error = Some(e.to_string()),
        None => {}
    }
    r
}

/// One DCGAN iteration on `b` and on cpu from the same weights and batch: losses, D's outputs, the fakes
/// and every gradient compared; then timed on `b` (the model keeps training across the timed calls).
pub fn dcgan_row<B: Backend>(b: &B, n: usize, plan: &Plan) -> Row {
    let w = Widths::default();
    let r = Row::new(ITERATION, DCGAN, batch_shapes(n, w.nz));
    fn outputs<B: Backend>(b: &B, m: &mut Dcgan<B::Tensor>, real: &B::Tensor, noise: &B::Tensor) -> Result<Vec<Named>> {
        dcgan_outputs(b, m.step(b, real, noise)?)
    }
    let batch = match Batch::new(n, w.nz) {
        Ok(x) => x,
        Err(e) => return finish(r, Err(e), None, n),
    };
    let cpu = CpuBackend::new();
    let (mut model, real, noise) = match dcgan_setup(b, w, &batch) {
        Ok(x) => x,
        Err(e) => return finish(r, Err(e), None, n),
    };
    let check = outputs(b, &mut model, &real, &noise).and_then(|got| {
        let (mut m, real, noise) = dcgan_setup(&cpu, w, &batch)?;
        Ok(compare(&got, &outputs(&cpu, &mut m, &real, &noise)?, Tolerances::of(b).chain))
    });
    let timing = check.is_ok().then(|| time(b, plan, || Ok(()), |()| model.step(b, &real, &noise)));
    finish(r, check, timing, n)
}

/// The model, and the real batch and noise on the device.
type DcganSetup<T> = (Dcgan<T>, T, T);

fn dcgan_setup<B: Backend>(b: &B, w: Widths, batch: &Batch) -> Result<DcganSetup<B::Tensor>> {
    let mut init = ChaCha8Rng::seed_from_u64(1);
    let g = generator(b, w, &mut init)?;
    let d = discriminator(b, w.ndf, Head::Dcgan, &mut init)?;
    Ok((Dcgan::new(b, g, d)?, b.upload(&batch.real)?, b.upload(&batch.noise)?))
}

/// What a DCGAN iteration's check compares: losses, D's outputs, the fakes, every gradient.
fn dcgan_outputs<B: Backend>(b: &B, s: DcganStep<B::Tensor>) -> Result<Vec<Named>> {
    let mut v = vec![
        Named::scalars("loss_d_real", vec![s.loss_d_real]),
        Named::scalars("loss_d_fake", vec![s.loss_d_fake]),
        Named::scalars("loss_g", vec![s.loss_g]),
        Named::scalars("D(x)", vec![s.d_x]),
        Named::scalars("D(G(z)) before D's step", vec![s.d_g_z1]),
        Named::scalars("D(G(z)) after D's step", vec![s.d_g_z2]),
        Named::tensor(b, "fake", &s.fake)?,
    ];
    grads(b, "D", &s.grads_d, &mut v)?;
    grads(b, "G", &s.grads_g, &mut v)?;
    Ok(v)
}

/// One iteration on a model and its device inputs, returning its pending result.
type PendingIteration<'a, M, T, P> = &'a dyn Fn(&mut M, &[T]) -> Result<P>;

/// How a graph row runs one kind of iteration: the model, the iteration on device inputs (returning its
/// pending result), that result read back (what training reads: the losses), and what the check compares.
struct Graphed<'a, B: Backend, M, P, S> {
    setup: &'a dyn Fn() -> Result<M>,
    pending: PendingIteration<'a, M, B::Tensor, P>,
    resolve: &'a dyn Fn(P) -> Result<S>,
    outputs: &'a dyn Fn(S) -> Result<Vec<Named>>,
}

/// On a backend that captures graphs, one kind of iteration as training runs it there: warmed up, captured
/// once, then replayed on refilled `inputs`. Checked against the same backend's eager iterations from the
/// same weights and inputs, which must agree exactly (the eager rows check those against cpu); then the
/// replays are timed (refilling the inputs and reading the losses included). `None` where the backend does
/// not capture.
fn graph_row<B: Backend, M: AdamCounts, P: Clone, S>(
    b: &B,
    r: Row,
    n: usize,
    plan: &Plan,
    inputs: &[&Tensor],
    it: Graphed<B, M, P, S>,
) -> Option<Row> {
    const ITERATIONS: usize = 3; // warm-up, capture, one replay
    let run = |m: &mut M, x: &[B::Tensor]| (it.pending)(m, x);
    // The replayed iteration's outputs, and the model and replayer to time.
    type Replaying<M, B, P> = (Vec<Named>, M, Replayer<B, P>);
    let graphed = (|| -> Result<Option<Replaying<M, B, P>>> {
        let mut model = (it.setup)()?;
        let mut steps = Replayer::new(true);
        let mut last = None;
        for _ in 0..ITERATIONS {
            last = Some(steps.step(b, &mut model, inputs, run)?);
        }
        if steps.replays() == 0 {
            return Ok(None);
        }
        Ok(Some(((it.outputs)((it.resolve)(last.expect("ITERATIONS > 0"))?)?, model, steps)))
    })();
    let (got, mut model, mut steps) = match graphed {
        Ok(Some(x)) => x,
        Ok(None) => return None,
        Err(e) => return Some(finish(r, Err(e), None, n)),
    };
    let check = (|| {
        let mut m = (it.setup)()?;
        let device = inputs.iter().map(|t| b.upload(t)).collect::<Result<Vec<_>>>()?;
        let mut last = None;
        for _ in 0..ITERATIONS {
            last = Some((it.pending)(&mut m, &device)?);
        }
        Ok(compare(&got, &(it.outputs)((it.resolve)(last.expect("ITERATIONS > 0"))?)?, 0.0))
    })();
    let timing = check.is_ok().then(|| time(b, plan, || Ok(()), |()| (it.resolve)(steps.step(b, &mut model, inputs, run)?)));
    Some(finish(r, check, timing, n))
}

/// The DCGAN iteration as a graph replay (see [`graph_row`]).
pub fn dcgan_graph_row<B: Backend>(b: &B, n: usize, plan: &Plan) -> Option<Row> {
    let w = Widths::default();
    let r = Row::new(ITERATION, DCGAN_GRAPH, batch_shapes(n, w.nz));
    let batch = match Batch::new(n, w.nz) {
        Ok(x) => x,
        Err(e) => return Some(finish(r, Err(e), None, n)),
    };
    let it = Graphed {
        setup: &|| Ok(dcgan_setup(b, w, &batch)?.0),
        pending: &|m: &mut Dcgan<B::Tensor>, x: &[B::Tensor]| m.step_pending(b, &x[0], &x[1]),
        resolve: &|p: PendingDcganStep<B::Tensor>| p.resolve(b),
        outputs: &|s| dcgan_outputs(b, s),
    };
    graph_row(b, r, n, plan, &[&batch.real, &batch.noise], it)
}

/// The WGAN-GP critic iteration and then the generator iteration, each compared with cpu (losses, the
/// penalty and gradient norms, the fakes, every gradient) and timed on `b`. Rows go to `emit` as they finish.
pub fn wgan_gp_rows<B: Backend>(b: &B, n: usize, plan: &Plan, critic: bool, gen: bool, emit: &mut dyn FnMut(Row)) {
    let w = Widths::default();
    let critic_row = Row::new(ITERATION, WGAN_CRITIC, batch_shapes(n, w.nz));
    let gen_row = Row::new(ITERATION, WGAN_GENERATOR, batch_shapes(n, w.nz));
    struct Setup<T> {
        m: WganGp<T>,
        real: T,
        noise: T,
    }
    fn setup<B: Backend>(b: &B, w: Widths, batch: &Batch) -> Result<Setup<B::Tensor>> {
        Ok(Setup { m: wgan_gp_model(b, w)?, real: b.upload(&batch.real)?, noise: b.upload(&batch.noise)? })
    }
    fn critic_out<B: Backend>(b: &B, s: &mut Setup<B::Tensor>, alpha: &[f32]) -> Result<Vec<Named>> {
        critic_outputs(b, s.m.critic_step(b, &s.real, &s.noise, alpha)?)
    }
    fn gen_out<B: Backend>(b: &B, s: &mut Setup<B::Tensor>) -> Result<Vec<Named>> {
        generator_outputs(b, s.m.generator_step(b, &s.noise)?)
    }
    let prepared = Batch::new(n, w.nz).and_then(|batch| {
        let mine = setup(b, w, &batch)?;
        let reference = setup(&CpuBackend::new(), w, &batch)?;
        Ok((batch, mine, reference))
    });
    let (batch, mut mine, mut reference) = match prepared {
        Ok(x) => x,
        Err(e) => {
            let msg = e.to_string();
            if critic {
                emit(finish(critic_row, Err(crate::Error::Other(msg.clone())), None, n));
            }
            if gen {
                emit(finish(gen_row, Err(crate::Error::Other(msg)), None, n));
            }
            return;
        }
    };
    let cpu = CpuBackend::new();
    // The generator is checked after one critic step on both sides, so the critic step always runs first.
    let critic_check = critic_out(b, &mut mine, &batch.alpha)
        .and_then(|got| Ok(compare(&got, &critic_out(&cpu, &mut reference, &batch.alpha)?, Tolerances::of(b).chain)));
    let gen_check =
        critic_check.as_ref().map_err(|e| crate::Error::Other(format!("the critic step before it failed: {e}"))).and_then(|_| {
            let got = gen_out(b, &mut mine)?;
            Ok(compare(&got, &gen_out(&cpu, &mut reference)?, Tolerances::of(b).chain))
        });
    drop(reference);
    if critic {
        let ok = critic_check.is_ok();
        let Setup { m, real, noise } = &mut mine;
        let timing = ok.then(|| time(b, plan, || Ok(()), |()| m.critic_step(b, real, noise, &batch.alpha)));
        emit(finish(critic_row, critic_check, timing, n));
    }
    if gen {
        let ok = gen_check.is_ok();
        let Setup { m, noise, .. } = &mut mine;
        let timing = ok.then(|| time(b, plan, || Ok(()), |()| m.generator_step(b, noise)));
        emit(finish(gen_row, gen_check, timing, n));
    }
}

/// The WGAN-GP generator and critic every WGAN-GP row starts from.
fn wgan_gp_model<B: Backend>(b: &B, w: Widths) -> Result<WganGp<B::Tensor>> {
    let mut init = ChaCha8Rng::seed_from_u64(2);
    let g = generator(b, w, &mut init)?;
    let c = discriminator(b, w.ndf, Head::Critic, &mut init)?;
    WganGp::new(b, g, c)
}

/// What a critic iteration's check compares: losses, the penalty and gradient norms, the fakes, every gradient.
fn critic_outputs<B: Backend>(b: &B, c: CriticStep<B::Tensor>) -> Result<Vec<Named>> {
    let mut v = vec![
        Named::scalars("loss_c", vec![c.loss_c]),
        Named::scalars("gp", vec![c.gp]),
        Named::scalars("wasserstein", vec![c.wasserstein]),
        Named::scalars("grad_norm", c.grad_norm),
        Named::tensor(b, "fake", &c.fake)?,
    ];
    grads(b, "C", &c.grads_c, &mut v)?;
    Ok(v)
}

/// What a generator iteration's check compares: the loss and every gradient.
fn generator_outputs<B: Backend>(b: &B, g: GeneratorStep<B::Tensor>) -> Result<Vec<Named>> {
    let mut v = vec![Named::scalars("loss_g", vec![g.loss_g])];
    grads(b, "G", &g.grads_g, &mut v)?;
    Ok(v)
}

/// The WGAN-GP critic and generator iterations as graph replays (see [`graph_row`]), each from fresh weights;
/// nothing where the backend does not capture.
pub fn wgan_gp_graph_rows<B: Backend>(b: &B, n: usize, plan: &Plan, critic: bool, gen: bool, emit: &mut dyn FnMut(Row)) {
    let w = Widths::default();
    let (critic_row, gen_row) =
        (Row::new(ITERATION, WGAN_CRITIC_GRAPH, batch_shapes(n, w.nz)), Row::new(ITERATION, WGAN_GENERATOR_GRAPH, batch_shapes(n, w.nz)));
    let batch = Batch::new(n, w.nz).and_then(|x| Ok((Tensor::new(&[n], x.alpha.clone())?, x)));
    let (alpha, batch) = match batch {
        Ok(x) => x,
        Err(e) => return emit(finish(if critic { critic_row } else { gen_row }, Err(e), None, n)),
    };
    let setup = || wgan_gp_model(b, w);
    if critic {
        let it = Graphed {
            setup: &setup,
            pending: &|m: &mut WganGp<B::Tensor>, x: &[B::Tensor]| m.critic_step_pending(b, &x[0], &x[1], &x[2]),
            resolve: &|p: PendingCriticStep<B::Tensor>| p.resolve(b),
            outputs: &|s| critic_outputs(b, s),
        };
        if let Some(r) = graph_row(b, critic_row, n, plan, &[&batch.real, &batch.noise, &alpha], it) {
            emit(r);
        }
    }
    if gen {
        let it = Graphed {
            setup: &setup,
            pending: &|m: &mut WganGp<B::Tensor>, x: &[B::Tensor]| m.generator_step_pending(b, &x[0]),
            resolve: &|p: PendingGeneratorStep<B::Tensor>| p.resolve(b),
            outputs: &|s| generator_outputs(b, s),
        };
        if let Some(r) = graph_row(b, gen_row, n, plan, &[&batch.noise], it) {
            emit(r);
        }
    }
}

/// FID's InceptionV3 (random weights, the same on both sides) over `n` images of 64×64 in [0, 1]:
/// the 2048-d features compared with cpu, then timed on `b` from uploaded images to downloaded features.
pub fn fid_row<B: Backend>(b: &B, n: usize, plan: &Plan) -> Row {
    let shape = [n, 3, IMAGE_SIZE, IMAGE_SIZE];
    let r = Row::new(FID_GROUP, FID, format!("images {}", fmt_shape(&shape)));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let images = match Tensor::new(&shape, (0..shape.iter().product()).map(|_| rng.gen_range(0.0..1.0)).collect()) {
        Ok(t) => t,
        Err(e) => return finish(r, Err(e), None, n),
    };
    const WEIGHTS_SEED: u64 = 4;
    let mine = InceptionV3::random(b, WEIGHTS_SEED).and_then(|m| Ok((m, b.upload(&images)?)));
    let (model, x) = match mine {
        Ok(x) => x,
        Err(e) => return finish(r, Err(e), None, n),
    };
    let check = model.features(b, &x, 2048).and_then(|got| {
        let cpu = CpuBackend::new();
        let want = InceptionV3::random(&cpu, WEIGHTS_SEED)?.features(&cpu, &images, 2048)?;
        Ok(compare(&[Named::scalars("features", got)], &[Named::scalars("features", want)], Tolerances::of(b).chain))
    });
    let timing = check.is_ok().then(|| time(b, plan, || Ok(()), |()| model.features(b, &x, 2048)));
    finish(r, check, timing, n)
}
