//! The op cases of `cxr-gan bench`: every primitive op at the shapes the DCGAN, the WGAN-GP critic and
//! FID's InceptionV3 call it with, its inputs described (not stored: a batch-128 run would hold gigabytes)
//! and its nominal FLOP count. [`super::op`] runs them.
//!
//! FLOPs: 2 per multiply-add for convolutions (as benches/ops.rs); for the other ops the arithmetic of the
//! formula per element, a transcendental counted as one. Those ops are memory-bound: their figure of merit
//! is GB/s, and the report's % of peak takes the better of the two fractions (the roofline).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::op::Op;
use crate::backend::cpu::CpuBackend;
use crate::backend::{shapes, Activation, Backend, Conv2dParams, Pool2dParams};
use crate::error::{Error, Result};
use crate::nn::dcgan::{BN_EPS, IN_EPS, LEAKY_SLOPE};
use crate::tensor::Tensor;
use crate::train::{dcgan, wgan_gp};

/// One convolution of the full DCGAN (nz 100, ngf = ndf = 64, 64×64 images).
pub struct ConvLayer {
    pub name: &'static str,
    pub x: [usize; 4],
    pub w: [usize; 4],
    pub p: Conv2dParams,
    /// ConvTranspose2d (the generator) rather than Conv2d (the discriminator).
    pub transposed: bool,
}

impl ConvLayer {
    /// 2 · multiply-adds: every output (conv) or every input (transposed) meets a whole filter slice.
    pub fn flops(&self, y: &[usize]) -> u64 {
        let (n, pixels) = if self.transposed { (self.x[0], self.x[2] * self.x[3]) } else { (y[0], y[2] * y[3]) };
        2 * (n * pixels * self.w.iter().product::<usize>()) as u64
    }

    /// The forward output's shape.
    pub fn y(&self) -> Result<[usize; 4]> {
        if self.transposed {
            shapes::conv_transpose2d_out("conv_transpose2d", &self.x, &self.w, self.p)
        } else {
            shapes::conv2d_out("conv2d", &self.x, &self.w, self.p)
        }
    }
}

/// Every convolution of G and D (the WGAN-GP critic has D's) at batch `n`, named by state_dict prefix.
pub fn dcgan_convs(n: usize) -> Vec<ConvLayer> {
    let s2 = Conv2dParams::new([2, 2], [1, 1]);
    let s1 = Conv2dParams::new([1, 1], [0, 0]);
    let l = |name, x, w, p, transposed| ConvLayer { name, x, w, p, transposed };
    vec![
        l("G.main.0", [n, 100, 1, 1], [100, 512, 4, 4], s1, true),
        l("G.main.3", [n, 512, 4, 4], [512, 256, 4, 4], s2, true),
        l("G.main.6", [n, 256, 8, 8], [256, 128, 4, 4], s2, true),
        l("G.main.9", [n, 128, 16, 16], [128, 64, 4, 4], s2, true),
        l("G.main.12", [n, 64, 32, 32], [64, 3, 4, 4], s2, true),
        l("D.main.0", [n, 3, 64, 64], [64, 3, 4, 4], s2, false),
        l("D.main.2", [n, 64, 32, 32], [128, 64, 4, 4], s2, false),
        l("D.main.5", [n, 128, 16, 16], [256, 128, 4, 4], s2, false),
        l("D.main.8", [n, 256, 8, 8], [512, 256, 4, 4], s2, false),
        l("D.main.11", [n, 512, 4, 4], [1, 512, 4, 4], s1, false),
    ]
}

/// A few of FID's InceptionV3 convolutions at batch `n` (forward only, as FID runs them): the stem's
/// large planes, a 5×5, the factorised 1×7 / 1×3 kernels and a pointwise conv of the later blocks.
pub fn inception_convs(n: usize) -> Vec<ConvLayer> {
    let p = Conv2dParams::new;
    let l = |name, x, w, p| ConvLayer { name, x, w, p, transposed: false };
    vec![
        l("Conv2d_1a_3x3", [n, 3, 299, 299], [32, 3, 3, 3], p([2, 2], [0, 0])),
        l("Conv2d_2b_3x3", [n, 32, 147, 147], [64, 32, 3, 3], p([1, 1], [1, 1])),
        l("Conv2d_4a_3x3", [n, 80, 73, 73], [192, 80, 3, 3], p([1, 1], [0, 0])),
        l("Mixed_5b.branch5x5_2", [n, 48, 35, 35], [64, 48, 5, 5], p([1, 1], [2, 2])),
        l("Mixed_6b.branch7x7_2", [n, 128, 17, 17], [128, 128, 1, 7], p([1, 1], [0, 3])),
        l("Mixed_7b.branch3x3_2a", [n, 384, 8, 8], [384, 384, 1, 3], p([1, 1], [0, 1])),
        l("Mixed_7c.branch1x1", [n, 2048, 8, 8], [320, 2048, 1, 1], p([1, 1], [0, 0])),
    ]
}

