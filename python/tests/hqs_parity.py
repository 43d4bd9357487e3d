"""The torch side of test/torch_sdd.test.ts's HQS check: the scan (python/sdd_torch/sdd/hqs.py) on
the images and noise the TS test wrote, with the zoo's World on the CPU; writes the per-image
statistics as JSON.

usage: hqs_parity.py <dir> <zoo_dir>; dir holds images.npy, sds.npy, vae.npy and meta.json
({timesteps, alpha_bar, weight, guidance, top_k_per, tokens, negative}); writes dir/py_stats.json.
"""
import json
import pathlib
import sys

import numpy as np
import torch

from sdd_torch.models import zoo_specs
from sdd_torch.sdd.guidance import GuidanceSettings, condition
from sdd_torch.sdd.hqs import hqs_scan
from sdd_torch.worlds.toyfaces import World


def main(folder: str, zoo: str) -> None:
    root = pathlib.Path(folder)
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    device = torch.device("cpu")
    world = World(zoo_specs(pathlib.Path(zoo)), device)
    images = torch.from_numpy(np.load(root / "images.npy"))
    gs = GuidanceSettings(meta["guidance"], str(meta["top_k_per"]))
    cond = condition(world, meta["tokens"], str(meta["negative"]), images.shape[0], device)
    stats = hqs_scan(world, images, [int(t) for t in meta["timesteps"]], meta["alpha_bar"], meta["weight"], cond, gs, np.load(root / "sds.npy"), np.load(root / "vae.npy"))
    (root / "py_stats.json").write_text(json.dumps(stats), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
