//! Judging how a backend rejects bad input: the typed error and the very message the `cpu` backend gives
//! (shape checks are shared, so every backend must agree), naming the shapes at fault; never a panic.

use cxr_gan::Error;

/// The kind of error bad input must come back as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Tensors whose shapes do not fit together.
    Shape,
    /// A parameter out of its domain (a zero stride, Adam step 0, ...).
    InvalidArgument,
}

fn kind(e: &Error) -> Option<Rejection> {
    match e {
        Error::Shape { .. } => Some(Rejection::Shape),
        Error::InvalidArgument { .. } => Some(Rejection::InvalidArgument),
        _ => None,
    }
}

/// `ours` and `cpu` must both be errors of `expected` kind with the same message, and the message must name
/// every string in `names` (shapes as `[a, b, ..]`). Returns the message.
pub fn assert_rejected<T, U>(what: &str, expected: Rejection, ours: cxr_gan::Result<T>, cpu: cxr_gan::Result<U>, names: &[&str]) -> String {
    let cpu = match cpu {
        Err(e) if kind(&e) == Some(expected) => e.to_string(),
        Err(e) => panic!("{what}: expected the cpu backend to give {expected:?}, got {e:?}"),
        Ok(_) => panic!("{what}: the cpu backend accepted it"),
    };
    let msg = match ours {
        Err(e) if kind(&e) == Some(expected) => e.to_string(),
        Err(e) => panic!("{what}: expected {expected:?} {cpu:?}, got {e:?}"),
        Ok(_) => panic!("{what}: accepted; the cpu backend gives {cpu:?}"),
    };
    println!("{what}: {msg}");
    assert_eq!(msg, cpu, "{what}: message differs from the cpu backend's");
    for n in names {
        assert!(msg.contains(n), "{what}: message {msg:?} does not name {n}");
    }
    msg
}

/// The f64 oracle behind the trait (tests/common/reference_backend.rs, which the golden runner uses) must
/// reject the same input with the same message.
pub fn assert_oracle_rejects_alike<T>(what: &str, oracle: cxr_gan::Result<T>, msg: &str) {
    match oracle {
        Err(e) => assert_eq!(e.to_string(), msg, "{what}: the oracle's message differs"),
        Ok(_) => panic!("{what}: the oracle accepted what the backends reject"),
    }
}
