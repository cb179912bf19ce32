//! Elementwise activations and their backwards.

use crate::Array;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu { slope: f64 },
    Tanh,
    Sigmoid,
}

/// σ(x) without overflow: e^{−|x|} never exceeds 1.
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

pub fn activation(act: Activation, x: &Array) -> Array {
    let f = |v: f64| match act {
        Activation::Relu => {
            if v > 0.0 || v.is_nan() {
                v
            } else {
                0.0
            }
        } // NaN propagates, as torch.relu
        Activation::LeakyRelu { slope } => {
            if v > 0.0 {
                v
            } else {
                v * slope
            }
        }
        Activation::Tanh => v.tanh(),
        Activation::Sigmoid => sigmoid(v),
    };
    Array::new(&x.shape, x.data.iter().map(|&v| f(v)).collect())
}

/// dx given the forward input x, output y and dy. PyTorch's convention at exactly x = 0: relu's
/// gradient is 0 (threshold_backward passes only y > 0), leaky_relu's is `slope` (it passes x > 0).
/// tanh and sigmoid read y: dy·(1 − y²), dy·y·(1 − y). For relu/leaky_relu this is also the
/// forward-mode derivative with dy = ẋ (the mask is locally constant).
pub fn activation_bwd(act: Activation, x: &Array, y: &Array, dy: &Array) -> Array {
    assert!(x.shape == y.shape && x.shape == dy.shape, "activation_bwd: shapes differ");
    let g = |x: f64, y: f64, dy: f64| match act {
        Activation::Relu => {
            if x > 0.0 {
                dy
            } else {
                0.0
            }
        }
        Activation::LeakyRelu { slope } => {
            if x > 0.0 {
                dy
            } else {
                dy * slope
            }
        }
        Activation::Tanh => dy * (1.0 - y * y),
        Activation::Sigmoid => dy * y * (1.0 - y),
    };
    let data = x.data.iter().zip(&y.data).zip(&dy.data).map(|((&x, &y), &dy)| g(x, y, dy)).collect();
    Array::new(&x.shape, data)
}

/// Training-mode F.dropout with a given keep mask (1 keeps, 0 drops): y = x·mask/(1 − p), evaluated as ATen
/// does (noise = mask/(1 − p), then x·noise). Linear in x, so its gradient is the same map applied to dy
/// (`dropout(dy, mask, p)`).
pub fn dropout(x: &Array, mask: &Array, p: f64) -> Array {
    assert_eq!(x.shape, mask.shape, "dropout: mask shape");
    assert!((0.0..1.0).contains(&p), "dropout: p = {p} outside [0, 1)");
    Array::new(&x.shape, x.data.iter().zip(&mask.data).map(|(&v, &m)| v * (m / (1.0 - p))).collect())
}
