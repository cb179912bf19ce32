//! torch.optim.Adam over a model's named parameters, the state kept beside them by name.

use crate::backend::{AdamConfig, AdamSlot, Backend};
use crate::error::{Error, Result};
use crate::nn::{Grads, Parameters};

pub struct Adam<T> {
    pub cfg: AdamConfig,
    /// Steps taken so far (PyTorch keeps one per parameter; ours move together).
    pub step: u64,
    /// (name, exp_avg, exp_avg_sq) per parameter, in `named_parameters()` order.
    pub state: Vec<(String, T, T)>,
}

impl<T: Clone> Adam<T> {
    /// Zero moments for every parameter of `model` (PyTorch creates them lazily at the first step).
    pub fn new<B: Backend<Tensor = T>>(b: &B, model: &mut impl Parameters<T>, cfg: AdamConfig) -> Result<Self> {
        let state = model
            .parameters_mut()
            .into_iter()
            .map(|(n, p)| {
                let s = b.shape(p);
                Ok((n, b.zeros(&s)?, b.zeros(&s)?))
            })
            .collect::<Result<_>>()?;
        Ok(Adam { cfg, step: 0, state })
    }

    /// One step of every parameter with its gradient (one `adam_step_all`); every parameter must have one.
    pub fn step<B: Backend<Tensor = T>>(&mut self, b: &B, model: &mut impl Parameters<T>, grads: &Grads<T>) -> Result<()> {
        self.step += 1;
        let mut slots = Vec::with_capacity(self.state.len());
        for ((name, param), (sname, exp_avg, exp_avg_sq)) in model.parameters_mut().into_iter().zip(self.state.iter_mut()) {
            debug_assert_eq!(&name, sname);
            let grad = grads.get(&name).ok_or_else(|| Error::Other(format!("Adam: no gradient for {name}")))?;
            slots.push(AdamSlot { param, grad, exp_avg, exp_avg_sq });
        }
        b.adam_step_all(&mut slots, &self.cfg, self.step)
    }
}
