"""Torch twins of the building blocks in src/nn/layers.ts and src/diffusion/models/cond_unet.ts.

Ported from our TypeScript, block by block, with the same parameter names, so a module tree built
here has exactly the tensor names of the zoo's safetensors files. Internally NCHW (PyTorch's
layout); the TS side is NHWC with conv weights HWIO [k, k, in, out] and linear weights [in, out]:
`load_weights` converts each tensor to the owning module's layout and checks names and shapes
strictly (a file tensor the model never uses, or a model tensor the file lacks, is an error).
"""
import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

# layers.ts GROUP_NORM_EPS and layerNorm's default eps (both PyTorch's defaults).
GROUP_NORM_EPS = 1e-5
LAYER_NORM_EPS = 1e-5


class WeightsError(ValueError):
    """A weights file that does not fit the model: one line naming the file and the tensor."""


class Conv2d(nn.Conv2d):
    """layers.ts conv2d: 'valid' for 1x1, else pad (k-1)>>1 before and k>>1 after on each axis.

    TS pads 'same' at stride 1 and explicitly symmetric at stride 2, which for every kernel size is
    the pair ((k-1)>>1, k>>1); for odd k that is PyTorch's symmetric padding k//2.
    """

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1) -> None:
        lo, hi = (k - 1) >> 1, k >> 1
        super().__init__(cin, cout, k, stride=stride, padding=lo if lo == hi else 0)
        self.asym: Optional[Tuple[int, int, int, int]] = None if lo == hi else (lo, hi, lo, hi)

    def forward(self, x: Tensor) -> Tensor:
        if self.asym is not None:
            x = F.pad(x, self.asym)
        return super().forward(x)


def group_norm(c: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, c, eps=GROUP_NORM_EPS)


def layer_norm(d: int) -> nn.LayerNorm:
    return nn.LayerNorm(d, eps=LAYER_NORM_EPS)


def upsample2x(x: Tensor) -> Tensor:
    """tf.image.resizeNearestNeighbor to 2x (no corner alignment): source index floor(i / 2)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def unit(e: Tensor) -> Tensor:
    """e / (||e|| + 1e-8) over the last axis, as the TS models normalise embeddings."""
    return e / (e.norm(dim=-1, keepdim=True) + 1e-8)


def to_image(x: Tensor) -> Tensor:
    """[0, 1] NHWC images -> [-1, 1] NCHW, the first step of every image tower."""
    return (x * 2 - 1).permute(0, 3, 1, 2)


def flatten_nhwc(h: Tensor) -> Tensor:
    """NCHW features flattened in the NHWC order TS's reshape([b, -1]) uses (linear layers after it)."""
    return h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)


class ResBlock(nn.Module):
    """layers.ts resBlock: two GroupNorm-SiLU-conv steps and a residual, width kept."""

    def __init__(self, c: int, groups: int) -> None:
        super().__init__()
        self.norm1 = group_norm(c, groups)
        self.conv1 = Conv2d(c, c)
        self.norm2 = group_norm(c, groups)
        self.conv2 = Conv2d(c, c)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class AttnBlock(nn.Module):
    """layers.ts attention: single-head self-attention over H*W positions, residual (src/nn/unet.ts)."""

    def __init__(self, c: int, groups: int) -> None:
        super().__init__()
        self.norm = group_norm(c, groups)
        self.q = nn.Linear(c, c)
        self.k = nn.Linear(c, c)
        self.v = nn.Linear(c, c)
        self.proj = nn.Linear(c, c)

    def forward(self, x: Tensor) -> Tensor:
        b, c, hh, ww = x.shape
        n = self.norm(x).flatten(2).transpose(1, 2)
        att = torch.softmax(self.q(n) @ self.k(n).transpose(1, 2) * (1 / math.sqrt(c)), dim=-1)
        o = self.proj(att @ self.v(n))
        return x + o.transpose(1, 2).reshape(b, c, hh, ww)


