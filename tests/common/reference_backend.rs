//! The f64 oracle (`cxr-gan-reference`) behind the `Backend` trait, so the same model code and the same
//! golden dispatch run on it. Every op is one call into the oracle; data stays f64 end to end.

use cxr_gan::backend::{
    shapes, Activation, AdamConfig, Backend, Conv2dParams, InstanceNormJvpGrads, LinearGrads, NormGrads, NormStats, PenaltyHead,
    Pool2dParams,
};
use cxr_gan::{Result, Tensor};
use cxr_gan_reference as oracle;
use oracle::Array;

pub struct ReferenceBackend;

fn act(a: Activation) -> oracle::Activation {
    match a {
        Activation::Relu => oracle::Activation::Relu,
        Activation::LeakyRelu { slope } => oracle::Activation::LeakyRelu { slope: slope as f64 },
        Activation::Tanh => oracle::Activation::Tanh,
        Activation::Sigmoid => oracle::Activation::Sigmoid,
    }
}

fn vec1(v: Vec<f64>) -> Array {
    Array::new(&[v.len()], v)
}

fn stats(s: &NormStats<Array>) -> oracle::NormStats {
    oracle::NormStats { mean: s.mean.data.clone(), invstd: s.invstd.data.clone() }
}

fn from_stats(s: oracle::NormStats) -> NormStats<Array> {
    NormStats { mean: vec1(s.mean), invstd: vec1(s.invstd) }
}

fn grads((dx, dgamma, dbeta): (Array, Vec<f64>, Vec<f64>)) -> NormGrads<Array> {
    NormGrads { dx, dgamma: vec1(dgamma), dbeta: vec1(dbeta) }
}

impl Backend for ReferenceBackend {
    type Tensor = Array;
    type Graph = cxr_gan::backend::NoGraph;

