//! Synthetic chest radiographs (PA view), so the whole program — training, sampling, FID — runs and can
//! be tested without downloading a real data set. Not a physical simulation: a few smooth shapes with the
//! gray levels and layout of a real CXR (dark lungs, bright mediastinum/heart/spine, faint ribs, clavicles,
//! a bright body on a dark background), varied per seed in pose, anatomy and contrast. Two classes
//! ([`PhantomClass`]) for the classifier experiment: clear lungs (the default), and lungs with COVID-like
//! patchy opacities.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

use super::GrayImage;
use crate::error::{Error, Result};
use crate::fsio::write_atomic;

/// Smooth 0→1 ramp between `e0` and `e1` (GLSL's smoothstep).
fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// 1 inside, 0 outside, blended over `edge` around the boundary `d = 0` of a signed distance `d`.
fn inside(d: f64, edge: f64) -> f64 {
    1.0 - smoothstep(-edge, edge, d)
}

/// Approximate signed distance to a superellipse `|x/a|^p + |y/b|^p = 1` (negative inside).
fn superellipse(x: f64, y: f64, a: f64, b: f64, p: f64) -> f64 {
    let r = ((x / a).abs().powf(p) + (y / b).abs().powf(p)).powf(1.0 / p);
    (r - 1.0) * a.min(b)
}

/// Polynomial smooth minimum of two signed distances: unions shapes without a crease (radius `k`).
fn smin(a: f64, b: f64, k: f64) -> f64 {
    let h = (0.5 + 0.5 * (b - a) / k).clamp(0.0, 1.0);
    b + (a - b) * h - k * h * (1.0 - h)
}

