//! Launch geometry and kernel arguments for the cuda-native backend, checked against CUDA's limits before
//! anything reaches the driver (or the emulator, which enforces the same limits).

use crate::error::{Error, Result};

/// Threads of every elementwise and reduction block (`CXR_BLOCK` in kernels/cuda/common.cuh).
pub const BLOCK: u32 = 256;
/// Warp width.
pub const WARP: u32 = 32;
/// CUDA's limits (every compute capability from 3.0 on): threads per block, per block axis, grid axes.
pub const MAX_THREADS_PER_BLOCK: u32 = 1024;
pub const MAX_BLOCK: [u32; 3] = [1024, 1024, 64];
pub const MAX_GRID: [u32; 3] = [(1 << 31) - 1, 65_535, 65_535];
/// Blocks of a grid-stride launch: enough to fill a large GPU many times over; a loop covers the rest.
const MAX_GRID_STRIDE_BLOCKS: u32 = 65_535;
/// Blocks of a reduction whose per-block partial sums come back to the host.
pub const MAX_PARTIALS: u32 = 1024;

/// A launch's grid and block shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub grid: [u32; 3],
    pub block: [u32; 3],
}

impl Dims {
    /// A grid-stride loop over `n` elements in blocks of [`BLOCK`].
    pub fn grid_stride(n: usize) -> Dims {
        let blocks = n.div_ceil(BLOCK as usize).clamp(1, MAX_GRID_STRIDE_BLOCKS as usize) as u32;
        Dims { grid: [blocks, 1, 1], block: [BLOCK, 1, 1] }
    }

    /// A reduction over `n` elements into at most [`MAX_PARTIALS`] per-block partial sums: (dims, blocks).
    pub fn partials(n: usize) -> (Dims, usize) {
        let blocks = n.div_ceil(BLOCK as usize).clamp(1, MAX_PARTIALS as usize);
        (Dims { grid: [blocks as u32, 1, 1], block: [BLOCK, 1, 1] }, blocks)
    }

    /// One block of [`BLOCK`] threads per group: groups along x, and y when x is full; a kernel recovers
    /// the group as `blockIdx.y * gridDim.x + blockIdx.x` and skips ids past the last.
    pub fn per_group(groups: usize) -> Dims {
        let x = groups.clamp(1, MAX_GRID[1] as usize);
        Dims { grid: [x as u32, groups.div_ceil(x).max(1) as u32, 1], block: [BLOCK, 1, 1] }
    }

    /// A 2-d grid of `tiles` = (along x, along y, along z) blocks of `threads` threads.
    pub fn tiles(tiles: [usize; 3], threads: u32) -> Dims {
        let t = |v: usize| u32::try_from(v.max(1)).unwrap_or(u32::MAX);
        Dims { grid: [t(tiles[0]), t(tiles[1]), t(tiles[2])], block: [threads, 1, 1] }
    }

    /// Checks the shape against CUDA's limits; `op` and `kernel` name the launch in the error.
    pub fn check(&self, op: &'static str, kernel: &str) -> Result<()> {
        let threads: u64 = self.block.iter().map(|&b| b as u64).product();
        let bad = |why: String| Err(Error::invalid(op, format!("kernel {kernel}: {why}")));
        if self.grid.contains(&0) || self.block.contains(&0) {
            return bad(format!("an empty launch ({:?} blocks of {:?})", self.grid, self.block));
        }
        if threads > MAX_THREADS_PER_BLOCK as u64 {
            return bad(format!("{threads} threads per block, more than CUDA's {MAX_THREADS_PER_BLOCK}"));
        }
        for a in 0..3 {
            if self.block[a] > MAX_BLOCK[a] {
                return bad(format!("block axis {a} of {} threads exceeds CUDA's {}", self.block[a], MAX_BLOCK[a]));
            }
            if self.grid[a] > MAX_GRID[a] {
                return bad(format!("grid axis {a} of {} blocks exceeds CUDA's {}; split the work", self.grid[a], MAX_GRID[a]));
            }
        }
        Ok(())
    }
}

