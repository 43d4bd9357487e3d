#!/usr/bin/env python3
"""Makes test/fixtures/inception/: parity data for sdd-bench's FID Inception against pytorch-fid.

Reference: pytorch-fid's own code (InceptionV3 with use_fid_inception=True, get_activations,
calculate_fid_given_paths), run from a checkout of github.com/mseitzer/pytorch-fid. Its weights
download is replaced by synthetic full-size weights (tools/synthetic_weights.py) that the tests
recreate exactly in TypeScript, so no weights are committed, only:

  weights.json   every tensor's name, shape, rule, and the sha256 of its float32 bytes as
                 tools/convert_pytorch_fid_inception.py writes it (the converter is run on a .pth
                 saved in the published layout, fc and step counters included)
  a/, b/         two small folders of PNG images (64x64, resized to 299 by the model)
  features.safetensors  pool3 features (2048-d, float32) of the images of a and b, from pytorch-fid
  expected.json  FID(a, b) at 2048 dims from pytorch-fid, and what made it

  /usr/bin/python3 tools/make_inception_fixture.py --pytorch-fid PATH_TO_pytorch-fid [--n 12]

Needs torch, torchvision, scipy, PIL (Debian: python3-torch python3-torchvision python3-scipy python3-pil).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_io  # noqa: E402
import synthetic_weights as sw  # noqa: E402


def rule(name, shape):
    """The stand-in's value rule per tensor: He-uniform convolutions, BatchNorm near identity."""
    if name.endswith("conv.weight"):
        fan_in = int(np.prod(shape[1:]))
        return ["uniform", float(np.sqrt(6.0 / fan_in))]
    if name.endswith("bn.weight"):
        return ["around", 1.0, 0.1]
    if name.endswith("bn.running_var"):
        return ["around", 1.0, 0.2]
    if name.endswith("bn.bias") or name.endswith("bn.running_mean"):
        return ["uniform", 0.1]
    if name == "fc.weight":
        return ["uniform", 0.01]
    if name == "fc.bias":
        return ["uniform", 0.0]
    raise ValueError(name)


def synthetic_state(model):
    import torch

    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.zeros_like(v)
        else:
            out[k] = torch.from_numpy(sw.values(k, list(v.shape), rule(k, list(v.shape))))
    return out


def images(folder, n, seed, tint):
    """n smooth random 64x64 RGB images (low-resolution noise upscaled, plus a tint)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        low = rng.uniform(0, 255, (8, 8, 3)).astype(np.uint8)
        im = np.asarray(Image.fromarray(low).resize((64, 64), Image.BICUBIC)).astype(np.float64)
        im = np.clip(im * 0.8 + tint + rng.normal(0, 8, im.shape), 0, 255).astype(np.uint8)
        Image.fromarray(im).save(os.path.join(folder, f"{i:03d}.png"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pytorch-fid", required=True, help="a checkout of github.com/mseitzer/pytorch-fid")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "test", "fixtures", "inception"))
    ap.add_argument("--n", type=int, default=12, help="images per folder")
    a = ap.parse_args()
    sys.path.insert(0, os.path.join(a.pytorch_fid, "src"))
    import torch
    import torchvision.models.inception as tvi
    from pytorch_fid import fid_score, inception

    torch.set_grad_enabled(False)
    rev = (
        subprocess.run(["git", "-C", a.pytorch_fid, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        or "unknown"
    )

    # pytorch-fid builds its Inception, then loads the downloaded state dict: hand it ours instead.
    state: dict[str, Any] = {}
    original = tvi.Inception3.load_state_dict

    def load_synthetic(self, sd, strict=True):
        if sd is not SENTINEL:
            return original(self, sd, strict)
        state.update(synthetic_state(self))
        return original(self, state, True)

    SENTINEL = object()
    inception.load_state_dict_from_url = lambda *args, **kw: SENTINEL
    tvi.Inception3.load_state_dict = load_synthetic

    out = os.path.abspath(a.out)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    images(os.path.join(out, "a"), a.n, 1, 0.0)
    images(os.path.join(out, "b"), a.n, 2, 30.0)

    model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    tensors = sw.through_converter(state, "convert_pytorch_fid_inception.py", "pt_inception-synthetic.pth", rule, out)

    feats = {}
    for d in ("a", "b"):
        files = sorted(os.path.join(out, d, f) for f in os.listdir(os.path.join(out, d)))
        act = fid_score.get_activations(files, model, batch_size=a.n, dims=2048, device="cpu", num_workers=0)
        feats[d] = act.astype(np.float32)
    fid = fid_score.calculate_fid_given_paths(
        [os.path.join(out, "a"), os.path.join(out, "b")], a.n, "cpu", 2048, num_workers=0
    )

    st_io.save(os.path.join(out, "features.safetensors"), feats)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(
            {
                "reference": f"pytorch-fid {rev[:12]} "
                "(InceptionV3 use_fid_inception, get_activations, calculate_fid_given_paths), "
                f"torch {torch.__version__}, CPU float32; FID in float64 (scipy sqrtm)",
                "fid": float(fid),
            },
            f,
            indent=1,
        )
    print(f"{out}: {len(tensors)} tensors, {2 * a.n} images, FID {fid:.6f}, feature mean {feats['a'].mean():.4f}")


if __name__ == "__main__":
    main()
