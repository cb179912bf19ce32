//! Graph capture (torch.cuda.CUDAGraph's model): between `capture_begin` and `capture_end` every launch is
//! recorded instead of run (a CUDA stream capture on the GPU, a list on the emulator), and `replay` runs the
//! whole recording as one unit: one `cuGraphLaunch` for an iteration's hundreds of kernels.
//!
//! What makes a replay correct is that every address the recording holds is still the right buffer:
//! - buffers allocated during the capture come from the graph's own [`GraphPool`]: a buffer freed inside the
//!   capture is reused by a later allocation inside it (stream order makes that safe), none is handed out to
//!   work outside the graph, and all are freed with the graph;
//! - buffers allocated before the capture and dropped during it may still be read by every replay: the pool
//!   adopts them too;
//! - the state the graph updates in place (parameters, moments, running statistics) must not move: an
//!   in-place op that has to copy a shared tensor during capture fails it, so the caller runs eagerly;
//! - host copies (uploads, reads, syncs) are refused during capture: their data would be baked in (or not be
//!   there yet). Step-dependent scalars live on the device instead (Adam's step counter, adam.rs).

use std::sync::{Arc, Mutex};

use super::device::Graph;
use super::{CudaNativeBackend, CudaNativeTensor, Device};
use crate::error::{Error, Result};
use crate::tensor::{fmt_shape, Tensor};

/// The memory of one graph: every buffer it allocated or adopted, and which of them are free for reuse
/// while it is being captured.
pub(super) struct GraphPool {
    device: Arc<Device>,
    /// (address, bytes) of everything the graph owns; freed when the pool drops.
    owned: Mutex<Vec<(u64, usize)>>,
    /// The owned buffers no tensor holds any more, reusable by the capture's later allocations.
    free: Mutex<Vec<(u64, usize)>>,
    /// Tensors outside the pool that the graph reads and that must outlive it (Adam's cached tables).
    keep_alive: Mutex<Vec<CudaNativeTensor>>,
    /// The first in-place op that had to copy a shared tensor during the capture.
    moved: Mutex<Option<String>>,
}

impl GraphPool {
    fn new(device: Arc<Device>) -> GraphPool {
        GraphPool { device, owned: Mutex::default(), free: Mutex::default(), keep_alive: Mutex::default(), moved: Mutex::default() }
    }

    /// A free owned buffer of exactly `bytes`, if there is one.
    pub(super) fn take(&self, bytes: usize) -> Option<u64> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let i = free.iter().position(|&(_, b)| b == bytes)?;
        Some(free.swap_remove(i).0)
    }

    /// Makes the graph the owner of a buffer (one it allocated, or one dropped during its capture).
    pub(super) fn adopt(&self, ptr: u64, bytes: usize) {
        self.owned.lock().unwrap_or_else(|p| p.into_inner()).push((ptr, bytes));
    }

    /// A pool buffer no tensor holds any more: reusable while the capture lasts.
    pub(super) fn release(&self, ptr: u64, bytes: usize) {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).push((ptr, bytes));
    }

    pub(super) fn keep(&self, t: &CudaNativeTensor) {
        self.keep_alive.lock().unwrap_or_else(|p| p.into_inner()).push(t.clone());
    }
}

impl Drop for GraphPool {
    fn drop(&mut self) {
        for (ptr, bytes) in self.owned.get_mut().unwrap_or_else(|p| p.into_inner()).drain(..) {
            self.device.exec.free(ptr, bytes);
        }
    }
}

/// A captured graph of the cuda-native backend and the memory it reads and writes.
pub struct CudaNativeGraph {
    // Declared first: the executable graph goes before the memory it addresses.
    graph: Graph,
    pool: Arc<GraphPool>,
}

impl std::fmt::Debug for CudaNativeGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let buffers = self.pool.owned.lock().unwrap_or_else(|p| p.into_inner()).len();
        write!(f, "CudaNativeGraph({buffers} buffers)")
    }
}

impl CudaNativeBackend {
    /// Fails host copies while a graph is being captured (they cannot be part of one).
    pub(super) fn refuse_host_copy(&self, op: &str) -> Result<()> {
        match self.device.capturing() {
            Some(_) => Err(self.err(format!(
                "{op}: copies between host and device cannot be captured in a graph; read results after capture_end, \
                 upload inputs before capture_begin"
            ))),
            None => Ok(()),
        }
    }

