//! Shape inference and validation shared by every backend, so that all of them reject the same bad input
//! with the same error (naming the op and both shapes) before any kernel runs. One check per op family,
//! in the trait's order: convolution, normalization, activations, losses, the optimizer, then FID's
//! InceptionV3 ops (pooling, bilinear resize, channel concat / affine).

use super::{Conv2dParams, NormStats, Pool2dParams};
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
        return Err(Error::shape(
            op,
            format!("kernel {kh}x{kw} of w {} does not fit x {} padded to {hp}x{wp}", fmt_shape(w), fmt_shape(x)),
        ));
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
        return Err(Error::shape(
            op,
            format!("x {} with w {} and padding {:?} gives an empty output", fmt_shape(x), fmt_shape(w), p.padding),
        ));
    }
    Ok([n, cout, full[0] - 2 * p.padding[0], full[1] - 2 * p.padding[1]])
}

/// Checks that conv2d's dy matches the output implied by x_shape and w.
pub fn conv2d_bwd_data(op: &'static str, dy: &[usize], w: &[usize], x_shape: [usize; 4], p: Conv2dParams) -> Result<()> {
    let y = conv2d_out(op, &x_shape, w, p)?;
    if dy != y {
        return Err(Error::shape(
            op,
            format!("dy {} does not match the output {} of x {} and w {}", fmt_shape(dy), fmt_shape(&y), fmt_shape(&x_shape), fmt_shape(w)),
        ));
    }
    Ok(())
}

