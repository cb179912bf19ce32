//! The DCGAN iteration captured once as a device graph and replayed, PyTorch's `torch.cuda.graphs` recipe:
//! warm up eagerly, capture one iteration on static input tensors, then for every later batch refill those
//! inputs and replay. On a backend that captures (cuda-native) an iteration's hundreds of launches become one
//! graph launch; on the others every iteration runs eagerly, as before.
//!
//! Replays compute what eager iterations would: the graph reads the same parameter buffers the eager code
//! updates in place (a capture that would move one fails), Adam counts its steps on the device, and the losses
//! are read after each replay from the device partials the captured iteration left ([`PendingDcganStep`]).

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::train::dcgan::{Dcgan, DcganStep, PendingDcganStep};

/// Runs DCGAN iterations, eagerly or by replaying a captured one.
pub struct DcganStepper<B: Backend> {
    state: State<B>,
    replays: u64,
}

enum State<B: Backend> {
    /// Graphs off, or the backend does not capture.
    Eager,
    /// The next iteration runs eagerly: it makes each optimizer's device state, which a capture cannot upload.
    WarmUp,
    /// The next iteration is captured.
    Capture,
    Replay(Captured<B>),
}

/// One captured iteration: the graph, its static inputs and the outputs its replays rewrite.
struct Captured<B: Backend> {
    graph: B::Graph,
    real: B::Tensor,
    noise: B::Tensor,
    shapes: (Vec<usize>, Vec<usize>),
    pending: PendingDcganStep<B::Tensor>,
    /// Adam steps each replay takes (D's, G's), added to the host's counts, which the replay does not run.
    adam_steps: (u64, u64),
}

impl<B: Backend> DcganStepper<B> {
    /// `graphs`: capture and replay where the backend can.
    pub fn new(graphs: bool) -> Self {
        DcganStepper { state: if graphs { State::WarmUp } else { State::Eager }, replays: 0 }
    }

    /// Iterations so far that ran as a replay of the captured graph (the captured one included).
    pub fn replays(&self) -> u64 {
        self.replays
    }

    /// One iteration on a host batch of real images [N, 3, 64, 64] and noise [N, nz, 1, 1]. The returned
    /// step's tensors are a replay's outputs: the next replay rewrites them.
    pub fn step(&mut self, b: &B, gan: &mut Dcgan<B::Tensor>, real: &Tensor, noise: &Tensor) -> Result<DcganStep<B::Tensor>> {
        let eager = |gan: &mut Dcgan<B::Tensor>| gan.step(b, &b.upload(real)?, &b.upload(noise)?);
        match &mut self.state {
            State::Eager => eager(gan),
            State::WarmUp => {
                let s = eager(gan)?;
                self.state = State::Capture;
                Ok(s)
            }
            State::Capture => match Self::capture(b, gan, real, noise)? {
                Some(c) => {
                    self.replays += 1;
                    let s = c.pending.clone().resolve(b)?;
                    self.state = State::Replay(c);
                    Ok(s)
                }
                None => {
                    self.state = State::Eager;
                    eager(gan)
                }
            },
            // A batch of another size (an epoch's last, partial one) runs eagerly on the same parameters.
            State::Replay(c) if (real.shape(), noise.shape()) != (&c.shapes.0[..], &c.shapes.1[..]) => eager(gan),
            State::Replay(c) => {
                b.overwrite(&c.real, real)?;
                b.overwrite(&c.noise, noise)?;
                b.replay(&c.graph)?;
                gan.opt_d.step += c.adam_steps.0;
                gan.opt_g.step += c.adam_steps.1;
                self.replays += 1;
                c.pending.clone().resolve(b)
            }
        }
    }

    /// Captures one iteration on static copies of `real` and `noise` and replays it once (the capture itself
    /// runs nothing); `None` when the backend does not capture.
    fn capture(b: &B, gan: &mut Dcgan<B::Tensor>, real: &Tensor, noise: &Tensor) -> Result<Option<Captured<B>>> {
        let (real_t, noise_t) = (b.upload(real)?, b.upload(noise)?);
        let before = (gan.opt_d.step, gan.opt_g.step);
        if !b.capture_begin()? {
            return Ok(None);
        }
        let pending = gan.step_pending(b, &real_t, &noise_t);
        let graph = b.capture_end(); // ended whatever the step did, so the backend is usable again
        let failed = |e: Error| {
            Error::Other(format!(
                "capturing the DCGAN iteration as a graph failed, and the model's state may be lost with it: {e}; \
                 resume from the last checkpoint with --eager to train without graphs"
            ))
        };
        let (pending, graph) = (pending.map_err(failed)?, graph.map_err(failed)?);
        b.replay(&graph)?;
        let adam_steps = (gan.opt_d.step - before.0, gan.opt_g.step - before.1);
        let shapes = (real.shape().to_vec(), noise.shape().to_vec());
        Ok(Some(Captured { graph, real: real_t, noise: noise_t, shapes, pending, adam_steps }))
    }
}
