//! cxr-gan-reference: the f64 oracle every implementation of every op is judged against.
//! Plain loops, written to be obviously right; never optimized. Depends on nothing of ours.
//!
//! Op names are PyTorch's and the same as the `Backend` trait's (`conv2d_bwd_weight`, ...).

/// A dense row-major (NCHW) f64 array.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Array {
    pub fn new(shape: &[usize], data: Vec<f64>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "shape {shape:?} vs {} elements", data.len());
        Array { shape: shape.to_vec(), data }
    }
    pub fn zeros(shape: &[usize]) -> Self {
        Array { shape: shape.to_vec(), data: vec![0.0; shape.iter().product()] }
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// `[N, C, H, W]` of a 4-d array.
    pub fn dims4(&self) -> [usize; 4] {
        assert_eq!(self.shape.len(), 4, "expected a 4-d array, got {:?}", self.shape);
        [self.shape[0], self.shape[1], self.shape[2], self.shape[3]]
    }
    /// The flat index of (n, c, h, w) in a 4-d array.
    pub fn idx4(&self, n: usize, c: usize, h: usize, w: usize) -> usize {
        let [_, cc, hh, ww] = self.dims4();
        ((n * cc + c) * hh + h) * ww + w
    }
}

pub mod act;
pub mod adam;
pub mod conv;
pub mod gp;
pub mod linear;
pub mod loss;
pub mod norm;
pub mod pool;
pub mod resize;

pub use act::{activation, activation_bwd, dropout, Activation};
pub use adam::{adam_step, AdamConfig};
pub use conv::{conv2d, conv2d_bwd_data, conv2d_bwd_weight, conv_transpose2d, conv_transpose2d_bwd_data, conv_transpose2d_bwd_weight};
pub use gp::{critic_backward, critic_forward, gradient_penalty, gradient_penalty_head, Critic, CriticGrads, GradientPenalty};
pub use linear::{linear, linear_bwd};
pub use loss::{bce, bce_logits, cross_entropy};
pub use norm::{
    batch_norm2d_bwd, batch_norm2d_eval, batch_norm2d_train, instance_norm2d, instance_norm2d_bwd, instance_norm2d_jvp,
    instance_norm2d_jvp_bwd, InstanceNormJvpGrads, NormStats,
};
pub use pool::{
    affine_channels, avg_pool2d, avg_pool2d_bwd, concat_channels, concat_channels_bwd, global_avg_pool2d, global_avg_pool2d_bwd,
    max_pool2d, max_pool2d_bwd,
};
pub use resize::resize_bilinear;
