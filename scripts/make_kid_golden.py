#!/usr/bin/env python3
"""Golden files for KID's unbiased MMD² (tests/golden/kid_*.safetensors), in ../shared/golden/README.md's
format. Random features only (no images).

The arithmetic is torch-fidelity 0.3's `metric_kid.py` (`mmd2(..., mmd_est='unbiased')` over
`polynomial_kernel(degree=3, gamma=None -> 1/d, coef0=1)`), written out in numpy so that it runs without
torch; torch-fidelity draws random subsets, so the files hold whole sets (one subset = each whole set).

    python3 scripts/make_kid_golden.py   # needs numpy and safetensors (pip install numpy safetensors)
"""
import json
import pathlib

import numpy as np
from safetensors.numpy import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden"


def polynomial_kernel(x, y, degree=3, coef0=1.0):
    gamma = 1.0 / x.shape[1]  # sklearn's default when gamma is None
    return (x @ y.T * gamma + coef0) ** degree


def mmd2_unbiased(k_xx, k_xy, k_yy):
    # torch-fidelity's mmd2(unit_diagonal=False, mmd_est='unbiased')
    m = k_xx.shape[0]
    diag_x = np.diagonal(k_xx)
    diag_y = np.diagonal(k_yy)
    kt_xx_sum = (k_xx.sum(axis=1) - diag_x).sum()
    kt_yy_sum = (k_yy.sum(axis=1) - diag_y).sum()
    k_xy_sum = k_xy.sum(axis=0).sum()
    return (kt_xx_sum + kt_yy_sum) / (m * (m - 1)) - 2 * k_xy_sum / (m * m)


def case(name, n, d, shift, scale, seed):
    rng = np.random.default_rng(seed)
    f1 = rng.standard_normal((n, d)) * scale + shift
    f2 = np.abs(rng.standard_normal((n, d)))  # Inception features are non-negative (after ReLU + pooling)
    value = mmd2_unbiased(polynomial_kernel(f1, f1), polynomial_kernel(f1, f2), polynomial_kernel(f2, f2))
    meta = {
        "op": "kid_mmd2",
        "params": json.dumps({"degree": 3, "coef0": 1.0, "gamma": "1/d"}),
        "tol": json.dumps({"out.mmd2": 1e-12}),
        "made_with": f"numpy {np.__version__} (torch-fidelity 0.3 metric_kid arithmetic)",
    }
    save_file(
        {"in.features1": f1, "in.features2": f2, "out.mmd2": np.array([value])},
        OUT / f"kid_{name}.safetensors",
        metadata=meta,
    )
    print(name, value)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    case("close", 24, 8, 0.6, 0.5, 1)
    case("shifted", 30, 16, 2.0, 1.0, 2)
    case("wide", 12, 64, 0.1, 0.3, 3)
