//! torchvision's InceptionV3 as a trainable classifier (the paper's Table 4): every BasicConv2d is
//! conv (no bias) → BatchNorm2d(eps 0.001) → ReLU in training form, then global average pool → dropout(0.5)
//! → `fc`. Names are torchvision's (`Mixed_6b.branch7x7_2.conv.weight`, `fc.bias`), so pytorch-fid's FID
//! weights initialise every layer but the new 2-class `fc`. No auxiliary classifier (the FID weights have
//! none); the FID variants' pools are kept (Mixed_5x/6x/7b average without padding, Mixed_7c max-pools),
//! as the weights were trained with them.
//!
//! The network is data: blocks of branches of steps. A forward in training keeps every activation in one
//! arena (each once: a step's output is the next step's input) plus what each step's backward needs.

use std::collections::HashMap;

use crate::backend::{Activation, Backend, Conv2dParams, NormStats, Pool2dParams};
use crate::error::{Error, Result};
use crate::nn::sequential::{dims, dropout_mask};
use crate::nn::{default_init, Grads, Mode, Parameters};
use crate::tensor::Tensor;

/// BatchNorm2d's eps in every BasicConv2d (torchvision's 0.001).
pub const BN_EPS: f32 = 0.001;
/// BatchNorm2d's momentum (PyTorch's default).
pub const BN_MOMENTUM: f32 = 0.1;
/// Dropout before `fc` (torchvision's default).
pub const DROPOUT: f32 = 0.5;
/// The input size InceptionV3 is trained and run at.
pub const INPUT_SIZE: usize = 299;
/// Features after the last block.
pub const FEATURES: usize = 2048;

const AVG_3X3: Pool2dParams = Pool2dParams::new([3, 3], [1, 1], [1, 1]);
const MAX_3X3_S2: Pool2dParams = Pool2dParams::new([3, 3], [2, 2], [0, 0]);
const MAX_3X3_S1: Pool2dParams = Pool2dParams::new([3, 3], [1, 1], [1, 1]);

/// conv → BatchNorm2d → ReLU with its state_dict prefix (`Mixed_5b.branch1x1`).
pub struct BasicConv2d<T> {
    name: String,
    weight: T,
    bn_weight: T,
    bn_bias: T,
    running_mean: T,
    running_var: T,
    p: Conv2dParams,
}

enum Step<T> {
    Conv(BasicConv2d<T>),
    MaxPool(Pool2dParams),
    /// An average pool and its count_include_pad.
    AvgPool(Pool2dParams, bool),
}

/// Steps in order, then optionally several heads on the stem's output whose outputs are concatenated
/// (Mixed_7b/7c's 1×3 and 3×1 pairs).
struct Branch<T> {
    stem: Vec<Step<T>>,
    heads: Vec<Vec<Step<T>>>,
}

/// The branches of one block, their outputs concatenated along channels (one branch: no concat).
struct Block<T> {
    branches: Vec<Branch<T>>,
}

/// InceptionV3 with a `classes`-way `fc` head.
pub struct InceptionV3<T> {
    blocks: Vec<Block<T>>,
    pub fc_weight: T,
    pub fc_bias: T,
    /// The seed of the next training forward's dropout mask (the trainer sets it per step).
    pub dropout_seed: u64,
}

/// What a step's backward needs, by arena index.
enum StepTape<T> {
    Conv { input: usize, z: T, stats: NormStats<T>, output: usize },
    MaxPool { input: usize },
    AvgPool { input: usize },
}

/// A training forward's record.
pub struct Tape<T> {
    acts: Vec<T>,
    /// Per block: per branch, (stem tapes, per-head tapes, output channels of each piece).
    blocks: Vec<Vec<BranchTape<T>>>,
    pooled_shape: [usize; 4],
    features: T,
    mask: T,
}

struct BranchTape<T> {
    stem: Vec<StepTape<T>>,
    heads: Vec<Vec<StepTape<T>>>,
    /// Channels of each concatenated piece (the stem's output, or each head's).
    channels: Vec<usize>,
}

