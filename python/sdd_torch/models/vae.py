"""Twin of datasets/toyfaces/models/vae.ts: image [B,32,32,3] in [0,1] <-> latent [B,8,8,C] (unscaled)."""
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdd_torch.nn import Conv2d, ResBlock, group_norm, nchw, nhwc, upsample2x


class _Group(nn.Module):
    """enc / dec: named as the TS parameters (enc.in, enc.down1, enc.res0, ..., enc.norm, enc.out)."""


class Vae(nn.Module):
    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        widths: List[int] = [int(w) for w in cfg["widths"]]
        groups, latent = int(cfg["groups"]), int(cfg["latentChannels"])
        self.widths = widths
        self.scale_factor = float(cfg["scaleFactor"])
        enc, dec = _Group(), _Group()
        enc.add_module("in", Conv2d(3, widths[0]))
        for i, w in enumerate(widths):
            if i > 0:
                enc.add_module(f"down{i}", Conv2d(widths[i - 1], w, 3, 2))
            enc.add_module(f"res{i}", ResBlock(w, groups))
        enc.norm = group_norm(widths[-1], groups)
        enc.out = Conv2d(widths[-1], 2 * latent, 1)
        last = len(widths) - 1
        dec.add_module("in", Conv2d(latent, widths[last]))
        for i in range(last, -1, -1):
            if i < last:
                dec.add_module(f"up{i}", Conv2d(widths[i + 1], widths[i]))
            dec.add_module(f"res{i}", ResBlock(widths[i], groups))
        dec.norm = group_norm(widths[0], groups)
        dec.out = Conv2d(widths[0], 3)
        self.enc, self.dec = enc, dec

    def encode(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """vaeEncode: posterior mean and log-variance (clamped to [-30, 20]), each NHWC."""
        enc = self.enc
        h = getattr(enc, "in")(nchw(x * 2 - 1))
        for i in range(len(self.widths)):
            if i > 0:
                h = getattr(enc, f"down{i}")(h)
            h = getattr(enc, f"res{i}")(h)
        mean, logvar = enc.out(F.silu(enc.norm(h))).chunk(2, dim=1)
        return nhwc(mean), nhwc(torch.clamp(logvar, -30, 20))

    def decode(self, z: Tensor) -> Tensor:
        """vaeDecode: unscaled latent NHWC -> image NHWC in [0, 1] (not clipped)."""
        dec = self.dec
        last = len(self.widths) - 1
        h = getattr(dec, "in")(nchw(z))
        for i in range(last, -1, -1):
            if i < last:
                h = getattr(dec, f"up{i}")(upsample2x(h))
            h = getattr(dec, f"res{i}")(h)
        return nhwc(dec.out(F.silu(dec.norm(h))) * 0.5 + 0.5)


def build(cfg: Mapping[str, Any], tensors: Dict[str, np.ndarray]) -> Vae:
    return Vae(cfg)