/// Distance from `(x, y)` to the segment `(x0, y0)–(x1, y1)`, and the position along it in [0, 1].
fn segment(x: f64, y: f64, x0: f64, y0: f64, x1: f64, y1: f64) -> (f64, f64) {
    let (dx, dy) = (x1 - x0, y1 - y0);
    let t = (((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
    (((x - x0 - t * dx).powi(2) + (y - y0 - t * dy).powi(2)).sqrt(), t)
}

/// Smooth random field over [−1, 1]²: values on a `cells × cells` lattice, interpolated with smoothstep
/// weights. Several of them at different scales make the low-frequency "tissue" variation.
struct ValueNoise {
    cells: usize,
    grid: Vec<f64>,
}

impl ValueNoise {
    fn new(rng: &mut ChaCha8Rng, cells: usize) -> Self {
        let n = cells + 2;
        ValueNoise { cells, grid: (0..n * n).map(|_| rng.gen_range(-1.0..1.0)).collect() }
    }
    fn at(&self, x: f64, y: f64) -> f64 {
        let n = self.cells + 2;
        let gx = ((x + 1.0) * 0.5 * self.cells as f64).clamp(0.0, self.cells as f64 + 0.999);
        let gy = ((y + 1.0) * 0.5 * self.cells as f64).clamp(0.0, self.cells as f64 + 0.999);
        let (ix, iy) = (gx.floor() as usize, gy.floor() as usize);
        let (fx, fy) = (smoothstep(0.0, 1.0, gx - ix as f64), smoothstep(0.0, 1.0, gy - iy as f64));
        let g = |i: usize, j: usize| self.grid[j * n + i];
        let top = g(ix, iy) * (1.0 - fx) + g(ix + 1, iy) * fx;
        let bottom = g(ix, iy + 1) * (1.0 - fx) + g(ix + 1, iy + 1) * fx;
        top * (1.0 - fy) + bottom * fy
    }
}

/// Everything a seed decides about one phantom.
struct Params {
    // Pose: image coordinates → anatomical ones.
    angle: f64,
    shift: (f64, f64),
    scale: f64,
    aspect: f64,
    // Anatomy.
    midline: f64,
    lung_w: f64,
    lung_h: f64,
    lung_y: f64,
    diaphragm_r: f64,
    diaphragm_l: f64,
    heart: f64,
    heart_x: f64,
    rib_start: f64,
    rib_step: f64,
    rib_curve: f64,
    spine_phase: f64,
    body_w: f64,
    // Gray levels and tone curve.
    background: f64,
    tissue: f64,
    lung: f64,
    dense: f64,
    rib: f64,
    gamma: f64,
    lo: f64,
    hi: f64,
    tilt: (f64, f64),
}

impl Params {
    fn draw(rng: &mut ChaCha8Rng) -> Self {
        let mut u = |a: f64, b: f64| rng.gen_range(a..b);
        Params {
            angle: u(-4.0, 4.0).to_radians(),
            shift: (u(-0.05, 0.05), u(-0.05, 0.05)),
            scale: u(0.92, 1.06),
            aspect: u(0.95, 1.05),
            midline: u(-0.03, 0.03),
            lung_w: u(0.9, 1.1),
            lung_h: u(0.9, 1.08),
            lung_y: u(-0.04, 0.04),
            diaphragm_r: u(-0.04, 0.02),
            diaphragm_l: u(0.0, 0.05),
            heart: u(0.88, 1.15),
            heart_x: u(0.08, 0.14),
            rib_start: u(-0.84, -0.76),
            rib_step: u(0.13, 0.155),
            rib_curve: u(0.55, 0.75),
            spine_phase: u(0.0, 1.0),
            body_w: u(0.98, 1.08),
            background: u(0.02, 0.08),
            tissue: u(0.48, 0.56),
            lung: u(0.12, 0.22),
            dense: u(0.68, 0.76),
            rib: u(0.06, 0.1),
            gamma: u(0.8, 1.25),
            lo: u(0.0, 0.05),
            hi: u(0.88, 1.0),
            tilt: (u(-0.04, 0.04), u(-0.04, 0.04)),
        }
    }
}

/// What a phantom's lung fields show: the two classes of the classifier experiment's demo data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PhantomClass {
    /// Clear lungs (the original generator: [`phantom`] and [`write_demo_set`] draw this class).
    #[default]
    Clear,
    /// COVID-19-like: a few patchy, ill-defined ground-glass opacities in both lungs, mostly in the lower
    /// and peripheral fields, through which the vessels stay visible.
    Opacities,
}

/// The seed's anatomy stream; [`Opacities`] draws from stream 1 of the same seed.
const ANATOMY_SEED: u64 = 0x5eed_c0de_cafe_f00d;

/// One soft elliptical patch in anatomical coordinates.
struct Patch {
    centre: (f64, f64),
    radii: (f64, f64),
    rotation: (f64, f64), // (sin, cos)
    strength: f64,
}

/// The opacities of one [`PhantomClass::Opacities`] phantom: soft patches whose density is broken up by
/// a smooth texture, so each reads as mottled haze rather than a disc.
struct Opacities {
    patches: Vec<Patch>,
    mottle: ValueNoise,
    grain: ValueNoise,
}

impl Opacities {
    /// Draws from its own stream, so that the anatomy, pose and grain stay those of the
    /// [`PhantomClass::Clear`] phantom of the same seed. Patch centres are placed in each lung's own
    /// frame (as [`render`] shapes it), biased downwards and outwards.
    fn draw(seed: u64, p: &Params) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ ANATOMY_SEED);
        rng.set_stream(1);
        let severity = rng.gen_range(0.7..1.3);
        let count = rng.gen_range(5..=9);
        let patches = (0..count)
            .map(|k| {
                // Both lungs get one, then either.
                let side = match k {
                    0 => -1.0,
                    1 => 1.0,
                    _ if rng.gen_bool(0.5) => -1.0,
                    _ => 1.0,
                };
                let cx = side * 0.43 * p.lung_w + if side > 0.0 { 0.01 } else { 0.0 };
                let cy = -0.07 + p.lung_y;
                let a = 0.31 * p.lung_w;
                let b = 0.6 * p.lung_h + if side > 0.0 { p.diaphragm_l } else { p.diaphragm_r };
                // t: −1 apex … 1 base; s: −1 medial … 1 lateral. Powers below 1 favour the base and the
                // periphery.
                let t = -0.6 + 1.35 * rng.gen_range(0.0f64..1.0).powf(0.6);
                let s = -0.5 + 1.3 * rng.gen_range(0.0f64..1.0).powf(0.6);
                let taper = 1.0 - 0.45 * smoothstep(0.0, 1.0, -t).powi(2);
                let u = cx + side * (s * a * taper + 0.12 * t.max(0.0).powi(2));
                let v = cy + 0.85 * t * b;
                let r = rng.gen_range(0.08..0.17);
                let angle: f64 = rng.gen_range(0.0..std::f64::consts::PI);
                Patch {
                    centre: (u, v),
                    radii: (r, r * rng.gen_range(0.55..1.0)),
                    rotation: angle.sin_cos(),
                    strength: severity * rng.gen_range(0.16..0.34),
                }
            })
            .collect();
        Opacities { patches, mottle: ValueNoise::new(&mut rng, 9), grain: ValueNoise::new(&mut rng, 24) }
    }

    /// The added density at anatomical `(m, v)` (midline-relative): Gaussian patches, mottled, summed and
    /// softly saturated so that overlaps thicken without burning out (ground glass, not consolidation).
    fn at(&self, m: f64, v: f64) -> f64 {
        let mut sum = 0.0;
        for q in &self.patches {
            let (du, dv) = (m - q.centre.0, v - q.centre.1);
            let (sin, cos) = q.rotation;
            let (a, b) = ((cos * du + sin * dv) / q.radii.0, (-sin * du + cos * dv) / q.radii.1);
            let d2 = a * a + b * b;
            if d2 < 9.0 {
                sum += q.strength * (-d2).exp();
            }
        }
        if sum == 0.0 {
            return 0.0;
        }
        let texture = (0.75 + 0.45 * self.mottle.at(m, v) + 0.25 * self.grain.at(m, v)).max(0.0);
        0.38 * (1.0 - (-sum * texture / 0.38).exp())
    }
}