    /// Records that `op` had to copy a shared tensor to update it in place during a capture: the graph would
    /// update the copy while the caller's next replay reads the original, so the capture fails at its end.
    pub(super) fn note_copy_in_capture(&self, op: &str) {
        if let Some(pool) = self.device.capturing() {
            pool.moved.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| op.to_string());
        }
    }

    /// The pool of the capture under way, if any (for state a captured op must keep alive).
    pub(super) fn capture_pool(&self) -> Option<Arc<GraphPool>> {
        self.device.capturing()
    }

    pub(super) fn launch_capture_begin(&self) -> Result<bool> {
        if matches!(self.device.exec, super::Executor::Recorder(_)) {
            return Ok(false);
        }
        let mut capture = self.device.capture.lock().unwrap_or_else(|p| p.into_inner());
        if capture.is_some() {
            return Err(self.err("capture_begin: a capture is already under way".into()));
        }
        self.device.exec.begin_capture().map_err(|e| self.fail("capture_begin", e))?;
        *capture = Some(Arc::new(GraphPool::new(Arc::clone(&self.device))));
        Ok(true)
    }

    pub(super) fn launch_capture_end(&self) -> Result<CudaNativeGraph> {
        let pool = self.device.capture.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(pool) = pool else {
            return Err(self.err("capture_end: no capture is under way".into()));
        };
        let graph = self.device.exec.end_capture().map_err(|e| self.fail("capture_end", e))?;
        if let Some(e) = self.moved_in_capture(&pool, "capture_end") {
            return Err(e);
        }
        Ok(CudaNativeGraph { graph, pool })
    }

    /// The error of a capture in which an in-place op had to copy a shared tensor, if one did.
    pub(super) fn moved_in_capture(&self, pool: &GraphPool, op: &str) -> Option<Error> {
        let moved = pool.moved.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        Some(self.err(format!(
            "{op}: {moved} copied a tensor that another holder shared, to update it in place during a graph capture; \
             a replay would update the copy while the next one reads the original (drop the other holder, or run eagerly)"
        )))
    }

    pub(super) fn launch_replay(&self, g: &CudaNativeGraph) -> Result<()> {
        if !Arc::ptr_eq(&g.pool.device, &self.device) {
            return Err(self.err("replay: the graph was captured on another device".into()));
        }
        self.refuse_host_copy("replay")?;
        self.device.replays.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.device.exec.replay(&g.graph).map_err(|e| self.fail("replay", e))
    }

    pub(super) fn launch_overwrite(&self, dst: &CudaNativeTensor, src: &Tensor) -> Result<()> {
        const OP: &str = "overwrite";
        self.refuse_host_copy(OP)?;
        if dst.shape() != src.shape() {
            return Err(Error::shape(
                OP,
                format!("cannot write a {} tensor into a {} one", fmt_shape(src.shape()), fmt_shape(dst.shape())),
            ));
        }
        dst.buf.invalidate_shadow();
        let upload = if dst.is_bf16() {
            let bits: Vec<u16> = src.data().iter().map(|&v| half::bf16::from_f32(v).to_bits()).collect();
            self.device.exec.upload(dst.buf.ptr, bytemuck::cast_slice(&bits))
        } else {
            self.device.exec.upload(dst.buf.ptr, bytemuck::cast_slice(src.data()))
        };
        upload.map_err(|e| self.fail(OP, e))
    }
}

#[cfg(test)]
mod tests {
    //! On the CPU emulator, which records a capture as a GPU stream capture does (nothing runs until replay).
    use super::*;
    use crate::backend::{AdamConfig, AdamSlot, Backend};

    fn tensor(b: &CudaNativeBackend, data: &[f32]) -> CudaNativeTensor {
        b.upload(&Tensor::new(&[data.len()], data.to_vec()).unwrap()).unwrap()
    }

    fn host(b: &CudaNativeBackend, t: &CudaNativeTensor) -> Vec<f32> {
        b.download(t).unwrap().data().to_vec()
    }

    #[test]
    fn a_replay_reruns_the_captured_work_on_the_inputs_current_contents() {
        let b = CudaNativeBackend::emulator();
        let (x, y) = (tensor(&b, &[1.0, 2.0, 3.0]), tensor(&b, &[10.0, 20.0, 30.0]));
        assert!(b.capture_begin().unwrap());
        let sum = b.add(&x, &y).unwrap();
        let mean = b.mean_deferred(&sum).unwrap();
        let graph = b.capture_end().unwrap();
        // Captured, not run: the output holds nothing of the sum yet.
        assert_ne!(host(&b, &sum), [11.0, 22.0, 33.0]);
        b.replay(&graph).unwrap();
        assert_eq!(host(&b, &sum), [11.0, 22.0, 33.0]);
        assert_eq!(mean.resolve(&b).unwrap(), 22.0);
        b.overwrite(&x, &Tensor::new(&[3], vec![4.0, 5.0, 6.0]).unwrap()).unwrap();
        b.replay(&graph).unwrap();
        assert_eq!(host(&b, &sum), [14.0, 25.0, 36.0]);
        assert_eq!(mean.resolve(&b).unwrap(), 25.0);
    }

