#!/usr/bin/env python3
"""Golden files for the classifier's ops (tests/golden/ops/<case>.safetensors), in ../shared/golden/README.md's
format: metadata `op`, `params` (JSON), `tol` (JSON: output name -> relative L2 bar), `made_with`; tensors
`in.*` and `out.*`, all float64. Random tensors only (torch.manual_seed per case), computed in float64 by
PyTorch; gradients by autograd of (y * dy).sum() (of the loss itself for cross_entropy).

Ops: max_pool2d, avg_pool2d, global_avg_pool2d, concat_channels, linear, cross_entropy, dropout.
Max pooling's inputs are well-separated distinct values (a shuffled ramp), so that no window has a tie even
after rounding to f32 and an f32 backend picks the same maxima. Tolerances: 1e-6 (1e-5 for linear), which an
f32 implementation meets.

The safetensors files are written by hand (8-byte little-endian header length, JSON header padded with spaces
to a multiple of 8, raw little-endian data), so that no `safetensors` package is needed; the script reads
every file back to check it.

    /usr/bin/python3 scripts/make_classifier_golden.py   # needs torch (Debian's python3-torch 1.13) and numpy
"""
import json
import pathlib
import struct
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "ops"
MADE_WITH = f"torch {torch.__version__}, numpy {np.__version__}"
WRITTEN = []


def save(path, tensors, metadata):
    """A safetensors file: tensors (name -> float64 tensor) in name order, metadata (str -> str)."""
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float64).contiguous()
        raw = t.numpy().astype("<f8").tobytes()
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)


def load(path):
    """Reads back a file written by `save`: (tensors as float64 numpy arrays, metadata)."""
    data = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__")
    body = data[8 + n:]
    end = 0
    tensors = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        a, b = info["data_offsets"]
        assert info["dtype"] == "F64" and a == end, (name, info)
        tensors[name] = np.frombuffer(body[a:b], dtype="<f8").reshape(info["shape"])
        end = b
    assert end == len(body), "trailing bytes"
    return tensors, meta


def write(name, op, params, tensors, tol):
    assert set(tol) <= set(tensors), (name, tol)
    meta = {"op": op, "params": json.dumps(params, sort_keys=True), "tol": json.dumps(tol, sort_keys=True),
            "made_with": MADE_WITH}
    path = OUT / f"{name}.safetensors"
    save(path, tensors, meta)
    back, back_meta = load(path)
    assert back_meta == meta
    for k, v in tensors.items():
        assert np.array_equal(back[k], v.detach().numpy()), (name, k)
    WRITTEN.append((name, op, path.stat().st_size))


def seed(name):
    torch.manual_seed(zlib.crc32(name.encode()))


def grad_of(y, dy, *inputs):
    """Autograd of (y * dy).sum() with respect to `inputs`."""
    return torch.autograd.grad((y * dy).sum(), inputs)


# ---------------------------------------------------------------- pooling

def distinct(*shape):
    """Shuffled, jittered ramp over [-2, 2): every pair of values differs by at least 2/n (no ties, in f32 too)."""
    n = int(np.prod(shape))
    v = (torch.randperm(n).double() + 0.25 + 0.5 * torch.rand(n)) * (4.0 / n) - 2.0
    return v.reshape(shape)


def max_pool_cases():
    # (name, x shape, kernel, stride, padding)
    for name, shape, k, s, p in [
        ("max_pool2d_3x3_s2", (2, 3, 13, 13), (3, 3), (2, 2), (0, 0)),
        ("max_pool2d_3x3_s1_p1", (2, 3, 9, 9), (3, 3), (1, 1), (1, 1)),
        ("max_pool2d_2x2_s2", (2, 3, 8, 8), (2, 2), (2, 2), (0, 0)),
    ]:
        seed(name)
        x = distinct(*shape).requires_grad_()
        y = F.max_pool2d(x, k, s, p)
        dy = torch.randn(y.shape)
        (dx,) = grad_of(y, dy, x)
        write(name, "max_pool2d", {"kernel": list(k), "stride": list(s), "padding": list(p)},
              {"in.x": x, "in.dy": dy, "out.y": y, "out.dx": dx}, {"out.y": 1e-6, "out.dx": 1e-6})


