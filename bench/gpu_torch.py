"""PyTorch twins of bench/gpu.ts's inference workloads, for the tfjs/PyTorch ratio on one GPU.

Both networks are the torch engine's twins (python/sdd_torch/models: the ε-model `ldm` and
`featnet`), loaded strictly from the shipped zoo weights, so the reference is the network the
torch engine runs and tfjs runs, not a separate copy; inputs and outputs are NHWC as at the
engine's boundary.

  ddim     DDIM sampling with classifier-free guidance, the loop of
           src/diffusion/pipelines/sample.ts (ddimSampleTensor + cfgEps): per step one ε-model call
           on the doubled batch [uncond; cond], ε̂ = ε_u + w·(ε_c − ε_u), z ← c_x·z + c_ε·ε̂ (η = 0);
           z stays on the device, one read at the end. The text condition (context + mask) is made
           once, outside the timed region, as in bench/gpu.ts.
  featnet  FID features (datasets/toyfaces/models/featnet.ts featnetFeatures) of N images in
           batches, concatenated on the device, one read at the end.

--device cuda runs fp32 with TF32 off (matmul and cuDNN). Prints one JSON line per workload:
{"workload": W, "ms": [per-iteration times], "params": P, "notes": ..., ...}.
Usage: python3 bench/gpu_torch.py --device cuda
       python3 bench/gpu_torch.py --device cpu --smoke
"""
import argparse
import json
import math
import os
import sys
import pathlib
import time

import torch

from unet_torch import torch_device  # same folder: python puts the script's own directory on sys.path

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ZOO = os.path.join(ROOT, "datasets", "toyfaces", "zoo")
# The torch engine's package (python/ in a checkout and in make bundle's dist/).
sys.path.insert(0, os.path.join(ROOT, "python"))
from sdd_torch.models import build, zoo_specs  # noqa: E402


def twin(model, dev):
    """The torch engine's twin of zoo model `model` with the shipped weights, and its spec (card)."""
    spec = zoo_specs(pathlib.Path(ZOO), [model])[model]
    return build(model, spec, dev), spec["architecture"]


# ---- the workloads ----


def ddim_coefficients(sched, steps, offset=1):
    """DDIM_SD (η = 0, leading spacing, offset 1, ᾱ_prev = ᾱ_0 before the first step), as ddim.ts."""
    T = sched["trainTimesteps"]
    if sched["schedule"] == "scaled_linear":
        betas = torch.linspace(sched["betaStart"] ** 0.5, sched["betaEnd"] ** 0.5, T, dtype=torch.float64) ** 2
    else:
        betas = torch.linspace(sched["betaStart"], sched["betaEnd"], T, dtype=torch.float64)
    ab = torch.cumprod(1 - betas, 0).tolist()
    ratio = T // steps
    out = []
    for i in range(steps):
        t = (steps - 1 - i) * ratio + offset
        if t >= T:
            continue
        a, ap = ab[t], ab[t - ratio] if t - ratio >= 0 else ab[0]
        out.append(
            (t, math.sqrt(ap) / math.sqrt(a), math.sqrt(1 - ap) - math.sqrt(ap) * math.sqrt(1 - a) / math.sqrt(a))
        )
    return out


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeats, warmup, dev):
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(repeats):
        sync(dev)
        t0 = time.perf_counter()
        fn()  # ends with a device → host read
        ms.append((time.perf_counter() - t0) * 1000)
    return ms


@torch.inference_mode()
def bench_ddim(a, dev):
    net, arch = twin("ldm", dev)
    n, s, ch = a.images, arch["latentSize"], arch["latentChannels"]
    tokens, dctx = arch["contextTokens"], arch["contextDim"]
    g = torch.Generator(device="cpu").manual_seed(0)
    # [uncond; cond] as cfgEps builds it: one prompt repeated n times, and "" repeated n times.
    ctx = (
        torch.cat(
            [
                torch.randn(1, tokens, dctx, generator=g).expand(n, -1, -1),
                torch.randn(1, tokens, dctx, generator=g).expand(n, -1, -1),
            ]
        )
        .contiguous()
        .to(dev)
    )
    mask = torch.zeros(2 * n, tokens)
    mask[:n, :2] = 1  # "" → start/end tokens
    mask[n:, :8] = 1
    mask = mask.to(dev)
    coefs = ddim_coefficients(arch["schedule"], a.ddim_steps)
    zT = torch.randn(n, s, s, ch, generator=g).to(dev)  # NHWC, as the twin takes it

    def run():
        z = zT.clone()
        for t, cx, ce in coefs:
            out = net(torch.cat([z, z]), torch.full((2 * n,), t, device=dev), ctx, mask)
            u, cnd = out.chunk(2)
            e = u + a.guidance * (cnd - u)
            z = cx * z + ce * e
        return z.cpu()  # the one read at the end

    ms = timed(run, a.repeats, a.warmup, dev)
    return {
        "workload": "ddim",
        "ms": ms,
        "params": sum(p.numel() for p in net.parameters()),
        "images": n,
        "steps": len(coefs),
        "guidance": a.guidance,
        "notes": "the torch engine's ldm twin with the shipped weights (NHWC at its boundary); "
        "text condition made outside the timed region",
    }


@torch.inference_mode()
def bench_featnet(a, dev):
    net, arch = twin("featnet", dev)
    size = int(str(arch.get("input", "32x32x3")).split("x")[0])
    g = torch.Generator(device="cpu").manual_seed(0)
    images = torch.rand(a.feat_images, size, size, 3, generator=g).to(dev)  # NHWC

    def run():
        parts = [net(images[i : i + a.feat_batch]) for i in range(0, a.feat_images, a.feat_batch)]
        return torch.cat(parts).cpu()  # the one read at the end

    ms = timed(run, a.repeats, a.warmup, dev)
    return {
        "workload": "featnet",
        "ms": ms,
        "params": sum(p.numel() for p in net.parameters()),
        "images": a.feat_images,
        "batch": a.feat_batch,
        "notes": "the torch engine's featnet twin with the shipped weights (features; heads unused); "
        "images uploaded outside the timed region",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: 20 images, 5 DDIM steps, 2 repeats")
    ap.add_argument("--workloads", default="ddim,featnet")
    ap.add_argument("--images", type=int, default=100, help="DDIM: images sampled")
    ap.add_argument("--ddim-steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--feat-images", type=int, default=1000)
    ap.add_argument("--feat-batch", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="--device cpu only")
    a = ap.parse_args()
    if a.smoke:
        a.images, a.ddim_steps, a.feat_images, a.feat_batch, a.repeats, a.warmup = 20, 5, 20, 10, 2, 1
    dev = torch_device(a.device, a.threads)
    torch.manual_seed(0)
    common = {"device": a.device, "torch": torch.__version__, "smoke": a.smoke}
    if a.device == "cuda":
        common.update(gpu=torch.cuda.get_device_name(0), tf32=False)
    for w in a.workloads.split(","):
        fn = {"ddim": bench_ddim, "featnet": bench_featnet}.get(w)
        if fn is None:
            raise SystemExit(f"unknown workload {w!r} (ddim, featnet)")
        print(json.dumps({**fn(a, dev), **common}), flush=True)


if __name__ == "__main__":
    main()