impl<B: Backend> Loader<'_, B> {
    /// The architecture: blocks of branches of steps, each BasicConv2d loaded by name.
    fn network(&mut self) -> Vec<Block<B::Tensor>> {
        let seq = |steps: Vec<Step<B::Tensor>>| Block { branches: vec![Branch { stem: steps, heads: vec![] }] };
        let c = |me: &mut Self, n: &str, cin, cout, k, s, p| Step::Conv(me.conv(n, cin, cout, k, s, p));
        let mut blocks = vec![seq(vec![
            c(self, "Conv2d_1a_3x3", 3, 32, [3, 3], 2, [0, 0]),
            c(self, "Conv2d_2a_3x3", 32, 32, [3, 3], 1, [0, 0]),
            c(self, "Conv2d_2b_3x3", 32, 64, [3, 3], 1, [1, 1]),
            Step::MaxPool(MAX_3X3_S2),
            c(self, "Conv2d_3b_1x1", 64, 80, [1, 1], 1, [0, 0]),
            c(self, "Conv2d_4a_3x3", 80, 192, [3, 3], 1, [0, 0]),
            Step::MaxPool(MAX_3X3_S2),
        ])];
        for (name, cin, pool) in [("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)] {
            let n = |s: &str| format!("{name}.{s}");
            blocks.push(Block {
                branches: vec![
                    one(vec![c(self, &n("branch1x1"), cin, 64, [1, 1], 1, [0, 0])]),
                    one(vec![
                        c(self, &n("branch5x5_1"), cin, 48, [1, 1], 1, [0, 0]),
                        c(self, &n("branch5x5_2"), 48, 64, [5, 5], 1, [2, 2]),
                    ]),
                    one(vec![
                        c(self, &n("branch3x3dbl_1"), cin, 64, [1, 1], 1, [0, 0]),
                        c(self, &n("branch3x3dbl_2"), 64, 96, [3, 3], 1, [1, 1]),
                        c(self, &n("branch3x3dbl_3"), 96, 96, [3, 3], 1, [1, 1]),
                    ]),
                    one(vec![Step::AvgPool(AVG_3X3, false), c(self, &n("branch_pool"), cin, pool, [1, 1], 1, [0, 0])]),
                ],
            });
        }
        let n = |s: &str| format!("Mixed_6a.{s}");
        blocks.push(Block {
            branches: vec![
                one(vec![c(self, &n("branch3x3"), 288, 384, [3, 3], 2, [0, 0])]),
                one(vec![
                    c(self, &n("branch3x3dbl_1"), 288, 64, [1, 1], 1, [0, 0]),
                    c(self, &n("branch3x3dbl_2"), 64, 96, [3, 3], 1, [1, 1]),
                    c(self, &n("branch3x3dbl_3"), 96, 96, [3, 3], 2, [0, 0]),
                ]),
                one(vec![Step::MaxPool(MAX_3X3_S2)]),
            ],
        });
        let (k17, k71, p17, p71) = ([1, 7], [7, 1], [0, 3], [3, 0]);
        for (name, c7) in [("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)] {
            let n = |s: &str| format!("{name}.{s}");
            blocks.push(Block {
                branches: vec![
                    one(vec![c(self, &n("branch1x1"), 768, 192, [1, 1], 1, [0, 0])]),
                    one(vec![
                        c(self, &n("branch7x7_1"), 768, c7, [1, 1], 1, [0, 0]),
                        c(self, &n("branch7x7_2"), c7, c7, k17, 1, p17),
                        c(self, &n("branch7x7_3"), c7, 192, k71, 1, p71),
                    ]),
                    one(vec![
                        c(self, &n("branch7x7dbl_1"), 768, c7, [1, 1], 1, [0, 0]),
                        c(self, &n("branch7x7dbl_2"), c7, c7, k71, 1, p71),
                        c(self, &n("branch7x7dbl_3"), c7, c7, k17, 1, p17),
                        c(self, &n("branch7x7dbl_4"), c7, c7, k71, 1, p71),
                        c(self, &n("branch7x7dbl_5"), c7, 192, k17, 1, p17),
                    ]),
                    one(vec![Step::AvgPool(AVG_3X3, false), c(self, &n("branch_pool"), 768, 192, [1, 1], 1, [0, 0])]),
                ],
            });
        }
        let n = |s: &str| format!("Mixed_7a.{s}");
        blocks.push(Block {
            branches: vec![
                one(vec![c(self, &n("branch3x3_1"), 768, 192, [1, 1], 1, [0, 0]), c(self, &n("branch3x3_2"), 192, 320, [3, 3], 2, [0, 0])]),
                one(vec![
                    c(self, &n("branch7x7x3_1"), 768, 192, [1, 1], 1, [0, 0]),
                    c(self, &n("branch7x7x3_2"), 192, 192, k17, 1, p17),
                    c(self, &n("branch7x7x3_3"), 192, 192, k71, 1, p71),
                    c(self, &n("branch7x7x3_4"), 192, 192, [3, 3], 2, [0, 0]),
                ]),
                one(vec![Step::MaxPool(MAX_3X3_S2)]),
            ],
        });
        for (name, cin, max_pool) in [("Mixed_7b", 1280, false), ("Mixed_7c", 2048, true)] {
            let n = |s: &str| format!("{name}.{s}");
            let pool = if max_pool { Step::MaxPool(MAX_3X3_S1) } else { Step::AvgPool(AVG_3X3, false) };
            blocks.push(Block {
                branches: vec![
                    one(vec![c(self, &n("branch1x1"), cin, 320, [1, 1], 1, [0, 0])]),
                    Branch {
                        stem: vec![c(self, &n("branch3x3_1"), cin, 384, [1, 1], 1, [0, 0])],
                        heads: vec![
                            vec![c(self, &n("branch3x3_2a"), 384, 384, [1, 3], 1, [0, 1])],
                            vec![c(self, &n("branch3x3_2b"), 384, 384, [3, 1], 1, [1, 0])],
                        ],
                    },
                    Branch {
                        stem: vec![
                            c(self, &n("branch3x3dbl_1"), cin, 448, [1, 1], 1, [0, 0]),
                            c(self, &n("branch3x3dbl_2"), 448, 384, [3, 3], 1, [1, 1]),
                        ],
                        heads: vec![
                            vec![c(self, &n("branch3x3dbl_3a"), 384, 384, [1, 3], 1, [0, 1])],
                            vec![c(self, &n("branch3x3dbl_3b"), 384, 384, [3, 1], 1, [1, 0])],
                        ],
                    },
                    one(vec![pool, c(self, &n("branch_pool"), cin, 192, [1, 1], 1, [0, 0])]),
                ],
            });
        }
        blocks
    }
}

fn one<C>(stem: Vec<Step<C>>) -> Branch<C> {
    Branch { stem, heads: vec![] }
}

/// Where a model's tensors come from: `(name, shape)` → the host tensor, or why there is none.
pub type TensorSource<'a> = dyn Fn(&str, &[usize]) -> std::result::Result<Tensor, String> + 'a;

/// Builds BasicConv2d layers from a name → host tensor source, collecting every problem.
struct Loader<'a, B: Backend> {
    b: &'a B,
    get: &'a TensorSource<'a>,
    problems: Vec<String>,
}

