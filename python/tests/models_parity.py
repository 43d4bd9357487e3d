"""The torch twins' side of test/torch_models.test.ts: loads the toyfaces World from the zoo folder,
reads the inputs the TS test wrote (.npy) and writes each case's output, and the gradient of
sum(R * output) w.r.t. the case's input (R: the test's fixed random projection), as .npy.

usage: models_parity.py <dir> <zoo_dir>; dir holds the inputs and cases.json, outputs go to dir/py/.
"""
import json
import pathlib
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from sdd_torch.models import zoo_specs
from sdd_torch.models.diffae import DiffAe
from sdd_torch.models.stylegen import StyleGen
from sdd_torch.worlds.toyfaces import World

Case = Tuple[Callable[[Dict[str, Tensor]], Tensor], Optional[str]]


def cases(world: World, meta: Dict[str, Any]) -> Dict[str, Case]:
    """name -> (output from the inputs, the input its gradient is taken for, or None)."""
    assert world.style is not None and world.diffae is not None
    style: StyleGen = world.style
    diffae: DiffAe = world.diffae
    heads: List[str] = list(meta["heads"])
    directions: List[Dict[str, Any]] = list(meta["directions"])

    def logits(i: Dict[str, Tensor]) -> Tensor:
        by_name = world.featnet.logits(i["features"])
        return torch.cat([by_name[h] for h in heads], dim=1)

    def direction(i: Dict[str, Tensor]) -> Tensor:
        return torch.stack(
            [
                diffae.direction(
                    str(d["attribute"]), int(d["target"]), None if d["source"] is None else int(d["source"])
                )
                for d in directions
            ]
        )

    return {
        "vae_encode": (lambda i: world.encode(i["x"]), "x"),
        "vae_encode_noise": (lambda i: world.encode(i["x"], i["noise"]), "x"),
        "vae_decode": (lambda i: world.decode(i["z"]), "z"),
        "clip_image": (lambda i: world.clip.image_embed(i["x"]), "x"),
        "clip_text": (lambda i: world.clip.text_embed(i["ids"].long()), None),
        "text_context": (lambda i: world.text_condition(i["ids"].long())[0], None),
        "text_mask": (lambda i: world.text_condition(i["ids"].long())[1], None),
        "ldm_eps": (lambda i: world.eps(i["zt"], i["t"], i["context"], i["mask"]), "zt"),
        "style_generate": (lambda i: style.generate(i["w"]), "w"),
        "style_encode": (lambda i: style.encode(i["x"]), "x"),
        "idnet_embed": (lambda i: world.identity.embed(i["x"]), "x"),
        "featnet_features": (lambda i: world.featnet.features(i["x"]), "x"),
        "featnet_logits": (logits, None),
        "diffae_encode": (lambda i: diffae.encode(i["x"]), "x"),
        "diffae_eps": (lambda i: diffae.eps(i["zt"], i["t"], i["zsem"]), "zt"),
        "diffae_normalise": (lambda i: diffae.normalise(i["zsem"]), None),
        "diffae_denormalise": (lambda i: diffae.denormalise(i["zsem"]), None),
        "diffae_direction": (direction, None),
    }


def main(folder: pathlib.Path, zoo: pathlib.Path) -> None:
    torch.manual_seed(0)
    meta = json.loads((folder / "cases.json").read_text())
    t0 = time.time()
    world = World(zoo_specs(zoo), torch.device("cpu"))
    load_s = time.time() - t0
    inputs = {p.stem: torch.from_numpy(np.load(p)) for p in folder.glob("in_*.npy")}
    inputs = {k[len("in_") :]: v for k, v in inputs.items()}
    out = folder / "py"
    out.mkdir(exist_ok=True)
    table = cases(world, meta)
    t1 = time.time()
    for name in meta["cases"]:
        fn, wrt = table[name]
        if wrt is None:
            with torch.no_grad():
                y = fn(inputs)
        else:
            given = dict(inputs)
            given[wrt] = inputs[wrt].clone().requires_grad_(True)
            y = fn(given)
            r = torch.from_numpy(np.load(folder / f"proj_{name}.npy"))
            (g,) = torch.autograd.grad((y * r).sum(), given[wrt])
            np.save(out / f"grad_{name}.npy", g.numpy().astype(np.float32))
        np.save(out / f"out_{name}.npy", y.detach().numpy().astype(np.float32))
    print(
        json.dumps(
            {"load_s": round(load_s, 2), "run_s": round(time.time() - t1, 2), "threads": torch.get_num_threads()}
        )
    )


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]))