class MultiHeadAttention(nn.Module):
    """layers.ts multiHeadAttention: q from x, k/v from context; key_mask [B, M] (1 = attend).

    Hidden keys get (1 - mask) * -1e9 added to their logits, as TS does (not -inf: a fully masked
    row then softmaxes to uniform in both, rather than NaN).
    """

    def __init__(self, d: int, dc: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(dc, d)
        self.v = nn.Linear(dc, d)
        self.out = nn.Linear(d, d)

    def forward(self, x: Tensor, context: Tensor, key_mask: Optional[Tensor] = None) -> Tensor:
        b, n, d = x.shape
        m = context.shape[1]
        dh = d // self.heads

        def split(t: Tensor, length: int) -> Tensor:
            return t.reshape(b, length, self.heads, dh).transpose(1, 2)

        q, k, v = split(self.q(x), n), split(self.k(context), m), split(self.v(context), m)
        logits = (q @ k.transpose(2, 3)) * (1 / math.sqrt(dh))
        if key_mask is not None:
            # The bias in float32 whatever the model's dtype (-1e9 is -inf in half precision, and
            # 0 * -inf a NaN); the sum, and so the softmax, is then float32 too.
            bias = (1 - key_mask.to(torch.float32)) * -1e9
            logits = logits.to(torch.float32) + bias.reshape(b, 1, 1, m)
        o = (torch.softmax(logits, dim=-1).to(v.dtype) @ v).transpose(1, 2).reshape(b, n, d)
        return self.out(o)


def timestep_features(t: Tensor, dim: int) -> Tensor:
    """cond_unet.ts timestepFeatures: [cos(t*f), sin(t*f)], f = exp(-ln(10000) * i / half), float32."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * (-math.log(10000) / half))
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class ResBlockT(nn.Module):
    """cond_unet.ts resBlockT: a ResNet block with the timestep embedding added after conv1."""

    def __init__(self, cin: int, cout: int, time_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = group_norm(cin, groups)
        self.conv1 = Conv2d(cin, cout)
        self.time = nn.Linear(time_dim, cout)
        self.norm2 = group_norm(cout, groups)
        self.conv2 = Conv2d(cout, cout)
        self.skip: Optional[Conv2d] = None if cin == cout else Conv2d(cin, cout, 1)

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.skip is None else self.skip(x)) + h


class Transformer(nn.Module):
    """cond_unet.ts transformer: GroupNorm, 1x1 in, self-attn, masked cross-attn, SiLU MLP, 1x1 out."""

    def __init__(self, c: int, context_dim: int, heads: int, groups: int) -> None:
        super().__init__()
        self.norm = group_norm(c, groups)
        self.proj_in = Conv2d(c, c, 1)
        self.norm1 = layer_norm(c)
        self.attn1 = MultiHeadAttention(c, c, heads)
        self.norm2 = layer_norm(c)
        self.attn2 = MultiHeadAttention(c, context_dim, heads)
        self.norm3 = layer_norm(c)
        self.ff1 = nn.Linear(c, 2 * c)
        self.ff2 = nn.Linear(2 * c, c)
        self.proj_out = Conv2d(c, c, 1)

    def forward(self, x: Tensor, context: Tensor, mask: Tensor) -> Tensor:
        b, c, hh, ww = x.shape
        h = self.proj_in(self.norm(x)).flatten(2).transpose(1, 2)
        n1 = self.norm1(h)
        h = h + self.attn1(n1, n1)
        h = h + self.attn2(self.norm2(h), context, mask)
        h = h + self.ff2(F.silu(self.ff1(self.norm3(h))))
        return x + self.proj_out(h.transpose(1, 2).reshape(b, c, hh, ww))


class _Time(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, dim)
        self.fc2 = nn.Linear(dim, dim)


class ConvStage(nn.Module):
    """One stage of the TS image towers: conv (stride 1 or 2), GroupNorm, SiLU, conv2, GroupNorm, SiLU."""

    def __init__(self, cin: int, cout: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv = Conv2d(cin, cout, 3, stride)
        self.norm = group_norm(cout, groups)
        self.conv2 = Conv2d(cout, cout)
        self.norm2 = group_norm(cout, groups)

    def forward(self, x: Tensor) -> Tensor:
        h = F.silu(self.norm(self.conv(x)))
        return F.silu(self.norm2(self.conv2(h)))


class Tower(nn.Module):
    """The image tower of clip/idnet/featnet/stylegen E/diffae's encoder: stage{i}, the first at
    stride 1 and each later one halving the resolution. Input NHWC in [0, 1]; output NCHW features."""

    def __init__(self, widths: List[int], groups: int) -> None:
        super().__init__()
        self.count = len(widths)
        for i, w in enumerate(widths):
            self.add_module(f"stage{i}", ConvStage(3 if i == 0 else widths[i - 1], w, 1 if i == 0 else 2, groups))

    def features(self, x: Tensor) -> Tensor:
        h = to_image(x)
        for i in range(self.count):
            h = getattr(self, f"stage{i}")(h)
        return h


class _Level(nn.Module):
    """A named group of blocks (cond_unet.ts down{i}, mid, up{i}): res, attn, and down or up."""


class CondUNet(nn.Module):
    """cond_unet.ts condUnet: eps(z_t, t, context, mask), one skip per level above the last.

    cfg: the card's architecture (widths, latentChannels, timeDim, heads, groups); context_dim: the
    width of the context tokens (ldm: contextDim; diffae: semantic). Submodules are named as the TS
    parameters (down0.res.conv1, mid.res, up0.attn.attn2.q, ...), so file names map one to one.
    """

    def __init__(self, cfg: Mapping[str, Any], context_dim: int) -> None:
        super().__init__()
        widths: List[int] = [int(w) for w in cfg["widths"]]
        groups, heads, tdim = int(cfg["groups"]), int(cfg["heads"]), int(cfg["timeDim"])
        latent = int(cfg["latentChannels"])
        self.levels = len(widths)
        self.time_dim = tdim
        self.time = _Time(tdim)
        self.conv_in = Conv2d(latent, widths[0])
        for i, w in enumerate(widths):
            lv = _Level()
            lv.res = ResBlockT(w, w, tdim, groups)  # conv_in or down{i-1}.down made it w wide
            lv.attn = Transformer(w, context_dim, heads, groups)
            if i < len(widths) - 1:
                lv.down = Conv2d(w, widths[i + 1], 3, 2)
            self.add_module(f"down{i}", lv)
        self.mid = _Level()
        self.mid.res = ResBlockT(widths[-1], widths[-1], tdim, groups)
        for i in range(len(widths) - 1):
            lv = _Level()
            lv.up = Conv2d(widths[i + 1], widths[i])
            lv.res = ResBlockT(2 * widths[i], widths[i], tdim, groups)
            lv.attn = Transformer(widths[i], context_dim, heads, groups)
            self.add_module(f"up{i}", lv)
        self.norm_out = group_norm(widths[0], groups)
        self.conv_out = Conv2d(widths[0], latent)

    def unet(self, z: Tensor, t: Tensor, context: Tensor, mask: Tensor) -> Tensor:
        """z NCHW, t [B] float timesteps, context [B, M, D], mask [B, M]; returns eps NCHW."""
        temb = self.time.fc2(F.silu(self.time.fc1(timestep_features(t, self.time_dim))))
        h = self.conv_in(z)
        skips: List[Tensor] = []
        for i in range(self.levels):
            lv = getattr(self, f"down{i}")
            h = lv.attn(lv.res(h, temb), context, mask)
            if i < self.levels - 1:
                skips.append(h)
                h = lv.down(h)
        h = self.mid.res(h, temb)
        for i in range(self.levels - 2, -1, -1):
            lv = getattr(self, f"up{i}")
            h = lv.up(upsample2x(h))
            h = lv.attn(lv.res(torch.cat([h, skips[i]], dim=1), temb), context, mask)
        return self.conv_out(F.silu(self.norm_out(h)))


def _ts_layout(module: nn.Module, leaf: str, value: np.ndarray) -> np.ndarray:
    """A file tensor (TS layout) in the layout of `module`'s parameter `leaf`."""
    if leaf == "weight" and isinstance(module, nn.Conv2d):
        return value.transpose(3, 2, 0, 1)  # HWIO -> OIHW
    if leaf == "weight" and isinstance(module, nn.Linear):
        return value.T  # [in, out] -> [out, in]
    convert = getattr(module, "ts_layout", None)
    return convert(leaf, value) if convert is not None else value


def load_weights(model: nn.Module, tensors: Dict[str, np.ndarray], source: str) -> None:
    """Fills every parameter and buffer of `model` from the file's tensors (module paths = TS names).

    Strict, as Params.verify is in TS: a model tensor missing from the file, a file tensor the
    model does not hold, or a shape that does not fit, is one WeightsError line naming it.
    """
    modules = dict(model.named_modules())
    entries = list(model.named_parameters()) + list(model.named_buffers())
    wanted = {key for key, _ in entries}
    missing = [key for key, _ in entries if key not in tensors]
    if missing:
        raise WeightsError(f"{source}: has no tensor {missing[0]} (the model needs it; {len(missing)} missing in all)")
    unexpected = [name for name in tensors if name not in wanted]
    if unexpected:
        raise WeightsError(
            f"{source}: tensor {unexpected[0]} is not used by the model ({len(unexpected)} unused in all)"
        )
    with torch.no_grad():
        for key, target in entries:
            owner, _, leaf = key.rpartition(".")
            value = _ts_layout(modules[owner], leaf, tensors[key])
            if tuple(value.shape) != tuple(target.shape):
                raise WeightsError(
                    f"{source}: {key} is {list(tensors[key].shape)}, "
                    f"which does not fit the model's {list(target.shape)} (torch layout)"
                )
            target.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))
    model.eval()
    model.requires_grad_(False)


def nhwc(x: Tensor) -> Tensor:
    return x.permute(0, 2, 3, 1)


def nchw(x: Tensor) -> Tensor:
    return x.permute(0, 3, 1, 2)