    fn name(&self) -> String {
        "oracle".into()
    }
    fn upload(&self, t: &Tensor) -> Result<Array> {
        Ok(Array::new(t.shape(), t.to_f64()))
    }
    fn download(&self, t: &Array) -> Result<Tensor> {
        Tensor::from_f64(&t.shape, &t.data)
    }
    fn upload_f64(&self, shape: &[usize], data: &[f64]) -> Result<Array> {
        Ok(Array::new(shape, data.to_vec()))
    }
    fn download_f64(&self, t: &Array) -> Result<Vec<f64>> {
        Ok(t.data.clone())
    }
    fn shape(&self, t: &Array) -> Vec<usize> {
        t.shape.clone()
    }
    fn full(&self, shape: &[usize], value: f32) -> Result<Array> {
        Ok(Array::new(shape, vec![value as f64; shape.iter().product()]))
    }
    fn reshape(&self, t: &Array, shape: &[usize]) -> Result<Array> {
        shapes::same("reshape", "count", &[t.len()], "target", &[shape.iter().product()])?;
        Ok(Array::new(shape, t.data.clone()))
    }
    fn add(&self, a: &Array, b: &Array) -> Result<Array> {
        shapes::same("add", "a", &a.shape, "b", &b.shape)?;
        Ok(Array::new(&a.shape, a.data.iter().zip(&b.data).map(|(x, y)| x + y).collect()))
    }
    fn add_assign(&self, a: &mut Array, b: &Array) -> Result<()> {
        *a = self.add(a, b)?;
        Ok(())
    }
    fn scale(&self, a: &Array, s: f32) -> Result<Array> {
        Ok(Array::new(&a.shape, a.data.iter().map(|x| x * s as f64).collect()))
    }
    fn lerp_per_sample(&self, a: &Array, b: &Array, alpha: &[f32]) -> Result<Array> {
        shapes::same("lerp_per_sample", "a", &a.shape, "b", &b.shape)?;
        shapes::per_sample("lerp_per_sample", &a.shape, alpha.len())?;
        let per = a.len() / alpha.len();
        let data = (0..a.len()).map(|i| {
            let al = alpha[i / per] as f64;
            al * a.data[i] + (1.0 - al) * b.data[i]
        });
        Ok(Array::new(&a.shape, data.collect()))
    }
    fn mean(&self, t: &Array) -> Result<f64> {
        Ok(t.data.iter().sum::<f64>() / t.len() as f64)
    }
    fn conv2d(&self, x: &Array, w: &Array, p: Conv2dParams) -> Result<Array> {
        shapes::conv2d_out("conv2d", &x.shape, &w.shape, p)?;
        Ok(oracle::conv2d(x, w, p.stride, p.padding))
    }
    fn conv2d_bwd_data(&self, dy: &Array, w: &Array, x_shape: [usize; 4], p: Conv2dParams) -> Result<Array> {
        shapes::conv2d_bwd_data("conv2d_bwd_data", &dy.shape, &w.shape, x_shape, p)?;
        Ok(oracle::conv2d_bwd_data(dy, w, x_shape, p.stride, p.padding))
    }
    fn conv2d_bwd_weight(&self, x: &Array, dy: &Array, w_shape: [usize; 4], p: Conv2dParams) -> Result<Array> {
        shapes::conv2d_bwd_weight("conv2d_bwd_weight", &x.shape, &dy.shape, w_shape, p)?;
        Ok(oracle::conv2d_bwd_weight(x, dy, w_shape, p.stride, p.padding))
    }
    // The oracle's own transposed convolution (a scatter loop), not the trait's route through conv2d.
    fn conv_transpose2d(&self, x: &Array, w: &Array, p: Conv2dParams) -> Result<Array> {
        shapes::conv_transpose2d_out("conv_transpose2d", &x.shape, &w.shape, p)?;
        Ok(oracle::conv_transpose2d(x, w, p.stride, p.padding))
    }
    fn conv_transpose2d_bwd_data(&self, dy: &Array, w: &Array, p: Conv2dParams) -> Result<Array> {
        Ok(oracle::conv_transpose2d_bwd_data(dy, w, p.stride, p.padding))
    }
    fn conv_transpose2d_bwd_weight(&self, x: &Array, dy: &Array, w_shape: [usize; 4], p: Conv2dParams) -> Result<Array> {
        Ok(oracle::conv_transpose2d_bwd_weight(x, dy, w_shape, p.stride, p.padding))
    }
    fn batch_norm2d_train(
        &self,
        x: &Array,
        gamma: &Array,
        beta: &Array,
        running_mean: &mut Array,
        running_var: &mut Array,
        eps: f32,
        momentum: f32,
    ) -> Result<(Array, NormStats<Array>)> {
        shapes::norm_param("batch_norm2d_train", &x.shape, "gamma", &gamma.shape)?;
        let (y, s) = oracle::batch_norm2d_train(
            x,
            &gamma.data,
            &beta.data,
            &mut running_mean.data,
            &mut running_var.data,
            eps as f64,
            momentum as f64,
        );
        Ok((y, from_stats(s)))
    }
    fn batch_norm2d_eval(&self, x: &Array, gamma: &Array, beta: &Array, rm: &Array, rv: &Array, eps: f32) -> Result<Array> {
        shapes::norm_param("batch_norm2d_eval", &x.shape, "gamma", &gamma.shape)?;
        Ok(oracle::batch_norm2d_eval(x, &gamma.data, &beta.data, &rm.data, &rv.data, eps as f64))
    }
    fn batch_norm2d_bwd(&self, dy: &Array, x: &Array, gamma: &Array, s: &NormStats<Array>) -> Result<NormGrads<Array>> {
        Ok(grads(oracle::batch_norm2d_bwd(dy, x, &gamma.data, &stats(s))))
    }
    fn instance_norm2d(&self, x: &Array, gamma: &Array, beta: &Array, eps: f32) -> Result<(Array, NormStats<Array>)> {
        shapes::norm_param("instance_norm2d", &x.shape, "gamma", &gamma.shape)?;
        let (y, s) = oracle::instance_norm2d(x, &gamma.data, &beta.data, eps as f64);
        Ok((y, from_stats(s)))
    }
    fn instance_norm2d_bwd(&self, dy: &Array, x: &Array, gamma: &Array, s: &NormStats<Array>) -> Result<NormGrads<Array>> {
        Ok(grads(oracle::instance_norm2d_bwd(dy, x, &gamma.data, &stats(s))))
    }
    fn instance_norm2d_jvp(&self, x: &Array, x_dot: &Array, gamma: &Array, s: &NormStats<Array>) -> Result<Array> {
        Ok(oracle::instance_norm2d_jvp(x, x_dot, &gamma.data, &stats(s)))
    }
    fn instance_norm2d_jvp_bwd(
        &self,
        x: &Array,
        x_dot: &Array,
        gamma: &Array,
        s: &NormStats<Array>,
        y_bar: &Array,
        y_dot_bar: &Array,
    ) -> Result<InstanceNormJvpGrads<Array>> {
        let r = oracle::instance_norm2d_jvp_bwd(x, x_dot, &gamma.data, &stats(s), y_bar, y_dot_bar);
        Ok(InstanceNormJvpGrads { x_bar: r.x_bar, x_dot_bar: r.x_dot_bar, dgamma: vec1(r.dgamma), dbeta: vec1(r.dbeta) })
    }
    fn activation(&self, a: Activation, x: &Array) -> Result<Array> {
        Ok(oracle::activation(act(a), x))
    }
    fn activation_bwd(&self, a: Activation, x: &Array, y: &Array, dy: &Array) -> Result<Array> {
        Ok(oracle::activation_bwd(act(a), x, y, dy))
    }
    fn bce(&self, p: &Array, target: &Array) -> Result<(f64, Array)> {
        Ok(oracle::bce(p, target))
    }
    fn bce_logits(&self, logits: &Array, target: &Array) -> Result<(f64, Array)> {
        Ok(oracle::bce_logits(logits, target))
    }
    fn gradient_penalty_head(&self, g: &Array, lambda: f32) -> Result<PenaltyHead<Array>> {
        let (gp, grad_norm, v) = oracle::gradient_penalty_head(g, lambda as f64);
        Ok(PenaltyHead { gp, grad_norm, v })
    }
    fn adam_step(&self, p: &mut Array, g: &Array, m: &mut Array, v: &mut Array, cfg: &AdamConfig, step: u64) -> Result<()> {
        let cfg = oracle::AdamConfig { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps };
        oracle::adam_step(&mut p.data, &g.data, &mut m.data, &mut v.data, &cfg, step);
        Ok(())
    }
    // FID's InceptionV3 ops (forward only), shape-checked like every backend.
    fn avg_pool2d(&self, x: &Array, p: Pool2dParams, count_include_pad: bool) -> Result<Array> {
        shapes::pool2d_out("avg_pool2d", &x.shape, p)?;
        Ok(oracle::avg_pool2d(x, p.kernel, p.stride, p.padding, count_include_pad))
    }
    fn max_pool2d(&self, x: &Array, p: Pool2dParams) -> Result<Array> {
        shapes::pool2d_out("max_pool2d", &x.shape, p)?;
        Ok(oracle::max_pool2d(x, p.kernel, p.stride, p.padding))
    }
    fn global_avg_pool2d(&self, x: &Array) -> Result<Array> {
        shapes::global_pool_out("global_avg_pool2d", &x.shape)?;
        Ok(oracle::global_avg_pool2d(x))
    }
    fn resize_bilinear(&self, x: &Array, out_h: usize, out_w: usize) -> Result<Array> {
        shapes::resize_out("resize_bilinear", &x.shape, out_h, out_w)?;
        Ok(oracle::resize_bilinear(x, out_h, out_w))
    }
    fn concat_channels(&self, xs: &[&Array]) -> Result<Array> {
        let shapes: Vec<&[usize]> = xs.iter().map(|x| x.shape.as_slice()).collect();
        shapes::concat_channels_out("concat_channels", &shapes)?;
        Ok(oracle::concat_channels(xs))
    }
    fn affine_channels(&self, x: &mut Array, scale: &Array, shift: &Array, relu: bool) -> Result<()> {
        shapes::affine_channels("affine_channels", &x.shape, &scale.shape, &shift.shape)?;
        *x = oracle::affine_channels(x, &scale.data, &shift.data, relu);
        Ok(())
    }
    // The classifier's backward passes and head.
    fn max_pool2d_bwd(&self, dy: &Array, x: &Array, p: Pool2dParams) -> Result<Array> {
        shapes::pool2d_bwd("max_pool2d_bwd", &dy.shape, &x.shape, p)?;
        Ok(oracle::pool::max_pool2d_bwd(dy, x, p.kernel, p.stride, p.padding))
    }
    fn avg_pool2d_bwd(&self, dy: &Array, x_shape: [usize; 4], p: Pool2dParams, count_include_pad: bool) -> Result<Array> {
        shapes::pool2d_bwd("avg_pool2d_bwd", &dy.shape, &x_shape, p)?;
        Ok(oracle::pool::avg_pool2d_bwd(dy, x_shape, p.kernel, p.stride, p.padding, count_include_pad))
    }
    fn global_avg_pool2d_bwd(&self, dy: &Array, x_shape: [usize; 4]) -> Result<Array> {
        shapes::global_pool_bwd("global_avg_pool2d_bwd", &dy.shape, &x_shape)?;
        Ok(oracle::pool::global_avg_pool2d_bwd(dy, x_shape))
    }
    fn concat_channels_bwd(&self, dy: &Array, channels: &[usize]) -> Result<Vec<Array>> {
        shapes::concat_channels_bwd("concat_channels_bwd", &dy.shape, channels)?;
        Ok(oracle::pool::concat_channels_bwd(dy, channels))
    }
    fn cross_entropy(&self, logits: &Array, target: &[usize]) -> Result<(f64, Array)> {
        shapes::cross_entropy("cross_entropy", &logits.shape, target)?;
        Ok(oracle::loss::cross_entropy(logits, target))
    }
    fn dropout(&self, x: &Array, mask: &Array, p: f32) -> Result<Array> {
        shapes::dropout("dropout", &x.shape, &mask.shape, p)?;
        Ok(oracle::act::dropout(x, mask, p as f64))
    }
    fn linear(&self, x: &Array, w: &Array, bias: &Array) -> Result<Array> {
        shapes::linear("linear", &x.shape, &w.shape, &bias.shape)?;
        Ok(oracle::linear::linear(x, w, &bias.data))
    }
    fn linear_bwd(&self, dy: &Array, x: &Array, w: &Array) -> Result<LinearGrads<Array>> {
        shapes::linear_bwd("linear_bwd", &dy.shape, &x.shape, &w.shape)?;
        let (dx, dw, db) = oracle::linear::linear_bwd(dy, x, w);
        Ok(LinearGrads { dx, dw, db: vec1(db) })
    }
}
