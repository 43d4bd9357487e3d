"""The torch twins on a GPU against the same twins on the CPU (gpu-check.sh step torch-parity).

The CPU twins are held to the TS models in `make test` (test/torch_models.test.ts, ≤ 3e-5 of the
largest value); this closes the chain on the device: every World entry point of
tests/models_parity.py on seeded inputs, fp32 with TF32 off on both sides, max |Δ| / max |CPU|
per case (stated bound: 1e-4, cuDNN's convolution algorithms reorder sums), and the input
gradients the same way. Prints one line per case and a JSON summary; exit 1 if a case is over.

usage: device_parity.py <zoo_dir> [--device cuda] [--batch 8]
"""
import argparse
import json
import pathlib
import sys
import time
from typing import Any, Dict, Tuple

import torch
from torch import Tensor

from sdd_torch.models import zoo_specs
from sdd_torch.worlds.toyfaces import World
from tests.models_parity import cases

BOUND = 1e-4


def seeded_inputs(world: World, batch: int) -> Tuple[Dict[str, Tensor], Dict[str, Any]]:
    """Inputs for every case, on the CPU, from one seeded generator (the shapes the TS test uses)."""
    assert world.style is not None and world.diffae is not None
    g = torch.Generator().manual_seed(0)
    h, w, c = world.latent_shape
    s = world.image_size
    ids = torch.randint(2, 20, (batch, 16), generator=g)
    ids[:, 6:] = 0  # padding after six words, as a caption is
    ids[0] = 0  # one empty prompt: the all-ones mask rule
    x = torch.rand(batch, s, s, 3, generator=g)
    with torch.no_grad():
        context, mask = world.text_condition(ids)
        zsem = world.diffae.encode(x)
        features = world.featnet.features(x)
    inputs = {
        "x": x,
        "noise": torch.randn(batch, h, w, c, generator=g),
        "z": torch.randn(batch, h, w, c, generator=g),
        "zt": torch.randn(batch, h, w, c, generator=g),
        "ids": ids.float(),
        "t": torch.randint(0, 1000, (batch,), generator=g).float(),
        "context": context,
        "mask": mask,
        "w": torch.randn(batch, world.style.levels, world.style.dim, generator=g),
        "zsem": zsem,
        "features": features,
    }
    heads = list(world.featnet.logits(features).keys())
    attribute = sorted(world.diffae.cls.keys())[0]
    meta = {
        "heads": heads,
        "directions": [
            {"attribute": attribute, "target": 1, "source": 0},
            {"attribute": attribute, "target": 0, "source": None},
        ],
    }
    return inputs, meta


def run_case(
    world: World, inputs: Dict[str, Tensor], meta: Dict[str, Any], name: str, device: torch.device
) -> Tuple[Tensor, Tensor, float]:
    fn, wrt = cases(world, meta)[name]
    given = {k: v.to(device) for k, v in inputs.items()}
    if wrt is not None:
        given[wrt] = given[wrt].clone().requires_grad_(True)
    t0 = time.perf_counter()
    y = fn(given)
    grad = torch.zeros(1)
    if wrt is not None:
        r = torch.linspace(-1, 1, y.numel(), device=device).reshape(y.shape)
        (grad,) = torch.autograd.grad((y * r).sum(), given[wrt])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return y.detach().cpu(), grad.detach().cpu(), (time.perf_counter() - t0) * 1000


def rel(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("zoo", type=pathlib.Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=8)
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("device_parity: torch sees no CUDA device", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device(a.device)
    specs = zoo_specs(a.zoo)
    cpu_world, dev_world = World(specs, torch.device("cpu")), World(specs, dev)
    inputs, meta = seeded_inputs(cpu_world, a.batch)
    worst, rows = 0.0, []
    for name in cases(cpu_world, meta):
        y0, g0, cpu_ms = run_case(cpu_world, inputs, meta, name, torch.device("cpu"))
        run_case(dev_world, inputs, meta, name, dev)  # warm-up: kernels chosen, memory pooled
        y1, g1, dev_ms = run_case(dev_world, inputs, meta, name, dev)
        r, rg = rel(y1, y0), rel(g1, g0)
        worst = max(worst, r, rg)
        rows.append({"case": name, "rel": r, "grad_rel": rg, "cpu_ms": round(cpu_ms, 2), "device_ms": round(dev_ms, 2)})
        print(
            f"{'ok  ' if max(r, rg) <= BOUND else 'OVER'} {name:20s} fwd {r:.2e}  grad {rg:.2e}  "
            f"cpu {cpu_ms:8.2f} ms  {a.device} {dev_ms:8.2f} ms"
        )
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                "batch": a.batch,
                "bound": BOUND,
                "worst": worst,
                "cases": rows,
            }
        )
    )
    return 0 if worst <= BOUND else 1


if __name__ == "__main__":
    sys.exit(main())
