"""PyTorch twins of bench/gpu.ts's inference workloads, for the tfjs/PyTorch ratio on one GPU.

There are no PyTorch weights of the toyfaces models, so both networks are built here with the
shipped models' architecture (read from datasets/toyfaces/zoo/<model>/card.json) and random
weights: timing needs shapes, not weights. Before timing, every tensor of the model is checked by
name and shape against the shipped weights' safetensors header (the tfjs layouts [k, k, cin, cout]
and [in, out] transposed to PyTorch's), so a drift between the tfjs model and this twin fails
loudly instead of timing another network.

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
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from unet_torch import torch_device  # same folder: python puts the script's own directory on sys.path

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ZOO = os.path.join(ROOT, "datasets", "toyfaces", "zoo")


def card(model):
    with open(os.path.join(ZOO, model, "card.json")) as f:
        return json.load(f)


def shipped_shapes(model):
    """{name: shape} from the safetensors header of the shipped weights (the header only)."""
    with open(os.path.join(ZOO, model, "weights.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def torch_shape(tfjs_shape):
    """tfjs layouts → PyTorch's: conv [k, k, cin, cout] → [cout, cin, k, k]; linear [in, out] → [out, in]."""
    s = list(tfjs_shape)
    if len(s) == 4:
        return [s[3], s[2], s[0], s[1]]
    if len(s) == 2:
        return [s[1], s[0]]
    return s


def check_against_shipped(net, model, skip_prefixes=()):
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    shipped = {k: torch_shape(v) for k, v in shipped_shapes(model).items() if not k.startswith(tuple(skip_prefixes))}
    missing = sorted(set(shipped) - set(ours))
    extra = sorted(set(ours) - set(shipped))
    wrong = sorted(k for k in set(ours) & set(shipped) if ours[k] != shipped[k])
    if missing or extra or wrong:
        raise SystemExit(f"{model}: the PyTorch twin differs from the shipped weights: missing {missing[:5]}, "
                         f"extra {extra[:5]}, wrong shape {[(k, ours[k], shipped[k]) for k in wrong[:5]]}")
    return len(shipped)


def gn(c, groups):
    return nn.GroupNorm(groups, c, eps=1e-5)


def conv(cin, cout, k=3, stride=1):
    # src/nn/layers.ts conv2d: 'same' at stride 1, symmetric (k−1)/2 padding when strided.
    return nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2)


# ---- the conditional U-Net (src/diffusion/models/cond_unet.ts), names as the shipped tensors ----


def timestep_features(t, dim):
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(10000) / half))
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], 1)


class ResBlockT(nn.Module):
    def __init__(self, cin, cout, tdim, groups):
        super().__init__()
        self.groups = groups
        self.norm1, self.conv1 = gn(cin, groups), conv(cin, cout)
        self.time = nn.Linear(tdim, cout)
        self.norm2, self.conv2 = gn(cout, groups), conv(cout, cout)
        self.skip = conv(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.skip is None else self.skip(x)) + h


