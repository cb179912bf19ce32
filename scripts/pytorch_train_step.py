#!/usr/bin/env python3
"""PyTorch CPU baseline for benches/train_step.rs: the same DCGAN iteration and WGAN-GP critic / generator
iterations (PyTorch DCGAN tutorial models, nz 100, ngf = ndf = 64, batch 128, 64x64), timed on the CPU with
the same thread count as our bench. Run by hand, never in CI:

  python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.9.1   # ~3 GB with CUDA deps
  /tmp/torchvenv/bin/python scripts/pytorch_train_step.py [--threads 2] [--batch 128] [--repeats 5]

Prints one line per measurement: name, median seconds, min seconds.
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn


# The same models as the GPU baseline (the PyTorch DCGAN tutorial's), from one place.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_step_baseline import discriminator, generator  # noqa: E402


def timeit(name, fn, repeats):
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    print(f"{name}: median {statistics.median(ts):.3f} s, min {min(ts):.3f} s ({repeats} runs)", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {a.batch}")
    nz, n = 100, a.batch
    real = torch.randn(n, 3, 64, 64)
    noise = torch.randn(n, nz, 1, 1)

    G, D = generator(nz, 64), discriminator(64)
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()
    ones, zeros = torch.ones(n), torch.zeros(n)

    def dcgan_step():
        D.zero_grad()
        bce(D(real).view(-1), ones).backward()
        fake = G(noise)
        bce(D(fake.detach()).view(-1), zeros).backward()
        optD.step()
        G.zero_grad()
        bce(D(fake).view(-1), ones).backward()
        optG.step()

    timeit("dcgan iteration", dcgan_step, a.repeats)

    G2, C = generator(nz, 64), discriminator(64, critic=True)
    optG2 = torch.optim.Adam(G2.parameters(), lr=1e-4, betas=(0.5, 0.9))
    optC = torch.optim.Adam(C.parameters(), lr=1e-4, betas=(0.5, 0.9))
    alpha = torch.rand(n, 1, 1, 1)

    def critic_step():
        C.zero_grad()
        fake = G2(noise).detach()
        loss = C(fake).mean() - C(real).mean()
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        c = C(x_hat)
        (g,) = torch.autograd.grad(c, x_hat, torch.ones_like(c), create_graph=True)
        gp = 10.0 * ((g.reshape(n, -1).norm(2, dim=1) - 1) ** 2).mean()
        (loss + gp).backward()
        optC.step()

    def generator_step():
        G2.zero_grad()
        (-C(G2(noise)).mean()).backward()
        optG2.step()

    timeit("wgan-gp critic iteration", critic_step, a.repeats)
    timeit("wgan-gp generator iteration", generator_step, a.repeats)


if __name__ == "__main__":
    main()
