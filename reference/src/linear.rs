//! The fully connected layer (nn.Linear): y = x·wᵀ + b, weight in PyTorch's [out, in] layout.

use crate::Array;

fn dims2(a: &Array, what: &str) -> [usize; 2] {
    assert_eq!(a.shape.len(), 2, "{what}: expected a 2-d array, got {:?}", a.shape);
    [a.shape[0], a.shape[1]]
}

/// F.linear(x, w, b): y[n, o] = Σ_i x[n, i]·w[o, i] + b[o]; x [N, in], w [out, in], b [out].
pub fn linear(x: &Array, w: &Array, b: &[f64]) -> Array {
    let [n_, in_] = dims2(x, "linear x");
    let [out_, in_w] = dims2(w, "linear w");
    assert_eq!(in_, in_w, "linear: x has {in_} features, w expects {in_w}");
    assert_eq!(b.len(), out_, "linear: {} biases for {out_} outputs", b.len());
    let mut y = Array::zeros(&[n_, out_]);
    for n in 0..n_ {
        for (o, &bias) in b.iter().enumerate() {
            let mut s = bias;
            for i in 0..in_ {
                s += x.data[n * in_ + i] * w.data[o * in_ + i];
            }
            y.data[n * out_ + o] = s;
        }
    }
    y
}

/// The gradients of linear: dx = dy·w [N, in], dw = dyᵀ·x [out, in], db = Σ_n dy [out].
pub fn linear_bwd(dy: &Array, x: &Array, w: &Array) -> (Array, Array, Vec<f64>) {
    let [n_, in_] = dims2(x, "linear_bwd x");
    let [out_, in_w] = dims2(w, "linear_bwd w");
    assert_eq!(in_, in_w, "linear_bwd: x has {in_} features, w expects {in_w}");
    assert_eq!(dy.shape, vec![n_, out_], "linear_bwd: dy shape");
    let mut dx = Array::zeros(&[n_, in_]);
    let mut dw = Array::zeros(&[out_, in_]);
    let mut db = vec![0.0; out_];
    for n in 0..n_ {
        for (o, db_o) in db.iter_mut().enumerate() {
            let g = dy.data[n * out_ + o];
            *db_o += g;
            for i in 0..in_ {
                dx.data[n * in_ + i] += g * w.data[o * in_ + i];
                dw.data[o * in_ + i] += g * x.data[n * in_ + i];
            }
        }
    }
    (dx, dw, db)
}
