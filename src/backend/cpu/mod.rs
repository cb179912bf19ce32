//! The f32 CPU backend (being written).