def avg_pool_cases():
    # (name, x shape, kernel, stride, padding, count_include_pad)
    for name, shape, k, s, p, include in [
        ("avg_pool2d_3x3_s1_p1_exclude_pad", (2, 3, 9, 9), (3, 3), (1, 1), (1, 1), False),
        ("avg_pool2d_3x3_s1_p1_include_pad", (2, 3, 9, 9), (3, 3), (1, 1), (1, 1), True),
        ("avg_pool2d_2x2_s2", (2, 3, 8, 8), (2, 2), (2, 2), (0, 0), True),
        ("avg_pool2d_3x3_s2", (2, 3, 13, 13), (3, 3), (2, 2), (0, 0), False),
    ]:
        seed(name)
        x = torch.randn(shape).requires_grad_()
        y = F.avg_pool2d(x, k, s, p, ceil_mode=False, count_include_pad=include)
        dy = torch.randn(y.shape)
        (dx,) = grad_of(y, dy, x)
        write(name, "avg_pool2d",
              {"kernel": list(k), "stride": list(s), "padding": list(p), "count_include_pad": include},
              {"in.x": x, "in.dy": dy, "out.y": y, "out.dx": dx}, {"out.y": 1e-6, "out.dx": 1e-6})


def global_avg_pool_case():
    name = "global_avg_pool2d"
    seed(name)
    x = torch.randn(2, 5, 7, 6).requires_grad_()
    y = F.adaptive_avg_pool2d(x, 1).flatten(1)
    dy = torch.randn(y.shape)
    (dx,) = grad_of(y, dy, x)
    write(name, "global_avg_pool2d", {}, {"in.x": x, "in.dy": dy, "out.y": y, "out.dx": dx},
          {"out.y": 1e-6, "out.dx": 1e-6})


def concat_case():
    name = "concat_channels"
    seed(name)
    xs = [torch.randn(2, c, 5, 4).requires_grad_() for c in (3, 1, 4)]
    y = torch.cat(xs, dim=1)
    dy = torch.randn(y.shape)
    dxs = grad_of(y, dy, *xs)
    tensors = {"in.dy": dy, "out.y": y}
    for i, (x, dx) in enumerate(zip(xs, dxs)):
        tensors[f"in.x{i}"] = x
        tensors[f"out.dx{i}"] = dx
    write(name, "concat_channels", {}, tensors, {k: 1e-6 for k in ["out.y", "out.dx0", "out.dx1", "out.dx2"]})


# ---------------------------------------------------------------- the head

def linear_cases():
    for name, n, fin, fout in [("linear_head", 4, 64, 2), ("linear_wide", 3, 17, 10)]:
        seed(name)
        x = torch.randn(n, fin).requires_grad_()
        w = (torch.randn(fout, fin) / fin ** 0.5).requires_grad_()
        b = (0.1 * torch.randn(fout)).requires_grad_()
        y = F.linear(x, w, b)
        dy = torch.randn(y.shape)
        dx, dw, db = grad_of(y, dy, x, w, b)
        write(name, "linear", {}, {"in.x": x, "in.w": w, "in.b": b, "in.dy": dy, "out.y": y, "out.dx": dx,
                                   "out.dw": dw, "out.db": db},
              {k: 1e-5 for k in ["out.y", "out.dx", "out.dw", "out.db"]})


def cross_entropy_cases():
    for name, n, k, scale in [("cross_entropy_2class", 8, 2, 2.0), ("cross_entropy_10class", 5, 10, 1.5),
                              ("cross_entropy_large_logits", 4, 3, 50.0)]:
        seed(name)
        logits = (scale * torch.randn(n, k)).requires_grad_()
        target = torch.randint(0, k, (n,))
        loss = F.cross_entropy(logits, target)
        (dlogits,) = torch.autograd.grad(loss, logits)
        if scale > 10:
            # Some rows confidently wrong, so the loss is far from 0 and its relative bar means something in f32.
            assert loss.item() > 1.0, loss
        write(name, "cross_entropy", {"reduction": "mean"},
              {"in.logits": logits, "in.target": target.double(), "out.loss": loss, "out.dlogits": dlogits},
              {"out.loss": 1e-6, "out.dlogits": 1e-6})


def dropout_cases():
    for name, shape, p in [("dropout_p0.5", (4, 16), 0.5), ("dropout_p0.2", (2, 3, 4, 4), 0.2)]:
        seed(name)
        x = torch.randn(shape)
        assert (x != 0).all()
        x.requires_grad_()
        y = F.dropout(x, p, training=True)
        mask = (y != 0).double()
        assert torch.allclose(y, x * mask / (1 - p), rtol=1e-15, atol=0)
        assert 0 < mask.sum() < mask.numel()
        dy = torch.randn(y.shape)
        (dx,) = grad_of(y, dy, x)
        write(name, "dropout", {"p": p}, {"in.x": x, "in.mask": mask, "in.dy": dy, "out.y": y, "out.dx": dx},
              {"out.y": 1e-6, "out.dx": 1e-6})


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    max_pool_cases()
    avg_pool_cases()
    global_avg_pool_case()
    concat_case()
    linear_cases()
    cross_entropy_cases()
    dropout_cases()
    total = 0
    for name, op, size in WRITTEN:
        print(f"{size:8d}  {op:18s} {name}")
        assert size < 40_000, name
        total += size
    print(f"{total:8d}  total, {len(WRITTEN)} files in {OUT}")
    assert total < 400_000
