"""Twin of datasets/toyfaces/models/stylegen.ts: G (W+ -> image) with StyleGAN2 modulated convs, and E."""
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdd_torch.nn import Conv2d, Tower, flatten_nhwc, nhwc, upsample2x


class ModConv(nn.Module):
    """stylegen.ts modConv: input channels scaled by affine(w) + 1, a 3x3 'same' conv, then each
    output channel demodulated by rsqrt(s^2 . sum_k W^2 + 1e-8), then the bias."""

    def __init__(self, cin: int, cout: int, wdim: int) -> None:
        super().__init__()
        self.affine = nn.Linear(wdim, cin)
        self.weight = nn.Parameter(torch.zeros(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))

    def ts_layout(self, leaf: str, value: np.ndarray) -> np.ndarray:
        return value.transpose(3, 2, 0, 1) if leaf == "weight" else value  # HWIO -> OIHW

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        s = self.affine(w) + 1
        y = F.conv2d(x * s[:, :, None, None], self.weight, padding=1)
        demod = torch.rsqrt(s.square() @ self.weight.square().sum(dim=(2, 3)).t() + 1e-8)
        return y * demod[:, :, None, None] + self.bias[None, :, None, None]


class _Res(nn.Module):
    def __init__(self, cin: int, cout: int, wdim: int) -> None:
        super().__init__()
        self.conv1 = ModConv(cin, cout, wdim)
        self.conv2 = ModConv(cout, cout, wdim)


class _Gen(nn.Module):
    def __init__(self, widths: List[int], wdim: int) -> None:
        super().__init__()
        self.const = nn.Parameter(torch.zeros(1, widths[0], 4, 4))
        for i, width in enumerate(widths):
            self.add_module(f"res{i}", _Res(widths[max(i - 1, 0)], width, wdim))
        self.to_rgb = Conv2d(widths[-1], 3, 1)

    def ts_layout(self, leaf: str, value: np.ndarray) -> np.ndarray:
        return value.transpose(0, 3, 1, 2) if leaf == "const" else value  # [1, 4, 4, C] -> NCHW


class StyleGen(nn.Module):
    def __init__(self, cfg: Mapping[str, Any], image_size: int) -> None:
        super().__init__()
        self.widths: List[int] = [int(w) for w in cfg["widths"]]
        enc_widths: List[int] = [int(w) for w in cfg["encoderWidths"]]
        self.wdim = int(cfg["wdim"])
        self.dim = self.wdim
        self.levels = 2 * len(self.widths)
        n = self.levels
        # stylegen.ts levelGroups: coarse 4^2-8^2, medium 16^2, fine 32^2 (level ranges [from, to)).
        self.groups: Dict[str, Tuple[int, int]] = {"coarse": (0, n - 4), "medium": (n - 4, n - 2), "fine": (n - 2, n)}
        self.gen = _Gen(self.widths, self.wdim)
        self.enc = Tower(enc_widths, int(cfg["groups"]))
        side = image_size >> (len(enc_widths) - 1)
        flat = side * side * enc_widths[-1]
        self.enc.w = nn.Linear(flat, self.wdim)
        self.enc.delta = nn.Linear(flat, self.levels * self.wdim)

    def generate(self, wplus: Tensor) -> Tensor:
        """G: W+ [B, levels, wdim] -> NHWC image in [0, 1] (not clipped)."""
        gen = self.gen
        h = gen.const.expand(wplus.shape[0], -1, -1, -1)
        for i in range(len(self.widths)):
            if i > 0:
                h = upsample2x(h)
            res = getattr(gen, f"res{i}")
            h = F.silu(res.conv1(h, wplus[:, 2 * i]))
            h = F.silu(res.conv2(h, wplus[:, 2 * i + 1]))
        return nhwc(gen.to_rgb(h) * 0.5 + 0.5)

    def encode_parts(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """E: NHWC image -> (W+ [B, levels, wdim], the offsets delta) as e4e: base w plus 0.1 * delta."""
        flat = flatten_nhwc(self.enc.features(x))  # flattened, not pooled, in TS's NHWC order
        base = self.enc.w(flat).reshape(-1, 1, self.wdim)
        delta = self.enc.delta(flat).reshape(-1, self.levels, self.wdim) * 0.1
        return base + delta, delta

    def encode(self, x: Tensor) -> Tensor:
        return self.encode_parts(x)[0]


def image_size(cfg: Mapping[str, Any]) -> int:
    """The card's input size ("32x32x3 in [0,1]" -> 32)."""
    return int(str(cfg["input"]).split("x")[0])


def build(cfg: Mapping[str, Any], tensors: Dict[str, np.ndarray]) -> StyleGen:
    return StyleGen(cfg, image_size(cfg))
