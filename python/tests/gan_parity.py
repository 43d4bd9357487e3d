"""The torch side of test/torch_paper_gan.test.ts: the StyleGAN2 and IR-SE50 twins
(sdd_torch.models.stylegan2 / arcface) on the weights and inputs the TS test wrote.

  gan_parity.py --full [DEVICE [SIZE]]   the twins at full size (config-f, IR-SE50), float32 against
                      float64 on DEVICE (default cuda when there is one): one JSON line of relative
                      errors and bounds, exit 1 past a bound (a gpu-check step's check).
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
    i = {p.stem[len("in_") :]: torch.from_numpy(np.load(p)) for p in folder.glob("in_*.npy")}
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
    out["tiny_id"], out["tiny_id_grad"] = grad_of(
        lambda v: tiny_net.embed(tiny_g.synthesis(v) * 0.5 + 0.5), i["tiny_wplus"], i["tiny_id_probe"]
    )
    run_s = time.time() - t1
    dest = folder / "py"
    dest.mkdir(exist_ok=True)
    for name, v in out.items():
        np.save(dest / f"{name}.npy", v.numpy().astype(np.float32))
    print(json.dumps({"load_s": round(load_s, 2), "run_s": round(run_s, 2), "threads": torch.get_num_threads()}))


def _trained_like(model: torch.nn.Module, seed: int) -> None:
    """Full-size stand-in weights made less degenerate than the TS initialisers' (as the fixtures'
    rules do): biases and noise strengths N(0, 0.1^2) instead of 0; IR units' last BatchNorm scale
    0.1 and PReLU slopes 0.25 (at scale 1 and slope 1 the 24 units grow the activations ~1.5x each)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("modulation.bias"):
                continue
            if name.endswith(".bias") or name.endswith("noise.weight"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            elif name.endswith("res_layer.4.weight"):
                p.fill_(0.1)
            elif name == "input_layer.2.weight" or name.endswith("res_layer.2.weight"):
                p.fill_(0.25)


def rel(a: Tensor, b: Tensor) -> float:
    """max |a - b| / max |b|."""
    return float((a.double() - b).abs().max() / b.abs().max())


def full(device: torch.device, size: int) -> Dict[str, Dict[str, float]]:
    """The twins at full size (config-f at `size`, IR-SE50) in float32 against themselves in float64
    on the same device (the truth: float32 rounding is all that differs), TF32 off. Forward outputs
    within FULL_FWD; gradients within FULL_GRAD: at full width the W+ gradient's float32 error is
    dominated by leaky-ReLU pre-activations within rounding of 0, whose slope flips (rosinality's own
    float32 gradient is ~1e-3 of max from float64, make_stylegan2_fixture.py; these twins on the
    CPU at 64^2: 1.3e-3, all of it in the levels before the last layer, forwards 1.2e-6 and 4.7e-6)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cfg = stylegan2.StyleGan2Config(size, 512, 8, stylegan2.default_channels(size))
    g = stylegan2.random_stylegan2(cfg, 20261204)
    net = arcface.random_ir_se50(20261205)
    _trained_like(g, 1)
    _trained_like(net, 2)
    gen = torch.Generator().manual_seed(3)
    wplus = torch.rand(1, g.levels, 512, generator=gen) * 2 - 1
    probe = torch.rand(1, size, size, 3, generator=gen) * 2 - 1
    id_probe = torch.rand(1, 512, generator=gen) * 2 - 1
    results: Dict[str, Dict[str, Tensor]] = {}
    for dtype in (torch.float32, torch.float64):
        gd, nd = copy.deepcopy(g).to(device, dtype), copy.deepcopy(net).to(device, dtype)
        w, p, q = (t.to(device, dtype) for t in (wplus, probe, id_probe))
        r: Dict[str, Tensor] = {}
        r["G(W+)"], r["d<probe, G>/dW+"] = grad_of(gd.synthesis, w, p)
        # SDD's identity term: ArcFace's ID-loss embedding of G(W+) in [0, 1], and its W+ gradient.
        r["ID(G(W+))"], r["d<probe, ID(G)>/dW+"] = grad_of(lambda v: nd.embed(gd.synthesis(v) * 0.5 + 0.5), w, q)
        results[str(dtype)] = {k: v.detach().cpu() for k, v in r.items()}
    f32, f64 = results[str(torch.float32)], results[str(torch.float64)]
    return {k: {"rel": rel(f32[k], f64[k]), "bound": FULL_GRAD if k.startswith("d") else FULL_FWD} for k in f32}


# Full size, float32 vs float64 (see full()).
FULL_FWD = 1e-4
FULL_GRAD = 5e-3


if __name__ == "__main__":
    if sys.argv[1] == "--full":
        dev = torch.device(sys.argv[2] if len(sys.argv) > 2 else ("cuda" if torch.cuda.is_available() else "cpu"))
        t = time.time()
        report = full(dev, int(sys.argv[3]) if len(sys.argv) > 3 else 1024)
        print(json.dumps({"device": str(dev), "seconds": round(time.time() - t, 1), **report}))
        sys.exit(0 if all(v["rel"] <= v["bound"] for v in report.values()) else 1)
    run(pathlib.Path(sys.argv[1]))