/// The number of parameters of the default generator: its conv weights and its batch norms' γ and β.
pub fn generator_params() -> usize {
    let g: Vec<ConvLayer> = dcgan_convs(1).into_iter().filter(|l| l.transposed).collect();
    let convs: usize = g.iter().map(|l| l.w.iter().product::<usize>()).sum();
    // A batch norm follows every layer but the last (whose output is the image).
    let norms: usize = g[..g.len() - 1].iter().map(|l| l.w[1]).sum();
    convs + 2 * norms
}

/// How an input's values are made (from one seeded stream per case; derived inputs from earlier ones).
#[derive(Clone, Copy, Debug)]
pub enum Fill {
    Uniform(f32, f32),
    Const(f32),
    /// `act(input #of)`: an activation's saved output.
    Activated {
        of: usize,
        act: Activation,
    },
    /// The batch-norm (per channel) or instance-norm (per sample and channel) statistics of input #of.
    Stats {
        of: usize,
        per_instance: bool,
        invstd: bool,
    },
}

#[derive(Clone, Debug)]
pub struct Input {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub fill: Fill,
}

/// One op at one shape.
#[derive(Clone, Debug)]
pub struct Case {
    /// `dcgan`, `wgan-gp` or `inception`: whose shapes these are.
    pub group: &'static str,
    /// The layer and the op, e.g. `G.main.3 conv_transpose2d_bwd_weight`.
    pub name: String,
    pub op: Op,
    pub inputs: Vec<Input>,
    pub flops: f64,
}

impl Case {
    /// What `--only` matches against: group and name.
    pub fn label(&self) -> String {
        format!("{} {}", self.group, self.name)
    }

    /// The host tensors of the inputs, the same on every call (seeded from the case's name).
    pub fn host_inputs(&self) -> Result<Vec<Tensor>> {
        let seed = self.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, c| (h ^ c as u64).wrapping_mul(0x100_0000_01b3));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let cpu = CpuBackend::new();
        let mut made: Vec<Tensor> = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            let len = input.shape.iter().product();
            let t = match input.fill {
                Fill::Uniform(lo, hi) => Tensor::new(&input.shape, (0..len).map(|_| rng.gen_range(lo..hi)).collect())?,
                Fill::Const(v) => Tensor::full(&input.shape, v),
                Fill::Activated { of, act } => cpu.activation(act, &made[of])?,
                Fill::Stats { of, per_instance, invstd } => {
                    let x = &made[of];
                    let c = x.shape()[1];
                    let (gamma, beta) = (Tensor::full(&[c], 1.0), Tensor::zeros(&[c]));
                    let stats = if per_instance {
                        cpu.instance_norm2d(x, &gamma, &beta, IN_EPS)?.1
                    } else {
                        cpu.batch_norm2d_train(x, &gamma, &beta, &mut Tensor::zeros(&[c]), &mut Tensor::full(&[c], 1.0), BN_EPS, 0.1)?.1
                    };
                    if invstd {
                        stats.invstd
                    } else {
                        stats.mean
                    }
                }
            };
            if t.shape() != input.shape.as_slice() {
                return Err(Error::Other(format!(
                    "bench case {}: input {} came out {:?}, declared {:?}",
                    self.name,
                    input.name,
                    t.shape(),
                    input.shape
                )));
            }
            made.push(t);
        }
        Ok(made)
    }
}

// ====================================================================== the list

const U: Fill = Fill::Uniform(-1.0, 1.0);
/// Norm scales and variances: positive, near 1.
const NEAR_ONE: Fill = Fill::Uniform(0.5, 1.5);

