"""The torch side of test/torch_paper_gan.test.ts: the StyleGAN2 and IR-SE50 twins
(sdd_torch.models.stylegan2 / arcface) on the weights and inputs the TS test wrote.

  gan_parity.py DIR   loads DIR/stylegan2.safetensors and DIR/ir_se50.safetensors (the committed
                      fixtures' synthetic weights) and DIR/tiny_stylegan2.safetensors, DIR/tiny_ir.safetensors
                      (paper-random-tiny's shapes: the architecture read from the file, TINY_STAGES),
                      reads DIR/in_*.npy and writes each case's output to DIR/py/<case>.npy;
                      prints one JSON line of timings.

Images cross the boundary NHWC (as the TS models take and give them); gradients are of
sum(probe * output) w.r.t. the case's input, the probe being one of the inputs.
"""
import copy
import json
import pathlib
import sys
import time
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch
from torch import Tensor

from sdd_torch.models import arcface, stylegan2

TINY_STAGES: List[Tuple[int, int]] = [(1, 16), (1, 16), (1, 32), (1, 32)]
PSI = 0.7


def grad_of(f: Callable[[Tensor], Tensor], x: Tensor, probe: Tensor) -> Tuple[Tensor, Tensor]:
    """f(x) and d sum(probe * f(x)) / dx."""
    given = x.clone().requires_grad_(True)
    y = f(given)
    (g,) = torch.autograd.grad((y * probe).sum(), given)
    return y.detach(), g


def run(folder: pathlib.Path) -> None:
    t0 = time.time()
    g = stylegan2.load_stylegan2(str(folder / "stylegan2.safetensors"))
    net = arcface.load_ir_se50(str(folder / "ir_se50.safetensors"))
    tiny_g = stylegan2.load_stylegan2(str(folder / "tiny_stylegan2.safetensors"))
    tiny_net = arcface.load_ir_se50(str(folder / "tiny_ir.safetensors"), stages=TINY_STAGES)
    load_s = time.time() - t0
    i = {p.stem[len("in_"):]: torch.from_numpy(np.load(p)) for p in folder.glob("in_*.npy")}
    out: Dict[str, Tensor] = {}
    t1 = time.time()
    with torch.no_grad():
        out["w"] = g.mapping(i["z"])
        w = g.truncate(out["w"], PSI)
        out["truncated"] = g.synthesis(w[:, None].expand(-1, g.levels, -1))
        out["embeddings"] = net(i["faces"])
        out["tiny_w"] = tiny_g.mapping(i["tiny_z"])
    out["images"], out["wplus_grad"] = grad_of(g.synthesis, i["wplus"], i["probe"])
    out["id_embeddings"], out["id_grad"] = grad_of(net.id_embed, i["id_image"], i["id_probe"])
    out["tiny_images"], out["tiny_wplus_grad"] = grad_of(tiny_g.synthesis, i["tiny_wplus"], i["tiny_probe"])
    # That gradient is ill-conditioned in float32: float64 is the truth both engines are held to.
    g64 = copy.deepcopy(tiny_g).double()
    out["tiny_wplus_grad_f64"] = grad_of(g64.synthesis, i["tiny_wplus"].double(), i["tiny_probe"].double())[1]
    # SDD's identity term: the tiny ArcFace of the tiny generator's [0, 1] images, through W+.
    out["tiny_id"], out["tiny_id_grad"] = grad_of(lambda v: tiny_net.embed(tiny_g.synthesis(v) * 0.5 + 0.5), i["tiny_wplus"], i["tiny_id_probe"])
    run_s = time.time() - t1
    dest = folder / "py"
    dest.mkdir(exist_ok=True)
    for name, v in out.items():
        np.save(dest / f"{name}.npy", v.numpy().astype(np.float32))
    print(json.dumps({"load_s": round(load_s, 2), "run_s": round(run_s, 2), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    run(pathlib.Path(sys.argv[1]))
