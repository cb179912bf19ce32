//! Runs one golden file on a backend and judges every output by the file's tolerance rules; `runner.rs` runs
//! many files on many backends. Shared by the golden test suite (every backend, the oracle included) and by
//! `cxr-gan conformance`.

mod runner;

pub use runner::{optional_backend, run_files, Subject, Tally, EMULATE_INCEPTION_ENV};

use crate::backend::{Activation, AdamConfig, Backend, Conv2dParams, Pool2dParams};
use crate::error::{Error, Result};
use crate::fid::inception::{conformance_weights, InceptionV3, FID_DIMS};
use crate::golden::{Check, GoldenFile};
use crate::nn::dcgan::{discriminator, generator, Head, Widths};
use crate::nn::{Grads, Sequential};
use crate::train::dcgan::Dcgan;
use crate::train::wgan_gp::WganGp;

/// The verdict on one file for one backend.
#[derive(Debug)]
pub enum Outcome {
    /// Every output judged (a file passes when all its checks pass).
    Checked(Vec<Check>),
    /// The op belongs to work that has not landed yet.
    NotCheckedYet(String),
    /// Something the file needs is absent (the reason says what).
    Skipped(String),
}

/// Ops computed on the host whatever the backend (image preprocessing, FID statistics): judged once.
/// `None` when `f`'s op runs on a backend.
pub fn run_host_file(f: &GoldenFile) -> Option<Result<Outcome>> {
    if f.op == "frechet" {
        return Some(frechet(f).map(Outcome::Checked));
    }
    crate::data::run_golden(f).transpose().map(|r| r.map(Outcome::Checked))
}

fn frechet(f: &GoldenFile) -> Result<Vec<Check>> {
    use crate::fid::{frechet_distance, Statistics};
    let stats = |name: &str| -> Result<Statistics> {
        let (shape, data) = f.f64(name)?;
        Statistics::from_features(&data, shape.get(1).copied().unwrap_or(0))
    };
    let (s1, s2) = (stats("in.features1")?, stats("in.features2")?);
    let mut checks = vec![f.check("out.fid", &[frechet_distance(&s1, &s2)?])?];
    for (tag, s) in [("1", &s1), ("2", &s2)] {
        if f.tol.contains_key(&format!("out.mu{tag}")) {
            checks.push(f.check(&format!("out.mu{tag}"), &s.mu)?);
            checks.push(f.check(&format!("out.sigma{tag}"), &s.sigma)?);
        }
    }
    Ok(checks)
}

/// Judged outputs, collected by name.
struct Results<'a> {
    file: &'a GoldenFile,
    checks: Vec<Check>,
    /// The least relative bar (see [`GoldenFile::check_with_floor`]): 0, or a reduced-precision
    /// convolution's tolerance.
    floor: f64,
}

impl Results<'_> {
    fn put(&mut self, name: &str, ours: Vec<f64>) -> Result<()> {
        self.checks.push(self.file.check_with_floor(name, &ours, self.floor)?);
        Ok(())
    }
    fn put_tensor<B: Backend>(&mut self, b: &B, name: &str, t: &B::Tensor) -> Result<()> {
        self.put(name, b.download_f64(t)?)
    }
    /// Every tolerance key of the file must have been judged: a missing output fails.
    fn finish(mut self) -> Outcome {
        for key in self.file.tol.keys() {
            if key.starts_with("in.") || self.checks.iter().any(|c| &c.name == key) {
                continue; // `in.` keys carry a tolerance in some files but are inputs
            }
            self.checks.push(Check { name: key.clone(), error: f64::INFINITY, passed: false, detail: "not produced".into() });
        }
        Outcome::Checked(self.checks)
    }
}

fn up<B: Backend>(b: &B, f: &GoldenFile, name: &str) -> Result<B::Tensor> {
    let (shape, data) = f.f64(name)?;
    b.upload_f64(&shape, &data)
}

fn f32s(f: &GoldenFile, name: &str) -> Result<Vec<f32>> {
    Ok(f.f64(name)?.1.iter().map(|&v| v as f32).collect())
}