/// A `size × size` synthetic chest radiograph, deterministic per `seed`: same seed and size, same pixels
/// (ChaCha8 and f64 arithmetic only; a platform whose libm rounds `exp`/`powf` differently could shift
/// a rare pixel by one level). Different sizes draw the same anatomy but different grain. The
/// [`PhantomClass::Clear`] class.
///
/// Panics when `size` is 0.
pub fn phantom(seed: u64, size: usize) -> GrayImage {
    assert!(size > 0, "phantom: size must be positive");
    render(seed, size, PhantomClass::Clear)
}

/// A phantom of the given class, deterministic per `(class, seed, size)`. The [`PhantomClass::Opacities`]
/// phantom of a seed is the [`PhantomClass::Clear`] one of that seed (same patient, pose and grain) with
/// opacities added: draw the two classes from different seeds for unpaired patients.
pub fn phantom_of(class: PhantomClass, seed: u64, size: usize) -> Result<GrayImage> {
    if size == 0 {
        return Err(Error::invalid("phantom_of", "size must be positive"));
    }
    Ok(render(seed, size, class))
}

fn render(seed: u64, size: usize, class: PhantomClass) -> GrayImage {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ ANATOMY_SEED);
    let p = Params::draw(&mut rng);
    let broad = ValueNoise::new(&mut rng, 4);
    let medium = ValueNoise::new(&mut rng, 10);
    let fine = ValueNoise::new(&mut rng, 28);
    let grain = Normal::new(0.0, 0.01).expect("valid normal");
    let opacities = (class == PhantomClass::Opacities).then(|| Opacities::draw(seed, &p));
    // Edges at least ~1.5 pixels wide so small images are antialiased, wider on purpose for soft tissue.
    let px = 2.0 / size as f64;
    let e = |w: f64| w.max(1.5 * px);
    let (sin, cos) = p.angle.sin_cos();

    let mut pixels = Vec::with_capacity(size * size);
    for yi in 0..size {
        for xi in 0..size {
            let (ix, iy) = ((xi as f64 + 0.5) * px - 1.0, (yi as f64 + 0.5) * px - 1.0);
            // Inverse pose: shift, rotate, scale into anatomical coordinates (u right, v down; the
            // patient's left is on the image's right, as on a PA film).
            let (tx, ty) = (ix - p.shift.0, iy - p.shift.1);
            let u = (cos * tx + sin * ty) / (p.scale * p.aspect);
            let v = (-sin * tx + cos * ty) / p.scale;
            let m = u - p.midline; // signed distance from the midline

            // Body: a boxy torso filling most of the film, shoulders reaching the top corners; thinner
            // (darker) towards its edges, denser below the diaphragm.
            let body_d = superellipse(m, v - 0.36, p.body_w, 1.32, 3.4);
            let body = inside(body_d, e(0.02));
            let depth = smoothstep(0.0, 0.3, -body_d);
            let mut val = p.background + (p.tissue * (0.7 + 0.3 * depth) - p.background) * body;

            // Lungs: tall rounded fields, narrower at the apex, with a lateral costophrenic recess and
            // domed diaphragm (the right one usually higher).
            let mut lung_mask: f64 = 0.0;
            let mut hilum_glow: f64 = 0.0;
            let mut streaks: f64 = 0.0;
            for side in [-1.0f64, 1.0] {
                let cx = side * 0.43 * p.lung_w + if side > 0.0 { 0.01 } else { 0.0 };
                let cy = -0.07 + p.lung_y;
                let a = 0.31 * p.lung_w * if side > 0.0 { 0.95 } else { 1.0 };
                let b = 0.6 * p.lung_h + if side > 0.0 { p.diaphragm_l } else { p.diaphragm_r };
                let (du, dv) = (m - cx, v - cy);
                let taper = 1.0 - 0.45 * smoothstep(0.0, 1.0, -dv / b).powi(2);
                let du = du - side * 0.12 * (dv / b).max(0.0).powi(2);
                let d = superellipse(du / taper, dv, a, b, 2.3);
                let lm = inside(d, e(0.035));
                lung_mask = lung_mask.max(lm);
                let (hx, hy) = (side * 0.17, p.lung_y);
                let r = ((m - hx).powi(2) + (v - hy).powi(2)).sqrt();
                hilum_glow = hilum_glow.max(lm * (-r / 0.2).exp());
                // Vessels fan out from the hilum: noise stretched along the radial direction.
                let angle = (v - hy).atan2(side * (m - hx));
                streaks = streaks.max(lm * fine.at(angle * 2.2, r * 0.35 - 0.5) * (-r / 0.45).exp());
            }
            let mut lung_val = p.lung
                + 0.14 * hilum_glow
                + 0.03 * medium.at(u, v)
                + 0.015 * fine.at(u, v)
                + 0.07 * streaks
                + 0.06 * smoothstep(-0.1, 0.55, v); // lower fields overlap more soft tissue
            if let Some(o) = &opacities {
                lung_val += o.at(m, v); // added to the lung, so vessels and ribs still show through
            }
            val += (lung_val - val) * lung_mask * body;

            // Dense shadow: the mediastinum (a central column, wider lower down), the heart (to the
            // patient's left, i.e. image right, its apex low) and the aortic knob, blended into one
            // silhouette like on a film; below the diaphragm, the upper abdomen.
            let half = 0.12 + 0.05 * smoothstep(-0.5, 0.1, v);
            let column_d = (m.abs() - half).max(v - 0.62);
            let (hr, hc) = (0.45f64.sin(), 0.45f64.cos()); // long axis tilted ~25° down to the left
            let (hu, hv) = (m - p.heart_x, v - 0.38);
            let heart_d = superellipse(hc * hu - hr * hv, hr * hu + hc * hv, 0.36 * p.heart, 0.26 * p.heart, 2.2);
            let knob_d = ((m - 0.12).powi(2) + (v + 0.27).powi(2)).sqrt() - 0.075;
            let dense_d = smin(smin(column_d, heart_d, 0.1), knob_d, 0.06);
            let dense_mask = inside(dense_d, e(0.025));
            let abdomen = smoothstep(0.55, 0.8, v) * body;
            let dense_val = p.dense * (0.9 + 0.1 * inside(column_d, 0.05)) + 0.03 * broad.at(v, u);
            val += (dense_val - val) * dense_mask * body;
            val += (p.tissue + 0.16 - val) * abdomen * (1.0 - lung_mask) * (1.0 - dense_mask);
            // Below the diaphragm the spine and heart fade into the abdomen's density.
            val += (p.tissue + 0.18 - val) * abdomen * dense_mask * 0.6;

            // Spine through the mediastinum: faint vertebral end plates; the trachea's air column above
            // the carina.
            let spine = inside(m.abs() - 0.07, e(0.02));
            let plates = (std::f64::consts::TAU * (v / 0.115 + p.spine_phase)).cos().max(0.0).powi(3);
            val += 0.02 * spine * plates * body;
            let trachea = inside(m.abs() - 0.03, e(0.015)) * inside(v + 0.32, e(0.06));
            val -= 0.07 * trachea * body;

            // Ribs: posterior arcs sweeping down laterally, fainter anterior arcs falling medially;
            // visible over the lungs, barely through the dense shadow. Bone = band + cortical rim.
            let t = m.abs();
            let cage = inside(t - 0.86, e(0.03)) * smoothstep(0.05, 0.13, t) * inside(v - 0.7, e(0.05)) * body;
            let mut bone: f64 = 0.0;
            if cage > 0.0 {
                for k in 0..11 {
                    let k = k as f64;
                    let v0 = p.rib_start + k * p.rib_step * (1.0 + 0.02 * k);
                    let width = 0.042 + 0.015 * t + 0.002 * k;
                    let post = v0 - 0.1 * t + p.rib_curve * t * t;
                    let dp = (v - post).abs() - width / 2.0;
                    let band = inside(dp, e(0.008));
                    let rim = (-(dp / 0.007).powi(2)).exp();
                    bone = bone.max(band * 0.65 + rim * 0.45);
                    if (0.2..0.86).contains(&t) {
                        let ant = v0 + 0.12 + 0.38 * (0.86 - t);
                        let da = (v - ant).abs() - width * 0.45;
                        bone = bone.max(0.35 * inside(da, e(0.012)) * smoothstep(0.2, 0.35, t));
                    }
                }
            }
            val += p.rib * bone * cage * (0.25 + 0.75 * lung_mask) * (1.0 - 0.9 * dense_mask);

            // Clavicles: gently S-shaped from the sternal notch out and up over the lung apices
            // (a polyline through the curve).
            for side in [-1.0f64, 1.0] {
                let curve = |s: f64| (side * (0.08 + 0.62 * s), -0.7 - 0.14 * s - 0.05 * (std::f64::consts::PI * s).sin());
                let mut best = (f64::INFINITY, 0.0);
                for i in 0..8 {
                    let (s0, s1) = (i as f64 / 8.0, (i + 1) as f64 / 8.0);
                    let ((x0, y0), (x1, y1)) = (curve(s0), curve(s1));
                    let (d, f) = segment(m, v, x0, y0, x1, y1);
                    if d < best.0 {
                        best = (d, s0 + f / 8.0);
                    }
                }
                let thick = 0.022 + 0.012 * (1.0 - best.1);
                val += 0.1 * inside(best.0 - thick, e(0.01)) * body * (1.0 - 0.7 * dense_mask);
            }

            // Low-frequency tissue variation, the tube's heel effect (a tilt), and grain.
            val += 0.035 * broad.at(u, v) * body + p.tilt.0 * ix + p.tilt.1 * iy;
            val += grain.sample(&mut rng);

            let tone = val.clamp(0.0, 1.0).powf(p.gamma);
            let out = p.lo + (p.hi - p.lo) * tone;
            pixels.push((out * 255.0).round().clamp(0.0, 255.0) as u8);
        }
    }
    GrayImage { width: size, height: size, pixels }
}