impl<B: Backend> Loader<'_, B> {
    fn tensor(&mut self, key: &str, shape: &[usize]) -> B::Tensor {
        let t = match (self.get)(key, shape) {
            Ok(t) if t.shape() == shape => self.b.upload(&t),
            Ok(t) => Err(Error::Other(format!("`{key}` has shape {:?}, expected {shape:?}", t.shape()))),
            Err(why) => Err(Error::Other(format!("`{key}` {why}"))),
        };
        t.unwrap_or_else(|e| {
            self.problems.push(e.to_string());
            self.b.zeros(&[1]).expect("a one-element placeholder")
        })
    }
}

impl<B: Backend> Loader<'_, B> {
    fn conv(&mut self, name: &str, cin: usize, cout: usize, k: [usize; 2], stride: usize, pad: [usize; 2]) -> BasicConv2d<B::Tensor> {
        BasicConv2d {
            name: name.to_string(),
            weight: self.tensor(&format!("{name}.conv.weight"), &[cout, cin, k[0], k[1]]),
            bn_weight: self.tensor(&format!("{name}.bn.weight"), &[cout]),
            bn_bias: self.tensor(&format!("{name}.bn.bias"), &[cout]),
            running_mean: self.tensor(&format!("{name}.bn.running_mean"), &[cout]),
            running_var: self.tensor(&format!("{name}.bn.running_var"), &[cout]),
            p: Conv2dParams::new([stride, stride], pad),
        }
    }
}