    #[test]
    fn host_copies_inside_a_capture_are_refused_and_the_backend_stays_usable() {
        let b = CudaNativeBackend::emulator();
        let x = tensor(&b, &[1.0, 2.0]);
        assert!(b.capture_begin().unwrap());
        let refused = [
            b.mean(&x).map(|_| ()).unwrap_err().to_string(),
            b.upload(&Tensor::new(&[1], vec![0.0]).unwrap()).map(|_| ()).unwrap_err().to_string(),
            b.download(&x).map(|_| ()).unwrap_err().to_string(),
            b.sync().unwrap_err().to_string(),
        ];
        for (e, op) in refused.iter().zip(["mean", "upload", "download", "sync"]) {
            assert!(e.contains(op) && e.contains("cannot be captured"), "{e}");
        }
        b.capture_end().unwrap();
        assert_eq!(b.mean(&x).unwrap(), 1.5);
    }

    /// Adam over one parameter, as `Adam::step` calls it.
    fn adam(
        b: &CudaNativeBackend,
        p: &mut CudaNativeTensor,
        g: &CudaNativeTensor,
        m: &mut CudaNativeTensor,
        v: &mut CudaNativeTensor,
        step: u64,
    ) {
        let cfg = AdamConfig { lr: 0.1, beta1: 0.5, beta2: 0.9, eps: 1e-8 };
        b.adam_step_all(&mut [AdamSlot { param: p, grad: g, exp_avg: m, exp_avg_sq: v }], &cfg, step).unwrap();
    }

    #[test]
    fn replayed_adam_steps_count_on_like_eager_ones() {
        let (eager, graphed) = (CudaNativeBackend::emulator(), CudaNativeBackend::emulator());
        let run = |b: &CudaNativeBackend, capture: bool| {
            let (mut p, g) = (tensor(b, &[1.0, -2.0]), tensor(b, &[0.5, 0.25]));
            let (mut m, mut v) = (tensor(b, &[0.0, 0.0]), tensor(b, &[0.0, 0.0]));
            adam(b, &mut p, &g, &mut m, &mut v, 1);
            if capture {
                assert!(b.capture_begin().unwrap());
                adam(b, &mut p, &g, &mut m, &mut v, 2);
                let graph = b.capture_end().unwrap();
                for _ in 2..=5 {
                    b.replay(&graph).unwrap();
                }
            } else {
                for t in 2..=5 {
                    adam(b, &mut p, &g, &mut m, &mut v, t);
                }
            }
            // An eager step after the replays takes the host's count (6).
            adam(b, &mut p, &g, &mut m, &mut v, 6);
            [host(b, &p), host(b, &m), host(b, &v)]
        };
        let (e, g) = (run(&eager, false), run(&graphed, true));
        for (a, b) in e.iter().zip(&g) {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(b), "eager {e:?} vs replayed {g:?}");
        }
    }

    #[test]
    fn a_capture_that_moves_updated_state_fails_and_names_the_op() {
        let b = CudaNativeBackend::emulator();
        let (mut p, g) = (tensor(&b, &[1.0]), tensor(&b, &[0.5]));
        let (mut m, mut v) = (tensor(&b, &[0.0]), tensor(&b, &[0.0]));
        adam(&b, &mut p, &g, &mut m, &mut v, 1);
        let held = p.clone(); // another holder: the in-place update must copy, so p moves
        assert!(b.capture_begin().unwrap());
        let cfg = AdamConfig { lr: 0.1, beta1: 0.5, beta2: 0.9, eps: 1e-8 };
        let e = b.adam_step_all(&mut [AdamSlot { param: &mut p, grad: &g, exp_avg: &mut m, exp_avg_sq: &mut v }], &cfg, 2).unwrap_err();
        assert!(e.to_string().contains("adam_step_all copied a tensor that another holder shared"), "{e}");
        let e = b.capture_end().unwrap_err().to_string();
        assert!(e.contains("capture_end: adam_step_all copied"), "{e}");
        drop(held);
    }

    #[test]
    fn an_optimizers_first_step_cannot_be_captured() {
        let b = CudaNativeBackend::emulator();
        let (mut p, g) = (tensor(&b, &[1.0]), tensor(&b, &[0.5]));
        let (mut m, mut v) = (tensor(&b, &[0.0]), tensor(&b, &[0.0]));
        assert!(b.capture_begin().unwrap());
        let cfg = AdamConfig { lr: 0.1, beta1: 0.5, beta2: 0.9, eps: 1e-8 };
        let e = b.adam_step_all(&mut [AdamSlot { param: &mut p, grad: &g, exp_avg: &mut m, exp_avg_sq: &mut v }], &cfg, 1).unwrap_err();
        assert!(e.to_string().contains("eagerly before capturing"), "{e}");
        b.capture_end().unwrap();
    }

    #[test]
    fn the_launch_recorder_and_host_backends_do_not_capture() {
        assert!(!CudaNativeBackend::recorder(false).capture_begin().unwrap());
        assert!(!crate::backend::cpu::CpuBackend::new().capture_begin().unwrap());
    }
}
