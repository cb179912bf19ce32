//! A small host tensor: a shape and row-major (NCHW) f32 data. Backends upload it to their own buffers.

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// Formats a shape as PyTorch prints sizes: `[2, 3, 64, 64]`.
pub fn fmt_shape(shape: &[usize]) -> String {
    format!("{shape:?}")
}

impl Tensor {
    /// A tensor from a shape and its data; the element count must match.
    pub fn new(shape: &[usize], data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::shape("Tensor::new", format!("shape {} needs {n} elements, got {}", fmt_shape(shape), data.len())));
        }
        Ok(Tensor { shape: shape.to_vec(), data })
    }
    pub fn zeros(shape: &[usize]) -> Self {
        Tensor { shape: shape.to_vec(), data: vec![0.0; shape.iter().product()] }
    }
    pub fn full(shape: &[usize], value: f32) -> Self {
        Tensor { shape: shape.to_vec(), data: vec![value; shape.iter().product()] }
    }
    /// A tensor converted from f64 data (golden files, the oracle).
    pub fn from_f64(shape: &[usize], data: &[f64]) -> Result<Self> {
        Self::new(shape, data.iter().map(|&v| v as f32).collect())
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn to_f64(&self) -> Vec<f64> {
        self.data.iter().map(|&v| v as f64).collect()
    }
    /// The same data under another shape of equal element count.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != self.data.len() {
            return Err(Error::shape("reshape", format!("cannot view {} as {}", fmt_shape(&self.shape), fmt_shape(shape))));
        }
        self.shape = shape.to_vec();
        Ok(self)
    }
    /// The shape as `[N, C, H, W]`, or an error naming `what` and `op`.
    pub fn dims4(&self, op: &'static str, what: &str) -> Result<[usize; 4]> {
        dims4(&self.shape, op, what)
    }
}

/// `shape` as `[N, C, H, W]`, or an error naming the tensor and the op.
pub fn dims4(shape: &[usize], op: &'static str, what: &str) -> Result<[usize; 4]> {
    match shape {
        &[n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::shape(op, format!("{what} must be 4-d [N, C, H, W], got {}", fmt_shape(shape)))),
    }
}