impl<T: Clone> InceptionV3<T> {
    /// Builds the model asking `get(name, shape)` for every tensor (fc included); every missing or
    /// mis-shaped tensor is listed in the error.
    pub fn build<B: Backend<Tensor = T>>(b: &B, classes: usize, get: &TensorSource) -> Result<Self> {
        let mut l = Loader { b, get, problems: Vec::new() };
        let blocks = l.network();
        let fc_weight = l.tensor("fc.weight", &[classes, FEATURES]);
        let fc_bias = l.tensor("fc.bias", &[classes]);
        if !l.problems.is_empty() {
            let n = l.problems.len();
            let shown: Vec<_> = l.problems.iter().take(3).cloned().collect();
            return Err(Error::Other(format!(
                "InceptionV3: {n} tensor problem(s): {}{}",
                shown.join("; "),
                if n > 3 { "; ..." } else { "" }
            )));
        }
        Ok(InceptionV3 { blocks, fc_weight, fc_bias, dropout_seed: 0 })
    }

    /// Every BasicConv2d from `weights` (pytorch-fid's FID weights: torchvision's names) and a new `fc`
    /// initialised as nn.Linear's default, U(−1/√2048, 1/√2048), from `seed`.
    pub fn from_pretrained<B: Backend<Tensor = T>>(
        b: &B,
        classes: usize,
        weights: &HashMap<String, std::result::Result<Tensor, String>>,
        seed: u64,
    ) -> Result<Self> {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let fc = (default_init(&mut rng, &[classes, FEATURES], FEATURES)?, default_init(&mut rng, &[classes], FEATURES)?);
        Self::build(b, classes, &|key, _| match key {
            "fc.weight" => Ok(fc.0.clone()),
            "fc.bias" => Ok(fc.1.clone()),
            _ => weights.get(key).cloned().unwrap_or_else(|| Err("is missing".into())),
        })
    }

