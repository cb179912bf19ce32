//! What the benches share: the batch size and the DCGAN's convolutions with their FLOP counts.
#![allow(dead_code)]

use cxr_gan::backend::Conv2dParams;

/// The batch: 128 (the paper's), or `CXR_GAN_BENCH_BATCH` for a quicker look.
pub fn batch() -> usize {
    std::env::var("CXR_GAN_BENCH_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
}

/// One convolution of the full DCGAN (nz 100, ngf = ndf = 64, 64×64 images).
pub struct ConvLayer {
    pub name: &'static str,
    pub x: [usize; 4],
    pub w: [usize; 4],
    pub p: Conv2dParams,
    /// ConvTranspose2d (the generator) rather than Conv2d (the discriminator).
    pub transposed: bool,
}

impl ConvLayer {
    /// 2 · multiply-adds: every output (conv) or every input (transposed) meets a whole filter slice.
    pub fn flops(&self, y: &[usize]) -> u64 {
        let (n, pixels) = if self.transposed { (self.x[0], self.x[2] * self.x[3]) } else { (y[0], y[2] * y[3]) };
        2 * (n * pixels * self.w.iter().product::<usize>()) as u64
    }
}

/// Every convolution of G and D at batch `n`, named by state_dict prefix.
pub fn dcgan_convs(n: usize) -> Vec<ConvLayer> {
    let s2 = Conv2dParams::new([2, 2], [1, 1]);
    let s1 = Conv2dParams::new([1, 1], [0, 0]);
    let l = |name, x, w, p, transposed| ConvLayer { name, x, w, p, transposed };
    vec![
        l("G.main.0", [n, 100, 1, 1], [100, 512, 4, 4], s1, true),
        l("G.main.3", [n, 512, 4, 4], [512, 256, 4, 4], s2, true),
        l("G.main.6", [n, 256, 8, 8], [256, 128, 4, 4], s2, true),
        l("G.main.9", [n, 128, 16, 16], [128, 64, 4, 4], s2, true),
        l("G.main.12", [n, 64, 32, 32], [64, 3, 4, 4], s2, true),
        l("D.main.0", [n, 3, 64, 64], [64, 3, 4, 4], s2, false),
        l("D.main.2", [n, 64, 32, 32], [128, 64, 4, 4], s2, false),
        l("D.main.5", [n, 128, 16, 16], [256, 128, 4, 4], s2, false),
        l("D.main.8", [n, 256, 8, 8], [512, 256, 4, 4], s2, false),
        l("D.main.11", [n, 512, 4, 4], [1, 512, 4, 4], s1, false),
    ]
}