fn input(name: &'static str, shape: &[usize], fill: Fill) -> Input {
    Input { name, shape: shape.to_vec(), fill }
}

fn case(group: &'static str, name: impl Into<String>, op: Op, inputs: Vec<Input>, flops: f64) -> Case {
    Case { group, name: name.into(), op, inputs, flops }
}

fn len(shape: &[usize]) -> f64 {
    shape.iter().product::<usize>() as f64
}

/// Forward, backward-data and backward-weight of one convolution layer.
fn conv_cases(group: &'static str, l: &ConvLayer) -> Result<Vec<Case>> {
    let y = l.y()?;
    let flops = l.flops(&y) as f64;
    let (x, w, p) = (l.x, l.w, l.p);
    let name = |op: &str| format!("{} {op}", l.name);
    Ok(if l.transposed {
        vec![
            case(group, name("conv_transpose2d"), Op::ConvTranspose2d(p), vec![input("x", &x, U), input("w", &w, U)], flops),
            case(
                group,
                name("conv_transpose2d_bwd_data"),
                Op::ConvTranspose2dBwdData(p),
                vec![input("dy", &y, U), input("w", &w, U)],
                flops,
            ),
            case(
                group,
                name("conv_transpose2d_bwd_weight"),
                Op::ConvTranspose2dBwdWeight { w_shape: w, p },
                vec![input("x", &x, U), input("dy", &y, U)],
                flops,
            ),
        ]
    } else {
        vec![
            case(group, name("conv2d"), Op::Conv2d(p), vec![input("x", &x, U), input("w", &w, U)], flops),
            case(group, name("conv2d_bwd_data"), Op::Conv2dBwdData { x_shape: x, p }, vec![input("dy", &y, U), input("w", &w, U)], flops),
            case(
                group,
                name("conv2d_bwd_weight"),
                Op::Conv2dBwdWeight { w_shape: w, p },
                vec![input("x", &x, U), input("dy", &y, U)],
                flops,
            ),
        ]
    })
}

fn batch_norm_cases(layer: &str, x: &[usize]) -> Vec<Case> {
    let (c, e) = ([x[1]], len(x));
    let params = |rm, rv| {
        vec![
            input("x", x, U),
            input("gamma", &c, NEAR_ONE),
            input("beta", &c, U),
            input("running_mean", &c, rm),
            input("running_var", &c, rv),
        ]
    };
    let stats = |of| {
        [
            input("mean", &c, Fill::Stats { of, per_instance: false, invstd: false }),
            input("invstd", &c, Fill::Stats { of, per_instance: false, invstd: true }),
        ]
    };
    let [mean, invstd] = stats(1);
    vec![
        // Running statistics from 0, so the update (0.1·stat) is what is compared, not the old value.
        case("dcgan", format!("{layer} batch_norm2d_train"), Op::BatchNorm2dTrain, params(Fill::Const(0.0), Fill::Const(0.0)), 7.0 * e),
        case("dcgan", format!("{layer} batch_norm2d_eval"), Op::BatchNorm2dEval, params(U, NEAR_ONE), 4.0 * e),
        case(
            "dcgan",
            format!("{layer} batch_norm2d_bwd"),
            Op::BatchNorm2dBwd,
            vec![input("dy", x, U), input("x", x, U), input("gamma", &c, NEAR_ONE), mean, invstd],
            9.0 * e,
        ),
    ]
}