    /// Random weights as torchvision initialises InceptionV3 (conv and fc weights N(0, 0.1²) truncated at
    /// ±2, identity batch norms, zero fc bias), from `seed`.
    pub fn scratch<B: Backend<Tensor = T>>(b: &B, classes: usize, seed: u64) -> Result<Self> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let rng = std::cell::RefCell::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let normal = Normal::new(0.0f32, 0.1).expect("a valid normal");
        Self::build(b, classes, &|key, shape| {
            let len = shape.iter().product();
            let data = if key.ends_with(".conv.weight") || key == "fc.weight" {
                let mut rng = rng.borrow_mut();
                (0..len).map(|_| normal.sample(&mut *rng).clamp(-2.0, 2.0)).collect()
            } else if key.ends_with(".bn.weight") || key.ends_with(".bn.running_var") {
                vec![1.0; len]
            } else {
                vec![0.0; len]
            };
            Tensor::new(shape, data).map_err(|e| e.to_string())
        })
    }

    /// Every state_dict tensor with its name (parameters and BN running statistics), in torchvision's order.
    pub fn state_dict_mut(&mut self) -> Vec<(String, &mut T)> {
        let mut out = Vec::new();
        for block in &mut self.blocks {
            for branch in &mut block.branches {
                for step in branch.stem.iter_mut().chain(branch.heads.iter_mut().flatten()) {
                    if let Step::Conv(c) = step {
                        out.push((format!("{}.conv.weight", c.name), &mut c.weight));
                        out.push((format!("{}.bn.weight", c.name), &mut c.bn_weight));
                        out.push((format!("{}.bn.bias", c.name), &mut c.bn_bias));
                        out.push((format!("{}.bn.running_mean", c.name), &mut c.running_mean));
                        out.push((format!("{}.bn.running_var", c.name), &mut c.running_var));
                    }
                }
            }
        }
        out.push(("fc.weight".into(), &mut self.fc_weight));
        out.push(("fc.bias".into(), &mut self.fc_bias));
        out
    }

    /// The logits [N, classes] for images `x` [N, 3, 299, 299] in [−1, 1]. In `Train` mode batch norm uses
    /// batch statistics (and updates the running ones) and the returned tape serves [`Self::backward`].
    pub fn forward<B: Backend<Tensor = T>>(&mut self, b: &B, x: &T, mode: Mode) -> Result<(T, Option<Tape<T>>)> {
        let train = mode == Mode::Train;
        let mut acts = vec![x.clone()];
        let mut tapes = Vec::with_capacity(self.blocks.len());
        for block in &mut self.blocks {
            let input = acts.len() - 1;
            let mut branch_tapes = Vec::with_capacity(block.branches.len());
            let mut pieces = Vec::new();
            for branch in &mut block.branches {
                let (stem_out, stem) = run_steps(b, &mut branch.stem, &mut acts, input, train)?;
                let mut heads = Vec::with_capacity(branch.heads.len());
                let mut channels = Vec::new();
                if branch.heads.is_empty() {
                    pieces.push(stem_out);
                    channels.push(b.shape(&acts[stem_out])[1]);
                }
                for head in &mut branch.heads {
                    let (out, tape) = run_steps(b, head, &mut acts, stem_out, train)?;
                    pieces.push(out);
                    channels.push(b.shape(&acts[out])[1]);
                    heads.push(tape);
                }
                branch_tapes.push(BranchTape { stem, heads, channels });
            }
            if pieces.len() > 1 {
                let y = b.concat_channels(&pieces.iter().map(|&i| &acts[i]).collect::<Vec<_>>())?;
                acts.push(y);
            }
            if !train {
                // Only the block's output is needed from here on.
                let last = acts.pop().expect("the block's output");
                acts = vec![last];
            }
            tapes.push(branch_tapes);
        }
        let last = acts.last().expect("the network's output");
        let pooled_shape = dims(b, last)?;
        let features = b.global_avg_pool2d(last)?; // [N, 2048]
        if !train {
            return Ok((b.linear(&features, &self.fc_weight, &self.fc_bias)?, None));
        }
        let mask = dropout_mask(b, &b.shape(&features), DROPOUT, self.dropout_seed)?;
        let dropped = b.dropout(&features, &mask, DROPOUT)?;
        let logits = b.linear(&dropped, &self.fc_weight, &self.fc_bias)?; // [N, classes]
        Ok((logits, Some(Tape { acts, blocks: tapes, pooled_shape, features: dropped, mask })))
    }

    /// Backpropagates dlogits through a training forward's tape; every parameter's gradient, by name.
    pub fn backward<B: Backend<Tensor = T>>(&self, b: &B, tape: Tape<T>, dlogits: &T) -> Result<Grads<T>> {
        let mut grads = Grads::default();
        let fc = b.linear_bwd(dlogits, &tape.features, &self.fc_weight)?;
        let d_features = b.dropout(&fc.dx, &tape.mask, DROPOUT)?;
        let mut dy = b.global_avg_pool2d_bwd(&d_features, tape.pooled_shape)?;
        let Tape { acts, blocks, .. } = tape;
        for (bi, (block, btape)) in self.blocks.iter().zip(&blocks).enumerate().rev() {
            let first_block = bi == 0;
            let channels: Vec<usize> = btape.iter().flat_map(|t| t.channels.iter().copied()).collect();
            let mut d_pieces = if channels.len() > 1 { b.concat_channels_bwd(&dy, &channels)? } else { vec![dy] }.into_iter();
            let mut d_input: Option<T> = None;
            for (branch, bt) in block.branches.iter().zip(btape) {
                let d_stem_out = if branch.heads.is_empty() {
                    d_pieces.next().expect("one gradient per piece")
                } else {
                    let mut acc: Option<T> = None;
                    for (head, ht) in branch.heads.iter().zip(&bt.heads) {
                        let d = d_pieces.next().expect("one gradient per piece");
                        let d = back_steps(b, head, ht, &acts, d, &mut grads, true)?.expect("a head's input gradient");
                        accumulate(b, &mut acc, d)?;
                    }
                    acc.expect("a split branch has heads")
                };
                if let Some(d) = back_steps(b, &branch.stem, &bt.stem, &acts, d_stem_out, &mut grads, !first_block)? {
                    accumulate(b, &mut d_input, d)?;
                }
            }
            if first_block {
                break;
            }
            dy = d_input.ok_or_else(|| Error::Other("InceptionV3 backward: a block without branches".into()))?;
        }
        grads.entries.push(("fc.weight".into(), fc.dw));
        grads.entries.push(("fc.bias".into(), fc.db));
        Ok(grads)
    }
}

