//! Judging a backend's f32 output against the f64 oracle: ‖ours − ref‖₂ / ‖ref‖₂, printed and asserted.

use cxr_gan::Tensor;
use cxr_gan_reference::Array;

/// The tolerance of every f32-vs-oracle comparison (relative L2 per output tensor).
pub const TOL: f64 = 1e-5;

/// ‖ours − reference‖₂ / ‖reference‖₂ (absolute when the reference is 0), printed and checked; a
/// non-finite output where the oracle is finite (e.g. a poisoned element never written) fails.
pub fn assert_close(name: &str, ours: &[f32], reference: &[f64], tol: f64) {
    assert_eq!(ours.len(), reference.len(), "{name}: {} elements vs the oracle's {}", ours.len(), reference.len());
    let (mut diff, mut norm) = (0f64, 0f64);
    for (&o, &r) in ours.iter().zip(reference) {
        assert!(o.is_finite() || !r.is_finite(), "{name}: non-finite {o} where the oracle has {r}");
        diff += (o as f64 - r) * (o as f64 - r);
        norm += r * r;
    }
    let err = if norm > 0.0 { (diff / norm).sqrt() } else { diff.sqrt() };
    println!("{name}: relative L2 error {err:.2e}");
    assert!(err <= tol, "{name}: relative L2 error {err:.3e} > {tol:.0e}");
}

/// The same for a whole tensor: its shape must be the oracle's too.
pub fn assert_tensor_close(name: &str, ours: &Tensor, reference: &Array, tol: f64) {
    assert_eq!(ours.shape(), reference.shape.as_slice(), "{name}: shape");
    assert_close(name, ours.data(), &reference.data, tol);
}

/// The same for one scalar (losses, penalties).
pub fn assert_close_scalar(name: &str, ours: f64, reference: f64, tol: f64) {
    let err = if reference != 0.0 { ((ours - reference) / reference).abs() } else { ours.abs() };
    println!("{name}: relative error {err:.2e}");
    assert!(err <= tol, "{name}: {ours} vs the oracle's {reference}: relative error {err:.3e} > {tol:.0e}");
}
