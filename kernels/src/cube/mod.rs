//! The kernels, one file per op family, and the helpers they share (block-wide tree reductions, the
//! grid-stride position).
//!
//! Conventions every launcher relies on:
//! * Elementwise and reduction kernels run [`BLOCK`] units per cube (a 1-d CubeDim), and walk
//!   their elements with a grid stride, so any cube count covers any length (the count is capped to stay
//!   within every runtime's per-dimension limit).
//! * "One cube per group" kernels (the norms, the per-sample norms of the gradient penalty) take their
//!   group from the linear [`CUBE_POS`], so a 2-d cube count may carry more than 65 535 groups; a cube past
//!   the last group computes on the last one and writes nothing (every unit must reach every barrier).
//! * Sizes and strides are `usize` scalars, 32-bit on the device (the host checks that every length fits
//!   u32); kernels with many of them take them as one `#[derive(CubeLaunch)]` struct (`launch_args!`).
//! * Every reduction is a per-unit partial sum followed by a shared-memory tree over the cube, in f32:
//!   the error of an n-term sum grows as log₂(BLOCK) + n/BLOCK roundings instead of n, and statistics are
//!   computed in two passes (mean first, then centred sums), so no sum cancels catastrophically.

use cubecl::prelude::*;

/// Declares a struct of scalar kernel arguments (all of one type) with `#[derive(CubeLaunch, CubeType)]`, and
/// its `launch()`: the struct's launch form. CubeCL's generated `<Name>Launch::new` takes the fields by
/// position; `launch()` passes them in declaration order, so the host only ever names them. Defined before
/// the family modules, which see it by textual scope.
macro_rules! launch_args {
    ($(#[$doc:meta])* $name:ident => $launch:ident: $ty:ident { $($(#[$fdoc:meta])* $field:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(CubeLaunch, CubeType, Clone, Copy, Debug)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty),+
        }

        impl $name {
            /// These arguments as the kernel launcher takes them.
            pub fn launch<R: Runtime>(self) -> $launch<R> {
                $launch::new($(self.$field),+)
            }
        }
    };
}

pub mod act;
pub mod adam;
pub mod channels;
pub mod conv;
pub mod elementwise;
pub mod loss;
pub mod norm;
pub mod pool;
pub mod resize;

/// Units per cube of every elementwise / reduction kernel (a power of two: the tree reductions halve it).
pub const BLOCK: usize = 256;

/// The position of this unit in a grid-stride loop, and the stride.
#[cube]
pub fn grid_start() -> usize {
    ABSOLUTE_POS
}

#[cube]
pub fn grid_stride() -> usize {
    CUBE_COUNT * CUBE_DIM as usize
}

/// Sums `rows` rows of [`BLOCK`] partial values each, laid out row after row in `sh`, over the cube (of
/// BLOCK units): on return `sh[r * BLOCK]` holds row r's total (visible to every unit). Callers write their
/// partials, call this, read the totals, then must `sync_cube()` before the shared memory is written again.
#[cube]
pub fn tree_sum_rows(sh: &mut SharedMemory<f32>, #[comptime] rows: usize) {
    let u = UNIT_POS as usize;
    sync_cube();
    // CUBE_DIM (= BLOCK) rather than BLOCK: the halving counter must be a runtime variable.
    let mut s = CUBE_DIM as usize / 2;
    while s > 0 {
        if u < s {
            #[unroll]
            for r in 0..rows {
                let a = sh[r * BLOCK + u];
                let b = sh[r * BLOCK + u + s];
                sh[r * BLOCK + u] = a + b;
            }
        }
        sync_cube();
        s /= 2;
    }
}

/// The group this cube works on, as `min(CUBE_POS, groups − 1)`, and whether it is a real one (cubes of a
/// 2-d count past the last group recompute the last group and must not write).
#[cube]
pub fn cube_group(groups: usize) -> usize {
    let g = CUBE_POS;
    select(g < groups, g, groups - 1)
}

/// Per-channel sums of per-plane values: out[c] = Σₙ part[n·C + c] (instance norm's dgamma / dbeta). One
/// unit per channel, summing the batch in order: deterministic, and the batch is short.
#[cube(launch)]
pub fn per_channel_sum(part: &Array<f32>, out: &mut Array<f32>, n: usize, c: usize) {
    let ch = ABSOLUTE_POS;
    if ch < c {
        let mut s = 0.0f32;
        for b in 0..n {
            s += part[b * c + ch];
        }
        out[ch] = s;
    }
}

/// Σ of part[z·len + i] over z < splits, into out[i]: the split-K reduction of a tiled GEMM's partials.
#[cube(launch)]
pub fn sum_splits(part: &Array<f32>, out: &mut Array<f32>, splits: usize, len: usize) {
    let mut i = grid_start();
    while i < len {
        let mut s = 0.0f32;
        for z in 0..splits {
            s += part[z * len + i];
        }
        out[i] = s;
        i += grid_stride();
    }
}