class MultiHeadAttention(nn.Module):
    """layers.ts multiHeadAttention: q/k/v/out projections, additive −1e9 key mask, written out."""

    def __init__(self, d, dctx, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = nn.Linear(d, d), nn.Linear(dctx, d), nn.Linear(dctx, d), nn.Linear(d, d)

    def forward(self, x, ctx, mask=None):
        b, n, d = x.shape
        m, h = ctx.shape[1], self.heads
        split = lambda t, length: t.reshape(b, length, h, d // h).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(x), n), split(self.k(ctx), m), split(self.v(ctx), m)
        logits = q @ k.transpose(-1, -2) / math.sqrt(d // h)
        if mask is not None:
            logits = logits + ((1 - mask) * -1e9).reshape(b, 1, 1, m)
        o = (torch.softmax(logits, -1) @ v).transpose(1, 2).reshape(b, n, d)
        return self.out(o)


class Transformer(nn.Module):
    def __init__(self, c, dctx, heads, groups):
        super().__init__()
        self.norm, self.proj_in = gn(c, groups), conv(c, c, 1)
        self.norm1, self.attn1 = nn.LayerNorm(c, eps=1e-5), MultiHeadAttention(c, c, heads)
        self.norm2, self.attn2 = nn.LayerNorm(c, eps=1e-5), MultiHeadAttention(c, dctx, heads)
        self.norm3, self.ff1, self.ff2 = nn.LayerNorm(c, eps=1e-5), nn.Linear(c, 2 * c), nn.Linear(2 * c, c)
        self.proj_out = conv(c, c, 1)

    def forward(self, x, ctx, mask):
        b, c, hh, ww = x.shape
        h = self.proj_in(self.norm(x)).flatten(2).transpose(1, 2)  # [b, hw, c]
        n1 = self.norm1(h)
        h = h + self.attn1(n1, n1)
        h = h + self.attn2(self.norm2(h), ctx, mask)
        h = h + self.ff2(F.silu(self.ff1(self.norm3(h))))
        return x + self.proj_out(h.transpose(1, 2).reshape(b, c, hh, ww))


class CondUNet(nn.Module):
    def __init__(self, a):
        super().__init__()
        w, g, td, heads, dctx = a["widths"], a["groups"], a["timeDim"], a["heads"], a["contextDim"]
        self.time_dim = td
        self.time = nn.Module()
        self.time.fc1, self.time.fc2 = nn.Linear(td, td), nn.Linear(td, td)
        self.conv_in = conv(a["latentChannels"], w[0])
        self.nlevels = len(w)
        for i, c in enumerate(w):
            level = nn.Module()
            level.res = ResBlockT(c, c, td, g)
            level.attn = Transformer(c, dctx, heads, g)
            if i < len(w) - 1:
                level.down = conv(c, w[i + 1], 3, 2)
            setattr(self, f"down{i}", level)
        self.mid = nn.Module()
        self.mid.res = ResBlockT(w[-1], w[-1], td, g)
        for i in range(len(w) - 2, -1, -1):
            level = nn.Module()
            level.up = conv(w[i + 1], w[i])
            level.res = ResBlockT(2 * w[i], w[i], td, g)
            level.attn = Transformer(w[i], dctx, heads, g)
            setattr(self, f"up{i}", level)
        self.norm_out, self.conv_out = gn(w[0], g), conv(w[0], a["latentChannels"])

    def forward(self, z, t, ctx, mask):
        temb = self.time.fc2(F.silu(self.time.fc1(timestep_features(t, self.time_dim))))
        h, skips = self.conv_in(z), []
        for i in range(self.nlevels):
            level = getattr(self, f"down{i}")
            h = level.attn(level.res(h, temb), ctx, mask)
            if i < self.nlevels - 1:
                skips.append(h)
                h = level.down(h)
        h = self.mid.res(h, temb)
        for i in range(self.nlevels - 2, -1, -1):
            level = getattr(self, f"up{i}")
            h = level.up(F.interpolate(h, scale_factor=2, mode="nearest"))
            h = level.attn(level.res(torch.cat([h, skips[i]], 1), temb), ctx, mask)
        return self.conv_out(F.silu(self.norm_out(h)))


# ---- the feature net (datasets/toyfaces/models/featnet.ts featnetFeatures; heads unused) ----


class FeatNet(nn.Module):
    def __init__(self, a):
        super().__init__()
        g, cin = a["groups"], 3
        self.groups = g
        self.nstages = len(a["widths"])
        for i, w in enumerate(a["widths"]):
            stage = nn.Module()
            stage.conv, stage.norm = conv(cin, w, 3, 1 if i == 0 else 2), gn(w, g)
            stage.conv2, stage.norm2 = conv(w, w), gn(w, g)
            setattr(self, f"stage{i}", stage)
            cin = w
        self.proj = nn.Linear(cin, a["features"])

    def forward(self, x):
        h = x * 2 - 1
        for i in range(self.nstages):
            s = getattr(self, f"stage{i}")
            h = F.silu(s.norm(s.conv(h)))
            h = F.silu(s.norm2(s.conv2(h)))
        return self.proj(h.mean((2, 3)))


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
        out.append((t, math.sqrt(ap) / math.sqrt(a), math.sqrt(1 - ap) - math.sqrt(ap) * math.sqrt(1 - a) / math.sqrt(a)))
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
    c = card("ldm")
    arch = c["architecture"]
    net = CondUNet(arch).to(dev).eval()
    checked = check_against_shipped(net, "ldm")
    n, s, ch = a.images, arch["latentSize"], arch["latentChannels"]
    tokens, dctx = arch["contextTokens"], arch["contextDim"]
    g = torch.Generator(device="cpu").manual_seed(0)
    # [uncond; cond] as cfgEps builds it: one prompt repeated n times, and "" repeated n times.
    ctx = torch.cat([torch.randn(1, tokens, dctx, generator=g).expand(n, -1, -1),
                     torch.randn(1, tokens, dctx, generator=g).expand(n, -1, -1)]).contiguous().to(dev)
    mask = torch.zeros(2 * n, tokens)
    mask[:n, :2] = 1  # "" → start/end tokens
    mask[n:, :8] = 1
    mask = mask.to(dev)
    coefs = ddim_coefficients(arch["schedule"], a.ddim_steps)
    zT = torch.randn(n, ch, s, s, generator=g).to(dev)

    def run():
        z = zT.clone()
        for t, cx, ce in coefs:
            out = net(torch.cat([z, z]), torch.full((2 * n,), t, device=dev), ctx, mask)
            u, cnd = out.chunk(2)
            e = u + a.guidance * (cnd - u)
            z = cx * z + ce * e
        return z.cpu()  # the one read at the end

    ms = timed(run, a.repeats, a.warmup, dev)
    return {"workload": "ddim", "ms": ms, "params": sum(p.numel() for p in net.parameters()), "images": n,
            "steps": len(coefs), "guidance": a.guidance,
            "notes": f"random weights, architecture from zoo/ldm/card.json, {checked} tensors checked against the shipped "
                     f"weights' names and shapes (timing needs shapes, not weights); text condition made outside the timed region"}


@torch.inference_mode()
def bench_featnet(a, dev):
    arch = card("featnet")["architecture"]
    net = FeatNet(arch).to(dev).eval()
    checked = check_against_shipped(net, "featnet", skip_prefixes=("head.",))
    size = int(str(arch.get("input", "32x32x3")).split("x")[0])
    g = torch.Generator(device="cpu").manual_seed(0)
    images = torch.rand(a.feat_images, 3, size, size, generator=g).to(dev)

    def run():
        parts = [net(images[i:i + a.feat_batch]) for i in range(0, a.feat_images, a.feat_batch)]
        return torch.cat(parts).cpu()  # the one read at the end

    ms = timed(run, a.repeats, a.warmup, dev)
    return {"workload": "featnet", "ms": ms, "params": sum(p.numel() for p in net.parameters()), "images": a.feat_images,
            "batch": a.feat_batch,
            "notes": f"random weights, architecture from zoo/featnet/card.json, {checked} tensors checked against the shipped "
                     f"weights' names and shapes (heads unused by features); images uploaded outside the timed region"}


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
