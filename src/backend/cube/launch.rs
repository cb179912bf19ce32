//! Launch geometry shared by the op families: kernel arguments over buffers, cube counts for grid-stride,
//! one-cube-per-group and reduction kernels, and the tiled GEMMs' grid and split-K plan (the tile sizes
//! are the conv kernels' own constants, so host and device cannot disagree).

use cubecl::prelude::{ArrayArg, CubeCount, CubeDim};
use cubecl::server::Handle;
use cubecl::Runtime;
use cxr_gan_kernels::cube::conv::{ConvTile, TILE_K, TILE_N, TILE_UNITS};
use cxr_gan_kernels::cube::BLOCK;

use crate::error::{Error, Result};

/// The most cubes along one dimension of a launch that every runtime accepts (WebGPU's minimum limit).
const MAX_CUBES_PER_DIM: usize = 65_535;
/// Cubes of a reduction whose partial sums come back to the host (mean, losses).
const MAX_PARTIALS: usize = 1024;

/// A kernel argument over `len` f32 of `h`.
pub(super) fn arr<R: Runtime>(h: &Handle, len: usize) -> ArrayArg<R> {
    // SAFETY: every handle passed here holds at least max(len, 1) elements (see `buffer` / `upload_bytes`).
    unsafe { ArrayArg::from_raw_parts(h.clone(), len) }
}

/// [`BLOCK`] units: every elementwise and reduction kernel's cube.
pub(super) fn block() -> CubeDim {
    CubeDim::new_1d(BLOCK as u32)
}

/// Cubes for a grid-stride loop over `n` elements.
pub(super) fn grid(n: usize) -> CubeCount {
    let cubes = n.div_ceil(BLOCK).clamp(1, MAX_CUBES_PER_DIM);
    CubeCount::Static(cubes as u32, 1, 1)
}

/// Cubes for a reduction over `n` elements whose partial sums come back to the host.
pub(super) fn partial_cubes(n: usize) -> usize {
    n.div_ceil(BLOCK).clamp(1, MAX_PARTIALS)
}

/// A 1-d count of `cubes` cubes (at most [`MAX_PARTIALS`], from [`partial_cubes`]).
pub(super) fn cubes_1d(cubes: usize) -> CubeCount {
    CubeCount::Static(cubes as u32, 1, 1)
}

/// One cube per group (2-d when there are more groups than one dimension holds).
pub(super) fn groups(g: usize) -> CubeCount {
    let x = g.clamp(1, MAX_CUBES_PER_DIM);
    CubeCount::Static(x as u32, g.div_ceil(x).max(1) as u32, 1)
}

/// [`TILE_UNITS`] units: the tiled GEMMs' cube.
pub(super) fn tile_dim() -> CubeDim {
    CubeDim::new_1d(TILE_UNITS as u32)
}

/// The tiled GEMM grid for a `rows` × `cols` output split `splits` ways along the reduction.
pub(super) fn tiles(op: &'static str, rows: usize, cols: usize, splits: usize) -> Result<CubeCount> {
    let (x, y) = (cols.div_ceil(TILE_N).max(1), rows.div_ceil(ConvTile::for_rows(rows).rows()).max(1));
    if x > MAX_CUBES_PER_DIM || y > MAX_CUBES_PER_DIM {
        return Err(Error::invalid(op, format!("a {rows}×{cols} output needs more than {MAX_CUBES_PER_DIM} tiles along one axis")));
    }
    Ok(CubeCount::Static(x as u32, y as u32, splits as u32))
}

/// Output tiles of a `rows` × `cols` GEMM.
pub(super) fn tile_count(rows: usize, cols: usize) -> usize {
    rows.div_ceil(ConvTile::for_rows(rows).rows()).max(1) * cols.div_ceil(TILE_N).max(1)
}

/// Split-K for a tiled GEMM of `tiles` output tiles and reduction length `k`: (splits, chunk). Enough
/// splits that there are ~512 cubes to fill a large GPU, each chunk at least 256 long (so a split's
/// partial buffer and extra pass stay cheap) and a whole number of TILE_K steps; at most 64.
pub(super) fn split_k(tiles: usize, k: usize) -> (usize, usize) {
    const TARGET_CUBES: usize = 512;
    const MIN_CHUNK: usize = 256;
    if k == 0 {
        return (1, TILE_K);
    }
    let max_splits = k.div_ceil(MIN_CHUNK).clamp(1, 64);
    let want = TARGET_CUBES.div_ceil(tiles).clamp(1, max_splits);
    let chunk = k.div_ceil(want).next_multiple_of(TILE_K);
    (k.div_ceil(chunk), chunk)
}
