//! Elementwise kernels (add, scale, lerp_per_sample, fill) and the mean's reduction. Every kernel writes a
//! fresh output: the host never updates a buffer in place, so tensors keep value semantics (a clone is
//! never changed behind its back).

use cubecl::prelude::*;

use super::{grid_start, grid_stride, tree_sum_rows, BLOCK};

/// out = a + b (also `add_assign`, which rebinds its tensor to the fresh sum).
#[cube(launch)]
pub fn add(a: &Array<f32>, b: &Array<f32>, out: &mut Array<f32>) {
    let n = out.len();
    let mut i = grid_start();
    while i < n {
        out[i] = a[i] + b[i];
        i += grid_stride();
    }
}

/// out = s·a.
#[cube(launch)]
pub fn scale(a: &Array<f32>, out: &mut Array<f32>, s: f32) {
    let n = out.len();
    let mut i = grid_start();
    while i < n {
        out[i] = s * a[i];
        i += grid_stride();
    }
}

/// out = α·a + (1 − α)·b with α = alpha[i / per] (one per sample of the batch).
#[cube(launch)]
pub fn lerp_per_sample(a: &Array<f32>, b: &Array<f32>, alpha: &Array<f32>, out: &mut Array<f32>, per: usize) {
    let n = out.len();
    let mut i = grid_start();
    while i < n {
        let al = alpha[i / per];
        let bl = 1.0f32 - al;
        out[i] = al * a[i] + bl * b[i];
        i += grid_stride();
    }
}

/// out[i] = value (`full`, `zeros`, and the poisoned backend's NaN fill).
#[cube(launch)]
pub fn fill(out: &mut Array<f32>, value: f32) {
    let n = out.len();
    let mut i = grid_start();
    while i < n {
        out[i] = value;
        i += grid_stride();
    }
}

/// The mean's reduction: partial[cube] = Σ of this cube's grid-stride share of x (tree over the cube).
/// The host adds the few partials in f64 and divides.
#[cube(launch)]
pub fn mean(x: &Array<f32>, partial: &mut Array<f32>) {
    let mut sh = SharedMemory::<f32>::new(BLOCK);
    let n = x.len();
    let mut acc = 0.0f32;
    let mut i = grid_start();
    while i < n {
        acc += x[i];
        i += grid_stride();
    }
    sh[UNIT_POS as usize] = acc;
    tree_sum_rows(&mut sh, 1usize);
    if UNIT_POS == 0 {
        partial[CUBE_POS] = sh[0];
    }
}