fn instance_norm_cases(layer: &str, x: &[usize]) -> Vec<Case> {
    let (c, nc, e) = ([x[1]], [x[0] * x[1]], len(x));
    let stats = |of| {
        [
            input("mean", &nc, Fill::Stats { of, per_instance: true, invstd: false }),
            input("invstd", &nc, Fill::Stats { of, per_instance: true, invstd: true }),
        ]
    };
    let g = "wgan-gp";
    let name = |op: &str| format!("{layer} {op}");
    let [m1, s1] = stats(1);
    let [m0, s0] = stats(0);
    let [m0b, s0b] = stats(0);
    vec![
        case(
            g,
            name("instance_norm2d"),
            Op::InstanceNorm2d,
            vec![input("x", x, U), input("gamma", &c, NEAR_ONE), input("beta", &c, U)],
            7.0 * e,
        ),
        case(
            g,
            name("instance_norm2d_bwd"),
            Op::InstanceNorm2dBwd,
            vec![input("dy", x, U), input("x", x, U), input("gamma", &c, NEAR_ONE), m1, s1],
            9.0 * e,
        ),
        case(
            g,
            name("instance_norm2d_jvp"),
            Op::InstanceNorm2dJvp,
            vec![input("x", x, U), input("x_dot", x, U), input("gamma", &c, NEAR_ONE), m0, s0],
            9.0 * e,
        ),
        case(
            g,
            name("instance_norm2d_jvp_bwd"),
            Op::InstanceNorm2dJvpBwd,
            vec![
                input("x", x, U),
                input("x_dot", x, U),
                input("gamma", &c, NEAR_ONE),
                m0b,
                s0b,
                input("y_bar", x, U),
                input("y_dot_bar", x, U),
            ],
            30.0 * e,
        ),
    ]
}

fn activation_cases(group: &'static str, layer: &str, act: Activation, x: &[usize], fwd: f64, bwd: f64) -> Vec<Case> {
    let e = len(x);
    let op = match act {
        Activation::Relu => "relu",
        Activation::LeakyRelu { .. } => "leaky_relu",
        Activation::Tanh => "tanh",
        Activation::Sigmoid => "sigmoid",
    };
    vec![
        case(group, format!("{layer} {op}"), Op::Activation(act), vec![input("x", x, U)], fwd * e),
        case(
            group,
            format!("{layer} {op}_bwd"),
            Op::ActivationBwd(act),
            vec![input("x", x, U), input("y", x, Fill::Activated { of: 0, act }), input("dy", x, U)],
            bwd * e,
        ),
    ]
}

/// Every op case at DCGAN / WGAN-GP batch `n` (nz 100, ngf = ndf = 64) and Inception batch `fid_n`.
pub fn op_cases(n: usize, fid_n: usize) -> Result<Vec<Case>> {
    let mut v = Vec::new();
    for l in dcgan_convs(n) {
        v.extend(conv_cases("dcgan", &l)?);
    }
    // G's batch norms all hold N·32768 elements; the widest plane and the most channels.
    v.extend(batch_norm_cases("G.main.10", &[n, 64, 32, 32]));
    v.extend(batch_norm_cases("G.main.1", &[n, 512, 4, 4]));
    v.extend(instance_norm_cases("C.main.3", &[n, 128, 16, 16]));
    v.extend(instance_norm_cases("C.main.9", &[n, 512, 4, 4]));
    v.extend(activation_cases("dcgan", "G.main.11", Activation::Relu, &[n, 64, 32, 32], 1.0, 1.0));
    v.extend(activation_cases("dcgan", "D.main.1", Activation::LeakyRelu { slope: LEAKY_SLOPE }, &[n, 64, 32, 32], 2.0, 2.0));
    v.extend(activation_cases("dcgan", "G.main.13", Activation::Tanh, &[n, 3, 64, 64], 1.0, 3.0));
    v.extend(activation_cases("dcgan", "D.main.12", Activation::Sigmoid, &[n, 1, 1, 1], 3.0, 3.0));

    let head = [n, 1, 1, 1];
    let image = [n, 3, 64, 64];
    v.push(case(
        "dcgan",
        "D output bce",
        Op::Bce,
        vec![input("p", &head, Fill::Uniform(0.02, 0.98)), input("target", &head, Fill::Const(dcgan::REAL_LABEL))],
        8.0 * n as f64,
    ));
    v.push(case(
        "dcgan",
        "D output bce_logits",
        Op::BceLogits,
        vec![input("logits", &head, Fill::Uniform(-4.0, 4.0)), input("target", &head, Fill::Const(dcgan::FAKE_LABEL))],
        8.0 * n as f64,
    ));
    v.push(case("dcgan", "D output mean", Op::Mean, vec![input("x", &head, U)], n as f64));
    let alpha = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
    v.push(case(
        "wgan-gp",
        "x_hat lerp_per_sample",
        Op::LerpPerSample { alpha },
        vec![input("real", &image, U), input("fake", &image, U)],
        3.0 * len(&image),
    ));
    v.push(case(
        "wgan-gp",
        "x_hat gradient_penalty_head",
        Op::GradientPenaltyHead { lambda: wgan_gp::LAMBDA },
        vec![input("g", &image, Fill::Uniform(-0.05, 0.05))],
        4.0 * len(&image),
    ));
    let w8 = [512, 256, 4, 4];
    v.push(case("dcgan", "D.main.8.weight grad add_assign", Op::AddAssign, vec![input("a", &w8, U), input("b", &w8, U)], len(&w8)));
    // Adam over all of G's parameters as one flat tensor, from a zero parameter so that the compared
    // output is the update itself.
    let count = generator_params();
    v.push(case(
        "dcgan",
        format!("G adam_step ({:.2}M params)", count as f64 / 1e6),
        Op::AdamStep { cfg: dcgan::ADAM, step: 10 },
        vec![
            input("param", &[count], Fill::Const(0.0)),
            input("grad", &[count], U),
            input("exp_avg", &[count], U),
            input("exp_avg_sq", &[count], Fill::Uniform(0.0, 1.0)),
        ],
        13.0 * count as f64,
    ));
    v.extend(inception_cases(fid_n)?);
    Ok(v)
}

