//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod backends;
pub mod compare;
pub mod compile_check;
pub mod random;
pub mod reference_backend;
pub mod rejection;
pub mod shared;