fn dims4(f: &GoldenFile, name: &str) -> Result<[usize; 4]> {
    crate::tensor::dims4(&f.f64(name)?.0, "golden", name)
}

/// Runs `f` on `b`. `Err` means the file itself is unusable (or the op unknown): a failure.
pub fn run_file<B: Backend>(b: &B, f: &GoldenFile) -> Result<Outcome> {
    // At --precision tf32 / bf16 only cuda-native's convolutions round their inputs: a convolution file is
    // judged at the precision's stated tolerance, every file without a convolution at its own bars, and the
    // files that chain convolutions through whole models (where the rounding compounds through batch norms'
    // cancelling backward passes) are left to `bench --precision`, which checks whole iterations against cpu
    // at its chain tolerance.
    let precision = b.conv_precision();
    let mut floor = 0.0;
    if precision != crate::backend::cuda_native::Precision::Fp32 {
        match f.op.as_str() {
            "conv2d" | "conv_transpose2d" => floor = precision.tolerance(),
            "dcgan_step" | "wgan_gp_step" | "gradient_penalty" | "inception_fid" | "inception_fid_layers" => {
                return Ok(Outcome::Skipped(format!(
                    "chains {0}-rounded convolutions through a whole model, beyond these f32 bars: `bench --precision {0}` checks it against cpu",
                    precision.name()
                )))
            }
            _ => {}
        }
    }
    let mut r = Results { file: f, checks: Vec::new(), floor };
    match f.op.as_str() {
        "conv2d" | "conv_transpose2d" => {
            let p = Conv2dParams::new(f.param_pair("stride")?, f.param_pair("padding")?);
            let (x, w, dy) = (up(b, f, "in.x")?, up(b, f, "in.w")?, up(b, f, "in.dy")?);
            let (xs, ws) = (dims4(f, "in.x")?, dims4(f, "in.w")?);
            let (y, dx, dw) = if f.op == "conv2d" {
                (b.conv2d(&x, &w, p)?, b.conv2d_bwd_data(&dy, &w, xs, p)?, b.conv2d_bwd_weight(&x, &dy, ws, p)?)
            } else {
                (b.conv_transpose2d(&x, &w, p)?, b.conv_transpose2d_bwd_data(&dy, &w, p)?, b.conv_transpose2d_bwd_weight(&x, &dy, ws, p)?)
            };
            r.put_tensor(b, "out.y", &y)?;
            r.put_tensor(b, "out.dx", &dx)?;
            r.put_tensor(b, "out.dw", &dw)?;
        }
        "batch_norm2d_train" => {
            let (x, g, be, dy) = (up(b, f, "in.x")?, up(b, f, "in.gamma")?, up(b, f, "in.beta")?, up(b, f, "in.dy")?);
            let (mut rm, mut rv) = (up(b, f, "in.running_mean")?, up(b, f, "in.running_var")?);
            let eps = f.param_f64("eps")? as f32;
            let (y, stats) = b.batch_norm2d_train(&x, &g, &be, &mut rm, &mut rv, eps, f.param_f64("momentum")? as f32)?;
            let grads = b.batch_norm2d_bwd(&dy, &x, &g, &stats)?;
            for (name, t) in [
                ("out.y", &y),
                ("out.running_mean", &rm),
                ("out.running_var", &rv),
                ("out.dx", &grads.dx),
                ("out.dgamma", &grads.dgamma),
                ("out.dbeta", &grads.dbeta),
            ] {
                r.put_tensor(b, name, t)?;
            }
        }
        "batch_norm2d_eval" => {
            let (x, g, be) = (up(b, f, "in.x")?, up(b, f, "in.gamma")?, up(b, f, "in.beta")?);
            let (rm, rv) = (up(b, f, "in.running_mean")?, up(b, f, "in.running_var")?);
            let y = b.batch_norm2d_eval(&x, &g, &be, &rm, &rv, f.param_f64("eps")? as f32)?;
            r.put_tensor(b, "out.y", &y)?;
        }
        "instance_norm2d_train" => {
            let (x, g, be, dy) = (up(b, f, "in.x")?, up(b, f, "in.gamma")?, up(b, f, "in.beta")?, up(b, f, "in.dy")?);
            let (y, stats) = b.instance_norm2d(&x, &g, &be, f.param_f64("eps")? as f32)?;
            let grads = b.instance_norm2d_bwd(&dy, &x, &g, &stats)?;
            for (name, t) in [("out.y", &y), ("out.dx", &grads.dx), ("out.dgamma", &grads.dgamma), ("out.dbeta", &grads.dbeta)] {
                r.put_tensor(b, name, t)?;
            }
        }
        "relu" | "leaky_relu" | "tanh" | "sigmoid" => {
            let act = match f.op.as_str() {
                "relu" => Activation::Relu,
                "leaky_relu" => Activation::LeakyRelu { slope: f.param_f64("slope")? as f32 },
                "tanh" => Activation::Tanh,
                _ => Activation::Sigmoid,
            };
            let (x, dy) = (up(b, f, "in.x")?, up(b, f, "in.dy")?);
            let y = b.activation(act, &x)?;
            let dx = b.activation_bwd(act, &x, &y, &dy)?;
            r.put_tensor(b, "out.y", &y)?;
            r.put_tensor(b, "out.dx", &dx)?;
        }
        "bce" | "bce_logits" => {
            let (input, grad) = if f.op == "bce" { ("in.p", "out.dp") } else { ("in.logits", "out.dlogits") };
            let (p, t) = (up(b, f, input)?, up(b, f, "in.target")?);
            let (loss, d) = if f.op == "bce" { b.bce(&p, &t)? } else { b.bce_logits(&p, &t)? };
            r.put("out.loss", vec![loss])?;
            r.put_tensor(b, grad, &d)?;
        }
        "adam" => {
            let betas = f.param("betas")?.as_array().cloned().unwrap_or_default();
            let beta = |i: usize| betas.get(i).and_then(|v| v.as_f64()).ok_or_else(|| Error::format(&f.path, "betas is not a pair"));
            let cfg = AdamConfig { lr: f.param_f64("lr")?, beta1: beta(0)?, beta2: beta(1)?, eps: f.param_f64("eps")? };
            let (mut p, g) = (up(b, f, "in.param")?, up(b, f, "in.grad")?);
            let (mut m, mut v) = (up(b, f, "in.exp_avg")?, up(b, f, "in.exp_avg_sq")?);
            b.adam_step(&mut p, &g, &mut m, &mut v, &cfg, f.param_f64("step")? as u64)?;
            r.put_tensor(b, "out.param", &p)?;
            r.put_tensor(b, "out.exp_avg", &m)?;
            r.put_tensor(b, "out.exp_avg_sq", &v)?;
        }
        "max_pool2d" | "avg_pool2d" => {
            let p = Pool2dParams::new(f.param_pair("kernel")?, f.param_pair("stride")?, f.param_pair("padding")?);
            let (x, dy) = (up(b, f, "in.x")?, up(b, f, "in.dy")?);
            let (y, dx) = if f.op == "max_pool2d" {
                (b.max_pool2d(&x, p)?, b.max_pool2d_bwd(&dy, &x, p)?)
            } else {
                let include =
                    f.param("count_include_pad")?.as_bool().ok_or_else(|| Error::format(&f.path, "count_include_pad is not a bool"))?;
                (b.avg_pool2d(&x, p, include)?, b.avg_pool2d_bwd(&dy, dims4(f, "in.x")?, p, include)?)
            };
            r.put_tensor(b, "out.y", &y)?;
            r.put_tensor(b, "out.dx", &dx)?;
        }
        "global_avg_pool2d" => {
            let (x, dy) = (up(b, f, "in.x")?, up(b, f, "in.dy")?);
            r.put_tensor(b, "out.y", &b.global_avg_pool2d(&x)?)?;
            r.put_tensor(b, "out.dx", &b.global_avg_pool2d_bwd(&dy, dims4(f, "in.x")?)?)?;
        }
        "concat_channels" => {
            let names: Vec<String> = (0..).map(|i| format!("in.x{i}")).take_while(|n| f.f64(n).is_ok()).collect();
            let xs = names.iter().map(|n| up(b, f, n)).collect::<Result<Vec<_>>>()?;
            let channels = names.iter().map(|n| Ok(dims4(f, n)?[1])).collect::<Result<Vec<_>>>()?;
            r.put_tensor(b, "out.y", &b.concat_channels(&xs.iter().collect::<Vec<_>>())?)?;
            for (i, dx) in b.concat_channels_bwd(&up(b, f, "in.dy")?, &channels)?.iter().enumerate() {
                r.put_tensor(b, &format!("out.dx{i}"), dx)?;
            }
        }
        "linear" => {
            let (x, w, bias, dy) = (up(b, f, "in.x")?, up(b, f, "in.w")?, up(b, f, "in.b")?, up(b, f, "in.dy")?);
            r.put_tensor(b, "out.y", &b.linear(&x, &w, &bias)?)?;
            let g = b.linear_bwd(&dy, &x, &w)?;
            r.put_tensor(b, "out.dx", &g.dx)?;
            r.put_tensor(b, "out.dw", &g.dw)?;
            r.put_tensor(b, "out.db", &g.db)?;
        }
        "cross_entropy" => {
            let target = f
                .f64("in.target")?
                .1
                .iter()
                .map(|&t| {
                    if t >= 0.0 && t.fract() == 0.0 {
                        Ok(t as usize)
                    } else {
                        Err(Error::format(&f.path, format!("in.target holds {t}, not a class index")))
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let (loss, d) = b.cross_entropy(&up(b, f, "in.logits")?, &target)?;
            r.put("out.loss", vec![loss])?;
            r.put_tensor(b, "out.dlogits", &d)?;
        }
        "dropout" => {
            let p = f.param_f64("p")? as f32;
            let mask = up(b, f, "in.mask")?;
            r.put_tensor(b, "out.y", &b.dropout(&up(b, f, "in.x")?, &mask, p)?)?;
            r.put_tensor(b, "out.dx", &b.dropout(&up(b, f, "in.dy")?, &mask, p)?)?;
        }
        "inception_fid" => {
            let model = match inception(b)? {
                Ok(m) => m,
                Err(why) => return Ok(Outcome::Skipped(why)),
            };
            let x = images01(b, f)?;
            for (dims, p) in FID_DIMS.iter().zip(model.pooled(b, &x, 3)?) {
                r.put_tensor(b, &format!("out.features_{dims}"), &p)?;
            }
        }
        "inception_fid_layers" => return inception_fid_layers(b, f),
        "gradient_penalty" => {
            let mut c = critic_from(b, f, f.param_f64("ndf")? as usize, "in.C.")?;
            let (real, fake) = (up(b, f, "in.real")?, up(b, f, "in.fake")?);
            let mut grads = Grads::default();
            let gp = crate::nn::critic::gradient_penalty(
                b,
                &mut c,
                &real,
                &fake,
                &f32s(f, "in.alpha")?,
                f.param_f64("lambda")? as f32,
                &mut grads,
                true,
            )?;
            r.put("out.gp", vec![gp.gp])?;
            r.put("out.grad_norm", gp.grad_norm)?;
            r.put_tensor(b, "out.critic_x_hat", &gp.critic_x_hat)?;
            r.put_tensor(b, "grad.x_hat", gp.grad_x_hat.as_ref().expect("asked for"))?;
            put_grads(b, &mut r, "grad.C.", &grads)?;
        }
        "dcgan_step" => {
            let w = widths(f)?;
            let mut gan = Dcgan::new(b, generator_from(b, f, w)?, discriminator_from(b, f, w.ndf)?)?;
            let s = gan.step(b, &up(b, f, "in.real")?, &up(b, f, "in.noise")?)?;
            for (name, v) in [
                ("out.loss_d_real", s.loss_d_real),
                ("out.loss_d_fake", s.loss_d_fake),
                ("out.loss_d", s.loss_d),
                ("out.loss_g", s.loss_g),
                ("out.d_x", s.d_x),
                ("out.d_g_z1", s.d_g_z1),
                ("out.d_g_z2", s.d_g_z2),
            ] {
                r.put(name, vec![v])?;
            }
            r.put_tensor(b, "out.fake", &s.fake)?;
            put_grads(b, &mut r, "grad.D.", &s.grads_d)?;
            put_grads(b, &mut r, "grad.G.", &s.grads_g)?;
            put_model(b, &mut r, "G", &gan.g, &gan.opt_g.state)?;
            put_model(b, &mut r, "D", &gan.d, &gan.opt_d.state)?;
        }
        "wgan_gp_step" => {
            let w = widths(f)?;
            let mut gan = WganGp::new(b, generator_from(b, f, w)?, critic_from(b, f, w.ndf, "in.C.")?)?;
            gan.lambda = f.param_f64("lambda")? as f32;
            let c = gan.critic_step(b, &up(b, f, "in.real")?, &up(b, f, "in.noise_critic")?, &f32s(f, "in.alpha")?)?;
            r.put("out.loss_c", vec![c.loss_c])?;
            r.put("out.gp", vec![c.gp])?;
            r.put("out.grad_norm", c.grad_norm)?;
            r.put("out.wasserstein", vec![c.wasserstein])?;
            r.put_tensor(b, "out.fake_critic", &c.fake)?;
            put_grads(b, &mut r, "grad.C.", &c.grads_c)?;
            // G's running statistics after the critic iteration (its forward pass on the noise moved them).
            for (name, t) in gan.g.state_dict() {
                if name.contains("running_") {
                    r.put_tensor(b, &format!("out.G_after_critic.{name}"), t)?;
                }
            }
            let g = gan.generator_step(b, &up(b, f, "in.noise_gen")?)?;
            r.put("out.loss_g", vec![g.loss_g])?;
            put_grads(b, &mut r, "grad.G.", &g.grads_g)?;
            put_model(b, &mut r, "G", &gan.g, &gan.opt_g.state)?;
            put_model(b, &mut r, "C", &gan.c, &gan.opt_c.state)?;
        }
        other => return Err(Error::format(&f.path, format!("unknown op `{other}`"))),
    }
    Ok(r.finish())
}

/// The FID Inception on `b`, or why it cannot be loaded here (a skip, not a failure: the weights file is
/// not part of every checkout). A weights file that is present but wrong is a failure.
fn inception<B: Backend>(b: &B) -> Result<std::result::Result<InceptionV3<B::Tensor>, String>> {
    match conformance_weights() {
        Ok(path) => Ok(Ok(InceptionV3::load(b, &path)?)),
        Err(why) => Ok(Err(format!("needs the FID Inception weights: {why}"))),
    }
}

/// The file's uint8 images `in.images` / `in.image` as the network's input (values / 255, in f64 for the oracle).
fn images01<B: Backend>(b: &B, f: &GoldenFile) -> Result<B::Tensor> {
    let name = if f.get("in.images").is_ok() { "in.images" } else { "in.image" };
    let (shape, data) = f.u8(name)?;
    b.upload_f64(&shape, &data.iter().map(|&v| v as f64 / 255.0).collect::<Vec<_>>())
}

/// Per-channel mean and standard deviation (ddof 1, as `torch.std`) of x [N, C, H, W] over (N, H, W).
fn channel_mean_std(x: &[f64], shape: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let (n, c, hw) = (shape[0], shape[1], shape[2..].iter().product::<usize>());
    let m = (n * hw) as f64;
    let plane = |ch: usize| (0..n).flat_map(move |i| x[(i * c + ch) * hw..][..hw].iter().copied());
    let mean: Vec<f64> = (0..c).map(|ch| plane(ch).sum::<f64>() / m).collect();
    // One value per channel has no ddof-1 spread: NaN, as torch.std.
    let std = (0..c).map(|ch| (plane(ch).map(|v| (v - mean[ch]).powi(2)).sum::<f64>() / (m - 1.0)).sqrt()).collect();
    (mean, std)
}

/// Every stage's per-channel mean and std (`out.mean.<stage>`, `out.std.<stage>`) against the file's, all
/// under its `*` tolerance. Where PyTorch's value is NaN (the std of the final 1×1 pool of one image) ours
/// must be NaN too.
fn inception_fid_layers<B: Backend>(b: &B, f: &GoldenFile) -> Result<Outcome> {
    let model = match inception(b)? {
        Ok(m) => m,
        Err(why) => return Ok(Outcome::Skipped(why)),
    };
    let tol = f.tol.get("*").ok_or_else(|| Error::format(&f.path, "no `*` tolerance"))?.clone();
    let mut ours = std::collections::HashMap::new();
    model.forward_with(b, &images01(b, f)?, 3, |stage, t| {
        let (mean, std) = channel_mean_std(&b.download_f64(t)?, &b.shape(t));
        ours.insert(format!("out.mean.{stage}"), mean);
        ours.insert(format!("out.std.{stage}"), std);
        Ok(())
    })?;
    let mut names: Vec<&str> = f.names().filter(|n| n.starts_with("out.")).collect();
    names.sort();
    let mut checks = Vec::new();
    for name in names {
        let Some(mine) = ours.get(name) else {
            checks.push(Check { name: name.into(), error: f64::INFINITY, passed: false, detail: "not produced".into() });
            continue;
        };
        let (mut mine, mut reference) = (mine.clone(), f.f64(name)?.1);
        if mine.len() != reference.len() {
            let detail = format!("{} values, expected {}", mine.len(), reference.len());
            checks.push(Check { name: name.into(), error: f64::INFINITY, passed: false, detail });
            continue;
        }
        for (o, r) in mine.iter_mut().zip(reference.iter_mut()) {
            match (o.is_nan(), r.is_nan()) {
                (true, true) => (*o, *r) = (0.0, 0.0),
                (false, true) => *o = f64::NAN, // judged as a failure
                _ => {}
            }
        }
        checks.push(crate::golden::judge(name, &tol, &mine, &reference, None));
    }
    Ok(Outcome::Checked(checks))
}

fn widths(f: &GoldenFile) -> Result<Widths> {
    let u = |k| Ok::<_, Error>(f.param_f64(k)? as usize);
    Ok(Widths { nz: u("nz")?, ngf: u("ngf")?, ndf: u("ndf")? })
}

fn load<B: Backend>(b: &B, f: &GoldenFile, mut m: Sequential<B::Tensor>, prefix: &str) -> Result<Sequential<B::Tensor>> {
    m.load_state_dict(b, prefix, |k| f.tensor(k).ok())?;
    Ok(m)
}

fn generator_from<B: Backend>(b: &B, f: &GoldenFile, w: Widths) -> Result<Sequential<B::Tensor>> {
    load(b, f, generator(b, w, &mut rand::thread_rng())?, "in.G.")
}

fn discriminator_from<B: Backend>(b: &B, f: &GoldenFile, ndf: usize) -> Result<Sequential<B::Tensor>> {
    load(b, f, discriminator(b, ndf, Head::Dcgan, &mut rand::thread_rng())?, "in.D.")
}

fn critic_from<B: Backend>(b: &B, f: &GoldenFile, ndf: usize, prefix: &str) -> Result<Sequential<B::Tensor>> {
    load(b, f, discriminator(b, ndf, Head::Critic, &mut rand::thread_rng())?, prefix)
}

fn put_grads<B: Backend>(b: &B, r: &mut Results, prefix: &str, grads: &Grads<B::Tensor>) -> Result<()> {
    for (name, g) in &grads.entries {
        r.put_tensor(b, &format!("{prefix}{name}"), g)?;
    }
    Ok(())
}

/// A model's state_dict after the step (`out.G.*`) and its Adam moments (`out.adam.G.*`).
fn put_model<B: Backend>(
    b: &B,
    r: &mut Results,
    tag: &str,
    m: &Sequential<B::Tensor>,
    adam: &[(String, B::Tensor, B::Tensor)],
) -> Result<()> {
    for (name, t) in m.state_dict() {
        r.put_tensor(b, &format!("out.{tag}.{name}"), t)?;
    }
    for (name, m1, m2) in adam {
        r.put_tensor(b, &format!("out.adam.{tag}.{name}.exp_avg"), m1)?;
        r.put_tensor(b, &format!("out.adam.{tag}.{name}.exp_avg_sq"), m2)?;
    }
    Ok(())
}