/// Inception's pools, resize, concat and affine maps, and a few of its convolutions (forward only: FID).
fn inception_cases(n: usize) -> Result<Vec<Case>> {
    let g = "inception";
    let mut v = Vec::new();
    let pool = |name: &str, x: [usize; 4], p: Pool2dParams, op: Op, per_out: f64| -> Result<Case> {
        let y = shapes::pool2d_out("bench", &x, p)?;
        Ok(case(g, name.to_string(), op, vec![input("x", &x, U)], per_out * len(&y)))
    };
    let s2 = Pool2dParams::new([3, 3], [2, 2], [0, 0]);
    let s1 = Pool2dParams::new([3, 3], [1, 1], [1, 1]);
    v.push(pool("block0.3 max_pool2d 3x3 s2", [n, 64, 147, 147], s2, Op::MaxPool2d(s2), 9.0)?);
    v.push(pool("Mixed_5b avg_pool2d 3x3 s1", [n, 192, 35, 35], s1, Op::AvgPool2d { p: s1, count_include_pad: false }, 9.0)?);
    v.push(pool("Mixed_7c max_pool2d 3x3 s1", [n, 2048, 8, 8], s1, Op::MaxPool2d(s1), 9.0)?);
    v.push(case(g, "block3 global_avg_pool2d", Op::GlobalAvgPool2d, vec![input("x", &[n, 2048, 8, 8], U)], len(&[n, 2048, 8, 8])));
    let up = [n, 3, 299, 299];
    v.push(case(
        g,
        "input resize_bilinear 64→299",
        Op::ResizeBilinear { out_h: 299, out_w: 299 },
        vec![input("x", &[n, 3, 64, 64], Fill::Uniform(0.0, 1.0))],
        7.0 * len(&up),
    ));
    let branch = |c| [n, c, 35, 35];
    v.push(case(
        g,
        "Mixed_5b concat_channels",
        Op::ConcatChannels,
        vec![
            input("branch1x1", &branch(64), U),
            input("branch5x5", &branch(64), U),
            input("branch3x3dbl", &branch(96), U),
            input("branch_pool", &branch(32), U),
        ],
        0.0,
    ));
    let x2b = [n, 64, 147, 147];
    v.push(case(
        g,
        "Conv2d_2b_3x3 affine_channels+relu",
        Op::AffineChannels { relu: true },
        vec![input("x", &x2b, U), input("scale", &[64], NEAR_ONE), input("shift", &[64], U)],
        3.0 * len(&x2b),
    ));
    v.push(case(
        g,
        "input affine_channels (2x−1)",
        Op::AffineChannels { relu: false },
        vec![input("x", &up, Fill::Uniform(0.0, 1.0)), input("scale", &[3], Fill::Const(2.0)), input("shift", &[3], Fill::Const(-1.0))],
        2.0 * len(&up),
    ));
    for l in inception_convs(n) {
        let y = l.y()?;
        v.push(case(g, format!("{} conv2d", l.name), Op::Conv2d(l.p), vec![input("x", &l.x, U), input("w", &l.w, U)], l.flops(&y) as f64));
    }
    Ok(v)
}