/// Checks that conv2d's x and dy fit w_shape.
pub fn conv2d_bwd_weight(op: &'static str, x: &[usize], dy: &[usize], w_shape: [usize; 4], p: Conv2dParams) -> Result<()> {
    let y = conv2d_out(op, x, &w_shape, p)?;
    if dy != y {
        return Err(Error::shape(
            op,
            format!("dy {} does not match the output {} of x {} and w {}", fmt_shape(dy), fmt_shape(&y), fmt_shape(x), fmt_shape(&w_shape)),
        ));
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

/// A batch [N, ...] with N > 0: returns (N, elements per sample).
pub fn batch_dims(op: &'static str, shape: &[usize]) -> Result<(usize, usize)> {
    match shape.split_first() {
        Some((&n, rest)) if n > 0 => Ok((n, rest.iter().product())),
        _ => Err(Error::shape(op, format!("expected a batch [N, ...] with N > 0, got {}", fmt_shape(shape)))),
    }
}

/// A tensor whose mean is taken must have elements; `what` says which mean ("the mean of an empty tensor").
pub fn nonempty(op: &'static str, what: &str, shape: &[usize]) -> Result<()> {
    if shape.iter().product::<usize>() == 0 {
        return Err(Error::shape(op, format!("{what} {}", fmt_shape(shape))));
    }
    Ok(())
}

// ------------------------------------------------------------------ elementwise

/// lerp_per_sample's a and b (one shape) and its alphas (one per sample): returns the elements per sample.
pub fn lerp_per_sample(op: &'static str, a: &[usize], b: &[usize], alphas: usize) -> Result<usize> {
    same(op, "a", a, "b", b)?;
    per_sample(op, a, alphas)?;
    Ok(batch_dims(op, a)?.1)
}

// ------------------------------------------------------------------ normalization

/// x [N, C, H, W] with at least one element and its gamma [C]: returns (N, C, H·W).
pub fn planes(op: &'static str, x: &[usize], gamma: &[usize]) -> Result<(usize, usize, usize)> {
    let [n, c, h, w] = norm_param(op, x, "gamma", gamma)?;
    if n * c * h * w == 0 {
        return Err(Error::shape(op, format!("x {} is empty", fmt_shape(x))));
    }
    Ok((n, c, h * w))
}

/// Instance-norm statistics must hold one value per (n, c): shape [N*C].
pub fn instance_stat(op: &'static str, x: &[usize], name: &str, stat: &[usize]) -> Result<()> {
    let nc = x[0] * x[1];
    if stat != [nc] {
        return Err(Error::shape(op, format!("{name} {} must be [{nc}] (N*C) for x {}", fmt_shape(stat), fmt_shape(x))));
    }
    Ok(())
}

/// batch_norm2d_train's inputs: returns (N, C, H·W).
pub fn batch_norm2d_train(
    op: &'static str,
    x: &[usize],
    gamma: &[usize],
    beta: &[usize],
    running_mean: &[usize],
    running_var: &[usize],
) -> Result<(usize, usize, usize)> {
    let (n, c, hw) = batch_norm2d_eval(op, x, gamma, beta, running_mean, running_var)?;
    if n * hw < 2 {
        return Err(Error::shape(op, format!("x {} has one value per channel; training needs more", fmt_shape(x))));
    }
    Ok((n, c, hw))
}

/// batch_norm2d_eval's inputs: returns (N, C, H·W).
pub fn batch_norm2d_eval(
    op: &'static str,
    x: &[usize],
    gamma: &[usize],
    beta: &[usize],
    running_mean: &[usize],
    running_var: &[usize],
) -> Result<(usize, usize, usize)> {
    let dims = planes(op, x, gamma)?;
    norm_param(op, x, "beta", beta)?;
    norm_param(op, x, "running_mean", running_mean)?;
    norm_param(op, x, "running_var", running_var)?;
    Ok(dims)
}

/// batch_norm2d_bwd's inputs (per-channel statistics): returns (N, C, H·W).
pub fn batch_norm2d_bwd(
    op: &'static str,
    dy: &[usize],
    x: &[usize],
    gamma: &[usize],
    stats: &NormStats<&[usize]>,
) -> Result<(usize, usize, usize)> {
    same(op, "dy", dy, "x", x)?;
    let dims = planes(op, x, gamma)?;
    norm_param(op, x, "stats.mean", stats.mean)?;
    norm_param(op, x, "stats.invstd", stats.invstd)?;
    Ok(dims)
}

/// instance_norm2d's inputs: returns (N, C, H·W).
pub fn instance_norm2d(op: &'static str, x: &[usize], gamma: &[usize], beta: &[usize]) -> Result<(usize, usize, usize)> {
    let dims = planes(op, x, gamma)?;
    norm_param(op, x, "beta", beta)?;
    Ok(dims)
}

/// Instance norm's saved statistics ([N*C] each) after the planes of x and gamma: returns (N, C, H·W).
fn instance_planes(op: &'static str, x: &[usize], gamma: &[usize], stats: &NormStats<&[usize]>) -> Result<(usize, usize, usize)> {
    let dims = planes(op, x, gamma)?;
    instance_stat(op, x, "stats.mean", stats.mean)?;
    instance_stat(op, x, "stats.invstd", stats.invstd)?;
    Ok(dims)
}

/// instance_norm2d_bwd's inputs: returns (N, C, H·W).
pub fn instance_norm2d_bwd(
    op: &'static str,
    dy: &[usize],
    x: &[usize],
    gamma: &[usize],
    stats: &NormStats<&[usize]>,
) -> Result<(usize, usize, usize)> {
    same(op, "dy", dy, "x", x)?;
    instance_planes(op, x, gamma, stats)
}

/// instance_norm2d_jvp's inputs: returns (N, C, H·W).
pub fn instance_norm2d_jvp(
    op: &'static str,
    x: &[usize],
    x_dot: &[usize],
    gamma: &[usize],
    stats: &NormStats<&[usize]>,
) -> Result<(usize, usize, usize)> {
    same(op, "x_dot", x_dot, "x", x)?;
    instance_planes(op, x, gamma, stats)
}

/// instance_norm2d_jvp_bwd's inputs: returns (N, C, H·W).
pub fn instance_norm2d_jvp_bwd(
    op: &'static str,
    x: &[usize],
    x_dot: &[usize],
    gamma: &[usize],
    stats: &NormStats<&[usize]>,
    y_bar: &[usize],
    y_dot_bar: &[usize],
) -> Result<(usize, usize, usize)> {
    same(op, "x_dot", x_dot, "x", x)?;
    same(op, "y_bar", y_bar, "x", x)?;
    same(op, "y_dot_bar", y_dot_bar, "x", x)?;
    instance_planes(op, x, gamma, stats)
}

// ------------------------------------------------------------------ activations, losses, optimizer

/// activation_bwd's x, y and dy share one shape.
pub fn activation_bwd(op: &'static str, x: &[usize], y: &[usize], dy: &[usize]) -> Result<()> {
    same(op, "x", x, "y", y)?;
    same(op, "dy", dy, "x", x)
}

/// A mean-reduced loss's two inputs: one shape, not empty.
pub fn loss(op: &'static str, a_name: &str, a: &[usize], b_name: &str, b: &[usize]) -> Result<()> {
    same(op, a_name, a, b_name, b)?;
    nonempty(op, "the mean over an empty tensor", a)
}

/// gradient_penalty_head's g [N, ...] with elements per sample: returns (N, elements per sample).
pub fn gradient_penalty_head(op: &'static str, g: &[usize]) -> Result<(usize, usize)> {
    let (n, per) = batch_dims(op, g)?;
    if per == 0 {
        return Err(Error::shape(op, format!("g {} has no elements per sample", fmt_shape(g))));
    }
    Ok((n, per))
}

/// adam_step's four tensors share one shape, and `step` is 1-based.
pub fn adam_step(op: &'static str, param: &[usize], grad: &[usize], exp_avg: &[usize], exp_avg_sq: &[usize], step: u64) -> Result<()> {
    same(op, "param", param, "grad", grad)?;
    same(op, "param", param, "exp_avg", exp_avg)?;
    same(op, "param", param, "exp_avg_sq", exp_avg_sq)?;
    if step == 0 {
        return Err(Error::invalid(op, "step is 1-based; got 0"));
    }
    Ok(())
}

// ------------------------------------------------------------------ InceptionV3's ops (FID and the classifier)

/// The output shape of avg_pool2d / max_pool2d over x [N, C, H, W] (ceil_mode False). Rejects a zero kernel
/// or stride, padding above half the kernel (PyTorch's rule) and a window larger than the padded input.
pub fn pool2d_out(op: &'static str, x: &[usize], p: Pool2dParams) -> Result<[usize; 4]> {
    let [n, c, h, w] = dims4(x, op, "x")?;
    if p.kernel.contains(&0) || p.stride.contains(&0) {
        return Err(Error::invalid(op, format!("kernel {:?} and stride {:?} must be positive", p.kernel, p.stride)));
    }
    if 2 * p.padding[0] > p.kernel[0] || 2 * p.padding[1] > p.kernel[1] {
        return Err(Error::invalid(op, format!("padding {:?} must be at most half the kernel {:?}", p.padding, p.kernel)));
    }
    let (hp, wp) = (h + 2 * p.padding[0], w + 2 * p.padding[1]);
    if p.kernel[0] > hp || p.kernel[1] > wp {
        return Err(Error::shape(
            op,
            format!("window {}x{} does not fit x {} padded to {hp}x{wp}", p.kernel[0], p.kernel[1], fmt_shape(x)),
        ));
    }
    Ok([n, c, (hp - p.kernel[0]) / p.stride[0] + 1, (wp - p.kernel[1]) / p.stride[1] + 1])
}

/// [N, C] for the global average pool of x [N, C, H, W] with H·W > 0.
pub fn global_pool_out(op: &'static str, x: &[usize]) -> Result<[usize; 2]> {
    let [n, c, h, w] = dims4(x, op, "x")?;
    if h == 0 || w == 0 {
        return Err(Error::shape(op, format!("the mean of an empty plane: x {}", fmt_shape(x))));
    }
    Ok([n, c])
}

/// [N, C, out_h, out_w] for resizing x [N, C, H, W]; both sides must have pixels.
pub fn resize_out(op: &'static str, x: &[usize], out_h: usize, out_w: usize) -> Result<[usize; 4]> {
    let [n, c, h, w] = dims4(x, op, "x")?;
    if h == 0 || w == 0 || out_h == 0 || out_w == 0 {
        return Err(Error::shape(op, format!("cannot resize x {} to {out_h}x{out_w}: an empty image", fmt_shape(x))));
    }
    Ok([n, c, out_h, out_w])
}

/// [N, ΣCᵢ, H, W] for concatenating 4-d tensors along channels; N, H and W must agree.
pub fn concat_channels_out(op: &'static str, xs: &[&[usize]]) -> Result<[usize; 4]> {
    let Some(first) = xs.first() else {
        return Err(Error::invalid(op, "nothing to concatenate"));
    };
    let [n, _, h, w] = dims4(first, op, "xs[0]")?;
    let mut c_total = 0;
    for (i, x) in xs.iter().enumerate() {
        let [ni, ci, hi, wi] = dims4(x, op, "every input")?;
        if (ni, hi, wi) != (n, h, w) {
            return Err(Error::shape(
                op,
                format!("xs[{i}] {} does not match xs[0] {} outside the channel axis", fmt_shape(x), fmt_shape(first)),
            ));
        }
        c_total += ci;
    }
    Ok([n, c_total, h, w])
}

/// Checks affine_channels' scale and shift ([C] each) against x [N, C, H, W].
pub fn affine_channels(op: &'static str, x: &[usize], scale: &[usize], shift: &[usize]) -> Result<[usize; 4]> {
    norm_param(op, x, "scale", scale)?;
    norm_param(op, x, "shift", shift)
}

/// x [N, in], w [out, in], bias [out] of a linear layer: (N, [out, in]).
pub fn linear(op: &'static str, x: &[usize], w: &[usize], bias: &[usize]) -> Result<(usize, [usize; 2])> {
    let (n, [o, i]) = linear_xw(op, x, w)?;
    if bias != [o] {
        return Err(Error::shape(op, format!("bias has shape {bias:?}; weight {w:?} needs [{o}]")));
    }
    Ok((n, [o, i]))
}

/// dy [N, out], x [N, in], w [out, in] of a linear layer's backward: (N, [out, in]).
pub fn linear_bwd(op: &'static str, dy: &[usize], x: &[usize], w: &[usize]) -> Result<(usize, [usize; 2])> {
    let (n, [o, i]) = linear_xw(op, x, w)?;
    if dy != [n, o] {
        return Err(Error::shape(op, format!("dy has shape {dy:?}; x {x:?} and weight {w:?} give [{n}, {o}]")));
    }
    Ok((n, [o, i]))
}

fn linear_xw(op: &'static str, x: &[usize], w: &[usize]) -> Result<(usize, [usize; 2])> {
    match (x, w) {
        (&[n, i], &[o, wi]) if i == wi && n > 0 && i > 0 && o > 0 => Ok((n, [o, i])),
        _ => Err(Error::shape(op, format!("x {x:?} and weight {w:?} must be [N, in] and [out, in], nonempty"))),
    }
}

/// Checks dy against the pool of `x_shape` (max_pool2d_bwd, avg_pool2d_bwd).
pub fn pool2d_bwd(op: &'static str, dy: &[usize], x_shape: &[usize], p: Pool2dParams) -> Result<[usize; 4]> {
    let y = pool2d_out(op, x_shape, p)?;
    same(op, "dy", dy, "the pool's output", &y)?;
    Ok(y)
}

/// Checks dy [N, C] against the global pool of `x_shape`.
pub fn global_pool_bwd(op: &'static str, dy: &[usize], x_shape: &[usize]) -> Result<()> {
    let y = global_pool_out(op, x_shape)?;
    same(op, "dy", dy, "the pool's output", &y)
}

/// Checks that `channels` (each > 0) add up to dy's channels: dy [N, C, H, W].
pub fn concat_channels_bwd(op: &'static str, dy: &[usize], channels: &[usize]) -> Result<[usize; 4]> {
    let d = dims4(dy, op, "dy")?;
    if channels.is_empty() || channels.contains(&0) || channels.iter().sum::<usize>() != d[1] {
        return Err(Error::shape(op, format!("channels {channels:?} must be positive and add up to dy {}'s {}", fmt_shape(dy), d[1])));
    }
    Ok(d)
}

/// logits [N, K] (both > 0) and N targets each below K: (N, K).
pub fn cross_entropy(op: &'static str, logits: &[usize], target: &[usize]) -> Result<(usize, usize)> {
    let &[n, k] = logits else {
        return Err(Error::shape(op, format!("logits {} must be [N, K]", fmt_shape(logits))));
    };
    if n == 0 || k == 0 {
        return Err(Error::shape(op, format!("logits {} is empty", fmt_shape(logits))));
    }
    if target.len() != n {
        return Err(Error::shape(op, format!("{} targets for logits {}", target.len(), fmt_shape(logits))));
    }
    if let Some((i, t)) = target.iter().enumerate().find(|(_, &t)| t >= k) {
        return Err(Error::invalid(op, format!("target[{i}] = {t} is not a class of {k}")));
    }
    Ok((n, k))
}

/// dropout's mask must have x's shape and p lie in [0, 1).
pub fn dropout(op: &'static str, x: &[usize], mask: &[usize], p: f32) -> Result<()> {
    same(op, "x", x, "mask", mask)?;
    if !(0.0..1.0).contains(&p) {
        return Err(Error::invalid(op, format!("p = {p} must lie in [0, 1)")));
    }
    Ok(())
}