impl<T: Clone> Parameters<T> for InceptionV3<T> {
    fn parameters_mut(&mut self) -> Vec<(String, &mut T)> {
        self.state_dict_mut().into_iter().filter(|(n, _)| !n.contains("running_")).collect()
    }
}

fn accumulate<B: Backend>(b: &B, acc: &mut Option<B::Tensor>, d: B::Tensor) -> Result<()> {
    match acc {
        Some(a) => b.add_assign(a, &d),
        None => {
            *acc = Some(d);
            Ok(())
        }
    }
}

/// Runs `steps` from arena entry `input`, pushing each output; returns the last output's index (the input's
/// when there are no steps) and, in training, each step's tape.
fn run_steps<B: Backend>(
    b: &B,
    steps: &mut [Step<B::Tensor>],
    acts: &mut Vec<B::Tensor>,
    mut input: usize,
    train: bool,
) -> Result<(usize, Vec<StepTape<B::Tensor>>)> {
    let mut tapes = Vec::with_capacity(steps.len());
    for step in steps {
        let x = &acts[input];
        let (y, tape) = match step {
            Step::Conv(c) => {
                let z = b.conv2d(x, &c.weight, c.p)?;
                if train {
                    let (y, stats) = b.batch_norm2d_train_act(
                        &z,
                        &c.bn_weight,
                        &c.bn_bias,
                        &mut c.running_mean,
                        &mut c.running_var,
                        BN_EPS,
                        BN_MOMENTUM,
                        Activation::Relu,
                    )?;
                    (y, Some(StepTape::Conv { input, z, stats, output: acts.len() }))
                } else {
                    let y = b.batch_norm2d_eval(&z, &c.bn_weight, &c.bn_bias, &c.running_mean, &c.running_var, BN_EPS)?;
                    (b.activation(Activation::Relu, &y)?, None)
                }
            }
            Step::MaxPool(p) => (b.max_pool2d(x, *p)?, train.then_some(StepTape::MaxPool { input })),
            Step::AvgPool(p, include) => (b.avg_pool2d(x, *p, *include)?, train.then_some(StepTape::AvgPool { input })),
        };
        acts.push(y);
        input = acts.len() - 1;
        tapes.extend(tape);
    }
    Ok((input, tapes))
}

/// Backpropagates `dy` through `steps`; parameter gradients go to `grads`. Returns the input gradient when
/// `need_input` (else stops at the first step, skipping its data gradient).
fn back_steps<B: Backend>(
    b: &B,
    steps: &[Step<B::Tensor>],
    tapes: &[StepTape<B::Tensor>],
    acts: &[B::Tensor],
    mut dy: B::Tensor,
    grads: &mut Grads<B::Tensor>,
    need_input: bool,
) -> Result<Option<B::Tensor>> {
    for (i, (step, tape)) in steps.iter().zip(tapes).enumerate().rev() {
        let need_dx = i > 0 || need_input;
        dy = match (step, tape) {
            (Step::Conv(c), StepTape::Conv { input, z, stats, output }) => {
                // ReLU's backward reads its output's sign (the fused forward kept only the output).
                let y = &acts[*output];
                let dz = b.activation_bwd(Activation::Relu, y, y, &dy)?;
                let bn = b.batch_norm2d_bwd(&dz, z, &c.bn_weight, stats)?;
                let x = &acts[*input];
                grads.entries.push((format!("{}.conv.weight", c.name), b.conv2d_bwd_weight(x, &bn.dx, dims(b, &c.weight)?, c.p)?));
                grads.entries.push((format!("{}.bn.weight", c.name), bn.dgamma));
                grads.entries.push((format!("{}.bn.bias", c.name), bn.dbeta));
                if !need_dx {
                    return Ok(None);
                }
                b.conv2d_bwd_data(&bn.dx, &c.weight, dims(b, x)?, c.p)?
            }
            (Step::MaxPool(p), StepTape::MaxPool { input }) => b.max_pool2d_bwd(&dy, &acts[*input], *p)?,
            (Step::AvgPool(p, include), StepTape::AvgPool { input }) => b.avg_pool2d_bwd(&dy, dims(b, &acts[*input])?, *p, *include)?,
            _ => return Err(Error::Other("InceptionV3 backward: the tape does not match the network".into())),
        };
    }
    Ok(need_input.then_some(dy))
}