/// One kernel argument, by value, as the kernel's parameter type: a device pointer (`float*`), a 32-bit
/// scalar, or a `#[repr(C)]` struct of them (the families' typed argument structs).
#[derive(Clone, Debug)]
pub enum Arg {
    Ptr(u64),
    U32(u32),
    I32(i32),
    F32(f32),
    Struct(Vec<u8>),
}

impl Arg {
    /// A `#[repr(C)]` plain-old-data argument struct, as its bytes (mirrors a struct in the `.cu` file).
    pub fn pod<T: bytemuck::Pod>(v: &T) -> Arg {
        Arg::Struct(bytemuck::bytes_of(v).to_vec())
    }
    /// The bytes cuLaunchKernel copies for this parameter.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Arg::Ptr(p) => bytemuck::bytes_of(p),
            Arg::U32(v) => bytemuck::bytes_of(v),
            Arg::I32(v) => bytemuck::bytes_of(v),
            Arg::F32(v) => bytemuck::bytes_of(v),
            Arg::Struct(b) => b,
        }
    }
}

/// A size as the kernels' 32-bit index (every length is checked to fit before launching).
pub fn u32_of(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::invalid(op, format!("size {v} exceeds the kernels' 32-bit indexing")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_stride_covers_any_length_within_cuda_limits() {
        for n in [0usize, 1, 255, 256, 257, 1 << 20, 1 << 31, u32::MAX as usize] {
            let d = Dims::grid_stride(n);
            d.check("t", "k").unwrap();
            assert_eq!(d.block, [BLOCK, 1, 1]);
            assert!(d.grid[0] as usize * BLOCK as usize >= n.min(MAX_GRID_STRIDE_BLOCKS as usize * BLOCK as usize));
        }
    }

    #[test]
    fn per_group_addresses_every_group_once_within_limits() {
        for g in [1usize, 7, 65_535, 65_536, 200_001, 4_000_000] {
            let d = Dims::per_group(g);
            d.check("t", "k").unwrap();
            let slots = d.grid[0] as usize * d.grid[1] as usize;
            assert!(slots >= g && slots - g < d.grid[0] as usize, "{g}: {d:?}");
        }
    }

    #[test]
    fn partials_are_capped() {
        let (d, b) = Dims::partials(1 << 30);
        assert_eq!(b, MAX_PARTIALS as usize);
        d.check("t", "k").unwrap();
        assert_eq!(Dims::partials(1).1, 1);
    }

    #[test]
    fn out_of_limit_launches_are_refused_with_the_kernel_named() {
        let too_many_threads = Dims { grid: [1, 1, 1], block: [2048, 1, 1] };
        let e = too_many_threads.check("conv2d", "conv2d_fwd_simt").unwrap_err().to_string();
        assert!(e.contains("conv2d_fwd_simt") && e.contains("1024"), "{e}");
        assert!(Dims { grid: [1, 70_000, 1], block: [32, 1, 1] }.check("o", "k").is_err());
        assert!(Dims { grid: [1, 1, 1], block: [1, 1, 65] }.check("o", "k").is_err());
        assert!(Dims { grid: [0, 1, 1], block: [32, 1, 1] }.check("o", "k").is_err());
        assert!(Dims { grid: [MAX_GRID[0], 65_535, 65_535], block: [32, 32, 1] }.check("o", "k").is_ok());
    }

    #[test]
    fn args_are_passed_as_their_c_bytes() {
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        struct Geom {
            a: u32,
            b: u32,
        }
        assert_eq!(Arg::pod(&Geom { a: 1, b: 2 }).bytes(), &[1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(Arg::Ptr(0x1234).bytes().len(), 8);
        assert_eq!(Arg::F32(1.0).bytes(), &1.0f32.to_le_bytes());
    }
}
