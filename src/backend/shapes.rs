//! Shape inference and validation shared by every backend, so that all of them reject the same bad input
//! with the same error (naming the op and both shapes) before any kernel runs.

use super::Conv2dParams;
use crate::error::{Error, Result};
use crate::tensor::{dims4, fmt_shape};

fn check_stride(op: &'static str, p: Conv2dParams) -> Result<()> {
    if p.stride.contains(&0) {
        return Err(Error::invalid(op, format!("stride {:?} has a zero", p.stride)));
    }
    Ok(())
}

/// conv2d's output shape for x [N, C, H, W] and w [O, C, kh, kw].
pub fn conv2d_out(op: &'static str, x: &[usize], w: &[usize], p: Conv2dParams) -> Result<[usize; 4]> {
    check_stride(op, p)?;
    let [n, c, h, wd] = dims4(x, op, "x")?;
    let [o, cw, kh, kw] = dims4(w, op, "w")?;
    if c != cw {
        return Err(Error::shape(op, format!("x {} has {c} channels but w {} expects {cw}", fmt_shape(x), fmt_shape(w))));
    }
    let (hp, wp) = (h + 2 * p.padding[0], wd + 2 * p.padding[1]);
    if kh > hp || kw > wp || kh == 0 || kw == 0 {
        return Err(Error::shape(op, format!(
            "kernel {kh}x{kw} of w {} does not fit x {} padded to {hp}x{wp}", fmt_shape(w), fmt_shape(x))));
    }
    Ok([n, o, (hp - kh) / p.stride[0] + 1, (wp - kw) / p.stride[1] + 1])
}

/// conv_transpose2d's output shape for x [N, Cin, H, W] and w [Cin, Cout, kh, kw] (output_padding 0).
pub fn conv_transpose2d_out(op: &'static str, x: &[usize], w: &[usize], p: Conv2dParams) -> Result<[usize; 4]> {
    check_stride(op, p)?;
    let [n, c, h, wd] = dims4(x, op, "x")?;
    let [cin, cout, kh, kw] = dims4(w, op, "w")?;
    if c != cin {
        return Err(Error::shape(op, format!("x {} has {c} channels but w {} expects {cin}", fmt_shape(x), fmt_shape(w))));
    }
    let full = [(h.max(1) - 1) * p.stride[0] + kh, (wd.max(1) - 1) * p.stride[1] + kw];
    if h == 0 || wd == 0 || full[0] <= 2 * p.padding[0] || full[1] <= 2 * p.padding[1] {
        return Err(Error::shape(op, format!("x {} with w {} and padding {:?} gives an empty output", fmt_shape(x), fmt_shape(w), p.padding)));
    }
    Ok([n, cout, full[0] - 2 * p.padding[0], full[1] - 2 * p.padding[1]])
}

/// Checks that conv2d's dy matches the output implied by x_shape and w; returns x_shape.
pub fn conv2d_bwd_data(op: &'static str, dy: &[usize], w: &[usize], x_shape: [usize; 4], p: Conv2dParams) -> Result<()> {
    let y = conv2d_out(op, &x_shape, w, p)?;
    if dy != y {
        return Err(Error::shape(op, format!("dy {} does not match the output {} of x {} and w {}",
            fmt_shape(dy), fmt_shape(&y), fmt_shape(&x_shape), fmt_shape(w))));
    }
    Ok(())
}

/// Checks that conv2d's x and dy fit w_shape.
pub fn conv2d_bwd_weight(op: &'static str, x: &[usize], dy: &[usize], w_shape: [usize; 4], p: Conv2dParams) -> Result<()> {
    let y = conv2d_out(op, x, &w_shape, p)?;
    if dy != y {
        return Err(Error::shape(op, format!("dy {} does not match the output {} of x {} and w {}",
            fmt_shape(dy), fmt_shape(&y), fmt_shape(x), fmt_shape(&w_shape))));
    }
    Ok(())
}

/// Two tensors that must have one shape (elementwise ops, dy vs x).
pub fn same(op: &'static str, a_name: &str, a: &[usize], b_name: &str, b: &[usize]) -> Result<()> {
    if a != b {
        return Err(Error::shape(op, format!("{a_name} {} and {b_name} {} differ", fmt_shape(a), fmt_shape(b))));
    }
    Ok(())
}

/// A per-channel parameter (gamma, beta, running statistics) of a norm over x [N, C, H, W]: returns dims.
pub fn norm_param(op: &'static str, x: &[usize], name: &str, param: &[usize]) -> Result<[usize; 4]> {
    let d = dims4(x, op, "x")?;
    if param.iter().product::<usize>() != d[1] || param.len() != 1 {
        return Err(Error::shape(op, format!("{name} {} must be [{}] for x {}", fmt_shape(param), d[1], fmt_shape(x))));
    }
    Ok(d)
}

/// One alpha per sample of a batch whose shape is `x`.
pub fn per_sample(op: &'static str, x: &[usize], n: usize) -> Result<()> {
    if x.is_empty() || x[0] != n {
        return Err(Error::shape(op, format!("{n} per-sample values for a batch of shape {}", fmt_shape(x))));
    }
    Ok(())
}
