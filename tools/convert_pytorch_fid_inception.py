#!/usr/bin/env python3
"""Converts pytorch-fid's Inception weights (pt_inception-2015-12-05-6726825d.pth, a PyTorch
pickle: github.com/mseitzer/pytorch-fid/releases/download/fid_weights/) to safetensors for
`sdd fid --features inception --weights FILE` and the `inception` checkpoint role.

The tensor names stay those of the file (torchvision Inception3 names, e.g.
Mixed_5b.branch1x1.conv.weight); tensors sdd-bench's model does not use are left out: the 1008-way
classifier (fc.*) and BatchNorm's step counters (*.num_batches_tracked). Values are kept in
float32, layouts unchanged (convolutions OIHW; sdd-bench transposes on load).

  python3 tools/convert_pytorch_fid_inception.py pt_inception-2015-12-05-6726825d.pth inception.safetensors

Needs torch (Debian: apt-get install python3-torch; then /usr/bin/python3).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

EXPECTED = 94 * 5  # 94 BasicConv2d blocks: conv.weight + bn weight, bias, running_mean, running_var


def convert(src, dst):
    import torch

    state = torch.load(src, map_location="cpu")
    if not isinstance(state, dict):
        sys.exit(f"{src}: not a state dict (got {type(state).__name__})")
    keep = {k: v for k, v in state.items() if not k.startswith("fc.") and not k.endswith(".num_batches_tracked")}
    if "Mixed_7c.branch_pool.conv.weight" not in keep or len(keep) != EXPECTED:
        sys.exit(
            f"{src}: not pytorch-fid's Inception "
            f"({len(keep)} tensors after dropping fc and counters, expected {EXPECTED})"
        )
    st_io.save(
        dst,
        {k: v.detach().to(torch.float32).numpy() for k, v in keep.items()},
        {"source": os.path.basename(src), "format": "pytorch-fid-inception"},
    )
    return keep


if __name__ == "__main__":
    st_io.converter_main(__doc__, convert)
