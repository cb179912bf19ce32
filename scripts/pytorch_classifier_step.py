#!/usr/bin/env python3
"""PyTorch CPU baseline for benches/classifier_step.rs: one full training step (forward in train mode,
F.cross_entropy, backward, Adam lr 1e-3) of the Table 4 classifiers, 2 classes, on random inputs, timed on
the CPU with the same thread count as our bench. Run by hand, never in CI:

  /work/venv-torch29/bin/pip install torch==2.9.0 torchvision==0.24.0   # ~3 GB with the CUDA deps
  /work/venv-torch29/bin/python scripts/pytorch_classifier_step.py [--threads 2] [--batch 32] [--repeats 3]
      [--only inception|small]

- InceptionV3: torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True,
  num_classes=2, transform_input=False) at batch x 3 x 299 x 299. Ours (src/nn/inception_v3.rs) keeps the
  FID variant's pools (Mixed_5b-7b average pools with count_include_pad=False, Mixed_7c's max pool) and has
  no aux head either; every convolution and the fc are identical, so the FLOPs are the same (the pools
  differ only in a divisor or max vs mean: < 0.1 % of the work).
- The small CNN (src/nn/classifier.rs small_cnn): 4 x [Conv 3x3 p1 (no bias) -> BatchNorm2d -> ReLU
  (-> MaxPool2d 2 but after the last)], widths 16, 32, 64, 128, AdaptiveAvgPool2d(1), flatten,
  Dropout(0.5), Linear(128, 2), at batch x 3 x 64 x 64.

Prints one line per measurement: name, median and min seconds per step, images/s at the median, and the
nominal FLOPs of one step (torch.utils.flop_counter: convolutions and matmuls, forward + backward).
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def small_cnn(classes=2):
    layers, cin = [], 3
    widths = [16, 32, 64, 128]
    for i, cout in enumerate(widths):
        layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        if i + 1 < len(widths):
            layers.append(nn.MaxPool2d(2))
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def inception(classes=2):
    return torchvision.models.inception_v3(
        weights=None, aux_logits=False, init_weights=True, num_classes=classes, transform_input=False
    )


def step_fn(model, x, target):
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def step_flops(model, x, target):
    """Nominal FLOPs (2 per multiply-add) of one forward + backward, without touching the model's state."""
    from torch.utils.flop_counter import FlopCounterMode

    saved = {k: v.clone() for k, v in model.state_dict().items()}
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), target).backward()
    model.zero_grad(set_to_none=True)
    model.load_state_dict(saved)
    return counter.get_total_flops()


def measure(name, model, x, target, warmup, repeats):
    flops = step_flops(model, x, target)
    step = step_fn(model, x, target)
    for _ in range(warmup):
        step()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    med = statistics.median(ts)
    print(
        f"{name}: median {med:.3f} s, min {min(ts):.3f} s ({repeats} steps after {warmup} warm-up), "
        f"{x.shape[0] / med:.2f} images/s, {flops / 1e9:.1f} GFLOP/step ({flops / 1e9 / med:.1f} GFLOP/s)",
        flush=True,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--only", choices=["inception", "small"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, threads {torch.get_num_threads()}, batch {a.batch}")
    n = a.batch
    target = torch.arange(n) % 2
    if a.only in (None, "inception"):
        x = torch.rand(n, 3, 299, 299) * 2 - 1
        measure(f"inception_v3 step batch {n}", inception(), x, target, a.warmup, a.repeats)
    if a.only in (None, "small"):
        x = torch.rand(n, 3, 64, 64) * 2 - 1
        measure(f"small_cnn step batch {n}", small_cnn(), x, target, max(a.warmup, 2), max(a.repeats, 10))


if __name__ == "__main__":
    main()
