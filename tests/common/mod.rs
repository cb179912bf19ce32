//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod compare;
pub mod reference_backend;
