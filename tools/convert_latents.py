#!/usr/bin/env python3
"""Converts a file of W+ codes saved by PyTorch (StyleCLIP's e4e inversions of CelebA-HQ test
faces, test_faces.pt / train_faces.pt: a tensor [N, 18, 512]) to safetensors {"wplus": [N, 18, 512]}
for sdd-bench's `world: paper` (roles `codes` and `train_codes`).

  python3 tools/convert_latents.py test_faces.pt test_faces.safetensors

Needs torch (Debian: apt-get install python3-torch; then /usr/bin/python3).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402


def convert(src, dst):
    import torch

    w = torch.load(src, map_location="cpu")
    if isinstance(w, dict) and len(w) == 1:
        w = next(iter(w.values()))
    if not torch.is_tensor(w) or w.ndim != 3:
        sys.exit(
            f"{src}: expected one tensor of W+ codes [N, levels, dim], "
            f"got {type(w).__name__}{list(w.shape) if torch.is_tensor(w) else ''}"
        )
    keep = {"wplus": w.detach().float().numpy()}
    st_io.save(dst, keep, {"source": os.path.basename(src), "format": "wplus"})
    return keep


if __name__ == "__main__":
    st_io.converter_main(__doc__, convert)
