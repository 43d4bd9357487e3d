"""Twin of src/sdd/mapper.ts: StyleCLIP's LevelsMapper as SDD uses it.

For each enabled level group (coarse / medium / fine) one MLP: PixelNorm, then `layers` ×
EqualLinear(dim, dim, lr_mul) with fused leaky ReLU (slope 0.2, gain √2), applied to every W+
level of the group; a disabled group outputs zeros and has no parameters. EqualLinear keeps its
raw weight [in, out] (TS layout, N(0, 1)/lr_mul at init) and scales it by lr_mul/√in at run time;
the bias starts at 0 and is scaled by lr_mul. The edit is w' = w + step·M(w).

Parameter names are the TS Params names (`mapper.<group>.<layer>.weight|bias`), so checkpoints and
the parity test read the same keys. The init is not tfjs's tf.randomNormal (which cannot be
reproduced): the weights come from the harness's noise stream `mapper_init`
[3 groups (coarse, medium, fine), layers, dim, dim], N(0, 1), scaled by 1/lr_mul.
"""
import math
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: The group order of the `mapper_init` noise stream (whatever the world's level ranges).
GROUP_ORDER = ("coarse", "medium", "fine")


class MapperSettings:
    """The plan's `mapper` block (resolved in TS: mapperSettings / MAPPER_DEFAULTS)."""

    def __init__(self, plan: Mapping[str, Any]) -> None:
        levels = plan["levels"]
        self.levels: Dict[str, bool] = {g: bool(levels[g]) for g in GROUP_ORDER}
        self.pixel_norm = str(plan["pixel_norm"])
        if self.pixel_norm not in ("across_levels", "per_level"):
            raise ValueError(f"plan.mapper.pixel_norm: {self.pixel_norm!r}, expected across_levels or per_level")
        self.layers = int(plan["layers"])
        self.lr_mul = float(plan["lr_mul"])
        self.step = float(plan["step"])
        groups = plan["groups"]
        self.groups: Dict[str, Tuple[int, int]] = {g: (int(groups[g][0]), int(groups[g][1])) for g in GROUP_ORDER}


def pixel_norm(x: Tensor, dim: int) -> Tensor:
    """x / √(mean(x², dim) + 1e-8) (mapper.ts pixelNorm)."""
    return x * torch.rsqrt(x.square().mean(dim=dim, keepdim=True) + 1e-8)


def param_names(s: MapperSettings) -> List[str]:
    """Every parameter of the mapper, in creation order (group by level range, then layer)."""
    names: List[str] = []
    for g in sorted(GROUP_ORDER, key=lambda k: s.groups[k][0]):
        if s.levels[g]:
            for layer in range(s.layers):
                names += [f"mapper.{g}.{layer}.weight", f"mapper.{g}.{layer}.bias"]
    return names


def init_params(s: MapperSettings, noise: np.ndarray, dim: int, device: torch.device) -> Dict[str, Tensor]:
    """Weights N(0, 1)/lr_mul from the `mapper_init` stream, biases 0 (mapper.ts equalLinear's
    inits), as float32 leaves that require grad. The product is taken in float64 and rounded once,
    as tf.randomNormal's std and JS arithmetic do."""
    want = (len(GROUP_ORDER), s.layers, dim, dim)
    if tuple(noise.shape) != want:
        raise ValueError(f"noise mapper_init: shape {list(noise.shape)}, the mapper needs {list(want)}")
    out: Dict[str, Tensor] = {}
    std = 1 / s.lr_mul
    for name in param_names(s):
        _, g, layer, leaf = name.split(".")
        if leaf == "weight":
            value = (noise[GROUP_ORDER.index(g), int(layer)].astype(np.float64) * std).astype(np.float32)
        else:
            value = np.zeros(dim, dtype=np.float32)
        out[name] = torch.tensor(value, device=device, requires_grad=True)
    return out


def equal_linear(p: Mapping[str, Tensor], name: str, x: Tensor, lr_mul: float) -> Tensor:
    """leaky_relu(x·(W·lr_mul/√in) + b·lr_mul, 0.2)·√2 (mapper.ts equalLinear)."""
    w, b = p[f"{name}.weight"], p[f"{name}.bias"]
    y = x @ (w * (lr_mul / math.sqrt(x.shape[1]))) + b * lr_mul
    return F.leaky_relu(y, 0.2) * math.sqrt(2)


def levels_mapper(p: Mapping[str, Tensor], wplus: Tensor, s: MapperSettings) -> Tensor:
    """M(w) for W+ [B, levels, dim]."""
    b, _, dim = wplus.shape
    parts: List[Tensor] = []
    for g in sorted(GROUP_ORDER, key=lambda k: s.groups[k][0]):
        lo, hi = s.groups[g]
        n = hi - lo
        if n <= 0:
            continue
        if not s.levels[g]:
            parts.append(wplus.new_zeros(b, n, dim))
            continue
        piece = wplus[:, lo:hi]
        h = pixel_norm(piece, 1 if s.pixel_norm == "across_levels" else -1).reshape(b * n, dim)
        for layer in range(s.layers):
            h = equal_linear(p, f"mapper.{g}.{layer}", h, s.lr_mul)
        parts.append(h.reshape(b, n, dim))
    return torch.cat(parts, dim=1)


def apply_mapper(p: Mapping[str, Tensor], wplus: Tensor, s: MapperSettings) -> Tensor:
    """w' = w + step·M(w)."""
    return wplus + levels_mapper(p, wplus, s) * s.step
