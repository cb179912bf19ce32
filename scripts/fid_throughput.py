#!/usr/bin/env python3
"""pytorch-fid's feature-extraction throughput on CPU, to compare with `cargo bench --bench fid`.

Measures what the Rust bench measures: pytorch-fid's InceptionV3 (block 3, the 2048-d pool3 features) on
batches of 50 random uint8 RGB 299x299 images, from uint8 to features (x / 255, the model's own bilinear
resize (an identity at 299) and 2x - 1, the network, the pooled output), float32, eval, no_grad.
Prints images per second.

Usage (run where torch and pytorch-fid are installed; they are not needed by the Rust crate):

    pip install torch pytorch-fid safetensors        # CPU wheels are enough
    python3 scripts/fid_throughput.py --threads 2 [--batch 50] [--batches 5] [--weights FILE]

    # the Rust side, same thread count and batch:
    RAYON_NUM_THREADS=2 cargo bench --bench fid

--weights takes pt_inception_fid.safetensors (the crate's weights file); without it pytorch-fid downloads
its own pt_inception-2015-12-05-6726825d.pth. The weights do not change the timing. Use the same machine and
the same --threads as RAYON_NUM_THREADS for the Rust run.
"""
import argparse
import time

import torch


def load_model(weights):
    import pytorch_fid.inception as pi
    if weights:
        from safetensors.torch import load_file
        sd = load_file(weights)
        sd.setdefault("fc.weight", torch.zeros(1008, 2048))  # the logits layer, unused by FID
        sd.setdefault("fc.bias", torch.zeros(1008))
        pi.load_state_dict_from_url = lambda *a, **k: sd
    return pi.InceptionV3(output_blocks=[3]).eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, required=True, help="torch.set_num_threads (match RAYON_NUM_THREADS)")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--batches", type=int, default=5, help="timed batches after one warm-up batch")
    ap.add_argument("--weights", default=None, help="pt_inception_fid.safetensors (optional)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = load_model(a.weights)
    images = torch.randint(0, 256, (a.batch, 3, 299, 299), dtype=torch.uint8)

    def run():
        with torch.no_grad():
            return model(images.float() / 255.0)[0].squeeze(3).squeeze(2)

    feats = run()  # warm-up
    assert feats.shape == (a.batch, 2048), feats.shape
    times = []
    for _ in range(a.batches):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    best, mean = min(times), sum(times) / len(times)
    print(f"pytorch-fid {torch.__version__}, {a.threads} threads, batch {a.batch} at 299x299:")
    print(f"  mean {a.batch / mean:.2f} images/s ({mean:.3f} s/batch), best {a.batch / best:.2f} images/s")


if __name__ == "__main__":
    main()
