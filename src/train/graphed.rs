//! Training iterations captured once as device graphs and replayed, PyTorch's `torch.cuda.graphs` recipe:
//! warm up eagerly, capture one iteration on static input tensors, then for every later batch of the same
//! shapes refill those inputs and replay. On a backend that captures (cuda-native) an iteration's hundreds of
//! launches become one graph launch; on the others every iteration runs eagerly, as before.
//!
//! Replays compute what eager iterations would: the graph reads the same parameter buffers the eager code
//! updates in place (a capture that would move one fails), Adam counts its steps on the device, and the
//! losses are read after each replay from the device partials the captured iteration left (the `Pending*`
//! steps of [`crate::train::dcgan`] and [`crate::train::wgan_gp`]).

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::train::dcgan::Dcgan;
use crate::train::wgan_gp::WganGp;

/// A model whose optimizers count their steps on the host: a replay takes steps without running the host
/// code, so the counts are advanced by hand (checkpoints save them, eager steps pass them to the device).
pub trait AdamCounts {
    fn adam_counts(&mut self) -> Vec<&mut u64>;
}

impl<T> AdamCounts for Dcgan<T> {
    fn adam_counts(&mut self) -> Vec<&mut u64> {
        vec![&mut self.opt_d.step, &mut self.opt_g.step]
    }
}

impl<T> AdamCounts for WganGp<T> {
    fn adam_counts(&mut self) -> Vec<&mut u64> {
        vec![&mut self.opt_c.step, &mut self.opt_g.step]
    }
}

/// The elements of an iteration's inputs.
fn size(inputs: &[&Tensor]) -> usize {
    inputs.iter().map(|t| t.len()).sum()
}

/// One iteration on a model and its device inputs, returning its pending result.
type Iteration<'a, M, T, P> = dyn FnMut(&mut M, &[T]) -> Result<P> + 'a;

/// Runs one kind of iteration (returning `P`, its pending result), eagerly or by replaying a captured one.
pub struct Replayer<B: Backend, P> {
    state: State<B, P>,
    replays: u64,
}

enum State<B: Backend, P> {
    /// Graphs off, or the backend does not capture.
    Eager,
    /// The next iteration runs eagerly: it makes each optimizer's device state, which a capture cannot upload.
    WarmUp,
    /// The next iteration whose inputs hold at least `largest` elements (the most seen so far) is captured:
    /// a full batch, not an epoch's short last one.
    Capture {
        largest: usize,
    },
    Replay(Captured<B, P>),
}

/// One captured iteration: the graph, its static inputs and the outputs its replays rewrite.
struct Captured<B: Backend, P> {
    graph: B::Graph,
    inputs: Vec<B::Tensor>,
    shapes: Vec<Vec<usize>>,
    pending: P,
    /// Steps each optimizer takes per replay, in [`AdamCounts`] order.
    adam_steps: Vec<u64>,
}

impl<B: Backend, P: Clone> Replayer<B, P> {
    /// `graphs`: capture and replay where the backend can.
    pub fn new(graphs: bool) -> Self {
        Replayer { state: if graphs { State::WarmUp } else { State::Eager }, replays: 0 }
    }

    /// Iterations so far that ran as a replay of the captured graph (the captured one included).
    pub fn replays(&self) -> u64 {
        self.replays
    }

    /// One iteration `run(model, device inputs)` on host `inputs`. What it returns for a replay is the
    /// captured iteration's pending result, whose tensors the next replay rewrites.
    pub fn step<M: AdamCounts>(
        &mut self,
        b: &B,
        model: &mut M,
        inputs: &[&Tensor],
        mut run: impl FnMut(&mut M, &[B::Tensor]) -> Result<P>,
    ) -> Result<P> {
        let eager = |model: &mut M, run: &mut Iteration<M, B::Tensor, P>| {
            run(model, &inputs.iter().map(|t| b.upload(t)).collect::<Result<Vec<_>>>()?)
        };
        match &mut self.state {
            State::Eager => eager(model, &mut run),
            State::WarmUp => {
                let p = eager(model, &mut run)?;
                self.state = State::Capture { largest: size(inputs) };
                Ok(p)
            }
            State::Capture { largest } if size(inputs) < *largest => eager(model, &mut run),
            State::Capture { .. } => match Self::capture(b, model, inputs, &mut run)? {
                Some(c) => {
                    self.replays += 1;
                    let p = c.pending.clone();
                    self.state = State::Replay(c);
                    Ok(p)
                }
                None => {
                    self.state = State::Eager;
                    eager(model, &mut run)
                }
            },
            // Inputs of other shapes (an epoch's last, partial batch) run eagerly on the same parameters.
            State::Replay(c) if inputs.iter().map(|t| t.shape()).ne(c.shapes.iter().map(|s| &s[..])) => eager(model, &mut run),
            State::Replay(c) => {
                for (dst, src) in c.inputs.iter().zip(inputs) {
                    b.overwrite(dst, src)?;
                }
                b.replay(&c.graph)?;
                for (count, steps) in model.adam_counts().into_iter().zip(&c.adam_steps) {
                    *count += steps;
                }
                self.replays += 1;
                Ok(c.pending.clone())
            }
        }
    }

    /// Captures one iteration on static copies of `inputs` and replays it once (the capture itself runs
    /// nothing); `None` when the backend does not capture.
    fn capture<M: AdamCounts>(
        b: &B,
        model: &mut M,
        inputs: &[&Tensor],
        run: &mut Iteration<M, B::Tensor, P>,
    ) -> Result<Option<Captured<B, P>>> {
        let statics = inputs.iter().map(|t| b.upload(t)).collect::<Result<Vec<_>>>()?;
        let before: Vec<u64> = model.adam_counts().into_iter().map(|c| *c).collect();
        if !b.capture_begin()? {
            return Ok(None);
        }
        let pending = run(model, &statics);
        let graph = b.capture_end(); // ended whatever the iteration did, so the backend is usable again
        let failed = |e: Error| {
            Error::Other(format!(
                "capturing a training iteration as a graph failed, and the model's state may be lost with it: {e}; \
                 resume from the last checkpoint with --eager to train without graphs"
            ))
        };
        let (pending, graph) = (pending.map_err(failed)?, graph.map_err(failed)?);
        b.replay(&graph)?;
        let adam_steps = model.adam_counts().into_iter().zip(before).map(|(after, before)| *after - before).collect();
        let shapes = inputs.iter().map(|t| t.shape().to_vec()).collect();
        Ok(Some(Captured { graph, inputs: statics, shapes, pending, adam_steps }))
    }
}
