//! The backend a generic op test runs on: the backend itself (poisoned: fresh buffers start as NaN, so an
//! element a kernel forgets to write fails the comparison), a plain twin on the same device, and how large
//! the test shapes go there. A backend without a device here is skipped, unless `CXR_GAN_REQUIRE_BACKEND`
//! (a comma list, e.g. `cuda,wgpu`) names it: then its absence is a failure.

use cubecl::Runtime;
use cxr_gan::backend::cube::CubeBackend;
use cxr_gan::backend::{backend_required, Backend, REQUIRE_BACKEND_ENV};
use cxr_gan::Tensor;

/// How large the test shapes go on one backend: `Full` (cpu: the DCGAN's real widths, Inception's real
/// channel counts) or `Small` (lavapipe runs every kernel on the CPU through Vulkan, slowly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sizes {
    Full,
    Small,
}

impl Sizes {
    pub fn pick<T>(self, full: T, small: T) -> T {
        match self {
            Sizes::Full => full,
            Sizes::Small => small,
        }
    }
}

/// One backend under test. Derefs to the poisoned backend, so a check calls `b.conv2d(..)` directly.
pub struct BackendUnderTest<B: Backend> {
    /// The name the op tests instantiate it under (`cpu`, `wgpu`, `cuda`, ...).
    pub name: &'static str,
    pub backend: B,
    /// The same backend without poisoning, for checks that two runs agree bit for bit.
    pub plain: B,
    pub sizes: Sizes,
    /// The relative L2 error convolutions may have against the oracle (1e-5 in f32; more in TF32).
    pub conv_tol: f64,
}

impl<B: Backend> std::ops::Deref for BackendUnderTest<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.backend
    }
}

impl<B: Backend> BackendUnderTest<B> {
    pub fn up(&self, t: &Tensor) -> B::Tensor {
        self.backend.upload(t).unwrap()
    }
    pub fn down(&self, t: &B::Tensor) -> Tensor {
        self.backend.download(t).unwrap()
    }
}

/// `made` is (plain, poisoned) or why the backend cannot run here. Without it the test prints
/// "skipped: <reason>" and passes, unless the backend is required.
pub fn under_test<B: Backend>(
    name: &'static str,
    sizes: Sizes,
    conv_tol: f64,
    made: cxr_gan::Result<(B, B)>,
) -> Option<BackendUnderTest<B>> {
    match made {
        Ok((plain, backend)) => Some(BackendUnderTest { name, backend, plain, sizes, conv_tol }),
        Err(e) if backend_required(name) => {
            panic!("{REQUIRE_BACKEND_ENV} requires the {name} backend, but it cannot run here: {e}")
        }
        Err(e) => {
            println!("skipped: {name}: {e}");
            None
        }
    }
}

/// A CubeCL backend as (plain, poisoned) twins sharing one client.
pub fn cube_twins<R: Runtime>(b: CubeBackend<R>) -> (CubeBackend<R>, CubeBackend<R>) {
    (b.clone().unpoisoned(), b.poisoned())
}
