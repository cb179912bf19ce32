#!/usr/bin/env python3
"""PyTorch eager baseline for the GPU benches (benches/train_step.rs, group `<backend>/train_step`): the same
DCGAN iteration and WGAN-GP critic / generator iterations as src/train/{dcgan,wgan_gp}.rs (the PyTorch DCGAN
tutorial's models: nz 100, ngf = ndf = 64, 64x64 images; batch 128 by default), on CUDA when PyTorch sees a
GPU, else on the CPU. On CUDA every iteration is timed with CUDA events (start/end recorded on the stream,
then synchronized), so the time is the GPU's, launch overhead included, as our bench's op-then-sync.

Run by scripts/gpu-check.sh; by hand:

  python3 scripts/pytorch_step_baseline.py [--batch 128] [--repeats 20] [--warmup 5] [--device cuda|cpu]
  [--tf32]  (off by default: our kernels are plain f32 FMA, so is the fair baseline)

Prints a header (torch version, device, TF32 / cuDNN settings), then one line per iteration kind:
  <name>: median <ms> ms, min <ms> ms, mean <ms> ms (<repeats> runs, batch <N>, <device>)
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn


def generator(nz, ngf, nc=3):
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())


def discriminator(ndf, nc=3, critic=False):
    # The DCGAN discriminator; WGAN-GP's critic swaps BatchNorm for affine InstanceNorm (a gradient penalty
    # is per sample) and drops the sigmoid.
    norm = (lambda c: nn.InstanceNorm2d(c, affine=True)) if critic else nn.BatchNorm2d
    layers = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
              nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), norm(ndf * 2), nn.LeakyReLU(0.2),
              nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), norm(ndf * 4), nn.LeakyReLU(0.2),
              nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), norm(ndf * 8), nn.LeakyReLU(0.2),
              nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False)]
    if not critic:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


class frozen:
    """Turns off a network's parameter gradients for a block (the other network's update)."""

    def __init__(self, net):
        self.params = list(net.parameters())

    def __enter__(self):
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc):
        for p in self.params:
            p.requires_grad_(True)


def measure(name, fn, device, repeats, warmup, batch):
    for _ in range(warmup):
        fn()
    ts = []
    if device.type == "cuda":
        torch.cuda.synchronize()
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            ts.append(start.elapsed_time(end))  # ms
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
    print(f"{name}: median {statistics.median(ts):.3f} ms, min {min(ts):.3f} ms, mean {statistics.mean(ts):.3f} ms "
          f"({repeats} runs, batch {batch}, {device})", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", choices=["cuda", "cpu"], default=None)
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls / convolutions (PyTorch's own default for cuDNN convs)")
    a = ap.parse_args()
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"cpu, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, device {device} ({name}), batch {a.batch}, tf32 {a.tf32}, "
          f"cudnn {torch.backends.cudnn.version() if device.type == 'cuda' else '-'}", flush=True)

    torch.manual_seed(0)
    nz, n = 100, a.batch
    real = torch.randn(n, 3, 64, 64, device=device)
    noise = torch.randn(n, nz, 1, 1, device=device)

    # DCGAN: nn.BCELoss, Adam(2e-4, betas (0.5, 0.999)); D on real, then on detached fakes, then G through D.
    G, D = generator(nz, 64).to(device), discriminator(64).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), foreach=True)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), foreach=True)
    bce = nn.BCELoss()
    ones, zeros = torch.ones(n, device=device), torch.zeros(n, device=device)

    def dcgan_step():
        D.zero_grad(set_to_none=True)
        out = D(real).view(-1)
        bce(out, ones).backward()
        d_x = out.mean()
        fake = G(noise)
        out = D(fake.detach()).view(-1)
        bce(out, zeros).backward()
        d_g_z1 = out.mean()
        opt_d.step()
        G.zero_grad(set_to_none=True)
        with frozen(D):  # ours back-propagates through D without forming D's parameter gradients
            out = D(fake).view(-1)
            bce(out, ones).backward()
        d_g_z2 = out.mean()
        opt_g.step()
        # Our step reads the losses and D(x), D(G(z)) back to the host every iteration; so does this one.
        return float(d_x), float(d_g_z1), float(d_g_z2)

    measure("dcgan iteration", dcgan_step, device, a.repeats, a.warmup, n)

    # WGAN-GP: λ = 10, Adam(1e-4, betas (0.5, 0.9)), per-sample α; the penalty's double backward.
    G2, C = generator(nz, 64).to(device), discriminator(64, critic=True).to(device)
    opt_g2 = torch.optim.Adam(G2.parameters(), lr=1e-4, betas=(0.5, 0.9), foreach=True)
    opt_c = torch.optim.Adam(C.parameters(), lr=1e-4, betas=(0.5, 0.9), foreach=True)
    alpha = ((torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n).view(n, 1, 1, 1)

    def critic_step():
        C.zero_grad(set_to_none=True)
        with torch.no_grad():
            fake = G2(noise)
        loss = C(fake).mean() - C(real).mean()
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        c = C(x_hat)
        (g,) = torch.autograd.grad(c, x_hat, torch.ones_like(c), create_graph=True)
        gp = 10.0 * ((g.reshape(n, -1).norm(2, dim=1) - 1) ** 2).mean()
        (loss + gp).backward()
        opt_c.step()
        return float(loss), float(gp)

    def generator_step():
        G2.zero_grad(set_to_none=True)
        with frozen(C):
            loss = -C(G2(noise)).mean()
            loss.backward()
        opt_g2.step()
        return float(loss)

    measure("wgan-gp critic iteration", critic_step, device, a.repeats, a.warmup, n)
    measure("wgan-gp generator iteration", generator_step, device, a.repeats, a.warmup, n)


if __name__ == "__main__":
    main()
