#!/usr/bin/env python3
"""Converts pytorch-fid's FID Inception weights (.pth) to the safetensors file `cxr-gan fid` reads.

    python3 scripts/convert_fid_weights.py pt_inception-2015-12-05-6726825d.pth pt_inception_fid.safetensors

The input is pytorch-fid's release file
https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
(a state_dict of its fid_inception_v3()). The output keeps its names (`Conv2d_1a_3x3.conv.weight`,
`Mixed_7c.branch_pool.bn.running_var`, ...) as float32, without the unused logits layer (`fc.*`) and
BatchNorm's `num_batches_tracked` counters. Needs torch and safetensors. Then pass it with --weights, set
CXR_GAN_FID_WEIGHTS to it, or copy it to ~/.cache/cxr-gan/pt_inception_fid.safetensors.
"""
import sys

import torch
from safetensors.torch import save_file


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    sd = torch.load(src, map_location="cpu")
    if "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    out = {k: v.detach().float().contiguous() for k, v in sd.items()
           if torch.is_tensor(v) and not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    if "Conv2d_1a_3x3.conv.weight" not in out:
        sys.exit(f"{src}: no Conv2d_1a_3x3.conv.weight; not pytorch-fid's FID Inception state_dict")
    save_file(out, dst, metadata={"naming": "pytorch-fid fid_inception_v3() state_dict (fc.* omitted)", "format": "pt"})
    print(f"wrote {len(out)} tensors to {dst}")


if __name__ == "__main__":
    main()