/// Writes `count` phantoms of `size × size` as `phantom_00000.png`, … into `dir` (created if needed),
/// image `i` drawn from seed `seed + i`. Each file is written to a temporary name and renamed, so a
/// half-written PNG never appears under its final name. Returns the paths in order. The
/// [`PhantomClass::Clear`] class.
pub fn write_demo_set(dir: &Path, count: usize, size: usize, seed: u64) -> Result<Vec<PathBuf>> {
    if size == 0 {
        return Err(Error::invalid("write_demo_set", "size must be positive"));
    }
    write_class_set(dir, count, size, seed, PhantomClass::Clear)
}

/// [`write_demo_set`] for either class: the same names, seeds and atomic writes.
pub fn write_class_set(dir: &Path, count: usize, size: usize, seed: u64, class: PhantomClass) -> Result<Vec<PathBuf>> {
    if size == 0 {
        return Err(Error::invalid("write_class_set", "size must be positive"));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // Independent images: draw and encode them in parallel (rayon keeps the order).
    (0..count)
        .into_par_iter()
        .map(|i| {
            let path = dir.join(format!("phantom_{i:05}.png"));
            let img = render(seed.wrapping_add(i as u64), size, class);
            let mut bytes = Vec::new();
            image::GrayImage::from_raw(size as u32, size as u32, img.pixels)
                .expect("size² pixels")
                .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
                .map_err(|e| Error::format(&path, format!("cannot encode PNG: {e}")))?;
            write_atomic(&path, &bytes)?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean gray levels of one film at 128²: the lower lung fields (both sides, where most opacities
    /// fall), the mediastinum and the background corner.
    fn regions(img: &GrayImage) -> (f64, f64, f64) {
        let f = |a: f64| (a * img.width as f64) as usize;
        let lungs = (img.mean_in(f(0.18), f(0.45), f(0.36), f(0.68)) + img.mean_in(f(0.64), f(0.45), f(0.82), f(0.68))) / 2.0;
        (lungs, img.mean_in(f(0.47), f(0.3), f(0.53), f(0.7)), img.mean_in(0, 0, f(0.04), f(0.04)))
    }

    /// Cohen's d of `b` over `a` (pooled sample standard deviation).
    fn effect_size(a: &[f64], b: &[f64]) -> f64 {
        let stats = |v: &[f64]| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            (mean, v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64)
        };
        let ((ma, va), (mb, vb)) = (stats(a), stats(b));
        (mb - ma) / ((va + vb) / 2.0).sqrt()
    }

    #[test]
    fn opacities_whiten_the_lungs_and_nothing_else() {
        // Twins (same seed: same patient, pose and grain): every film with opacities is brighter in its
        // lower lung fields, and identical outside the lungs.
        for seed in 0..20 {
            let (clear, opaque) = (phantom(seed, 128), phantom_of(PhantomClass::Opacities, seed, 128).unwrap());
            let ((lc, mc, cc), (lo, mo, co)) = (regions(&clear), regions(&opaque));
            assert!(lo > lc + 3.0, "seed {seed}: lower lungs {lo:.1} with opacities vs {lc:.1} clear");
            assert_eq!((mc, cc), (mo, co), "seed {seed}: the mediastinum or background changed");
        }
    }

    #[test]
    fn the_classes_differ_across_patients() {
        // Different patients (disjoint seeds), 20 each: the lower lung fields' gray level, relative to the
        // film's own range (background → mediastinum, which takes out the exposure each film draws), is
        // higher with opacities by a large effect (Cohen's d > 1; 0.8 is "large").
        let relative = |class, seeds: std::ops::Range<u64>| -> Vec<f64> {
            seeds
                .map(|s| {
                    let (lungs, mediastinum, background) = regions(&phantom_of(class, s, 128).unwrap());
                    (lungs - background) / (mediastinum - background)
                })
                .collect()
        };
        let clear = relative(PhantomClass::Clear, 0..20);
        let opaque = relative(PhantomClass::Opacities, 1000..1020);
        let d = effect_size(&clear, &opaque);
        assert!(d > 1.0, "effect size {d:.2}: clear {clear:.2?}, opacities {opaque:.2?}");
    }

    #[test]
    fn each_class_is_deterministic_per_seed_and_varies_between_seeds() {
        let a = phantom_of(PhantomClass::Opacities, 5, 96).unwrap();
        assert_eq!(a, phantom_of(PhantomClass::Opacities, 5, 96).unwrap());
        assert_eq!(phantom_of(PhantomClass::Clear, 5, 96).unwrap(), phantom(5, 96), "Clear is the original generator");
        let b = phantom_of(PhantomClass::Opacities, 6, 96).unwrap();
        let differing = a.pixels.iter().zip(&b.pixels).filter(|(x, y)| x != y).count();
        assert!(differing > a.pixels.len() / 4, "seeds 5 and 6 differ in only {differing} pixels");
        assert!(phantom_of(PhantomClass::Opacities, 5, 0).is_err());
    }

    #[test]
    fn a_class_set_is_written_like_the_demo_set() {
        let dir = std::env::temp_dir().join(format!("cxr-gan-phantom-class-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files = write_class_set(&dir, 3, 64, 40, PhantomClass::Opacities).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["phantom_00000.png", "phantom_00001.png", "phantom_00002.png"]);
        for (i, f) in files.iter().enumerate() {
            assert_eq!(crate::data::load_gray(f).unwrap(), phantom_of(PhantomClass::Opacities, 40 + i as u64, 64).unwrap());
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3, "a temporary file was left behind");
        assert!(write_class_set(&dir, 1, 0, 0, PhantomClass::Clear).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
