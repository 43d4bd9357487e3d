"""Twin of src/sdd/guidance.ts: SDD's score-distillation guidance (Eq. 7) as the released code
computes it:

    z_t = √ᾱ_t·z + √(1−ᾱ_t)·ε        (ε = 0 for noise type "zero")
    ε̂  = ε(z_t, t, base) + s·(ε(z_t, t, c) − ε(z_t, t, base))   (no gradient through the U-Net)
    g   = w(t)·(ε̂ − ε), optionally only the k largest |g| kept (over the batch, or per image)

g is injected at the diffusion latent z as the gradient of the surrogate ⟨g, z⟩ (g a constant),
which autograd carries back through the VAE encoder and the generator: the same gradient as the
TS custom-gradient op, and the same logged value Σ g·z.
"""
import math
from typing import Any, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np
import torch
from torch import Tensor


class GuidanceSettings:
    """params.guidance (sdd_params.ts `guidance`); ᾱ_t and w(t) come from the plan, per timestep."""

    def __init__(self, g: Mapping[str, Any], top_k_per: str = "batch") -> None:
        self.guidance_scale = float(g["guidance_scale"])
        self.noise = str(g["noise"])
        if self.noise not in ("random", "zero"):
            raise ValueError(f"params.guidance.noise: {self.noise!r}, expected random or zero")
        top_k = g["top_k"]
        self.top_k: Optional[int] = None if top_k is None else int(top_k)
        self.top_k_per = top_k_per


class SdsPlan(NamedTuple):
    """What SDS needs at each selected timestep (ᾱ_t and w(t) from the plan, per t) and each draw: the
    condition [base × b; target × b], the settings, and the noise streams (ε; the VAE posterior),
    [draw, b, h, w, c] or absent. The distillation and the HQS scan share it."""

    timesteps: List[int]
    alpha_bar: List[float]
    weights: List[float]
    cond: Tuple[Tensor, Tensor]
    gs: GuidanceSettings
    noise: Optional[np.ndarray]
    vae_noise: Optional[np.ndarray]


def stream_at(stream: Optional[np.ndarray], i: int, device: torch.device) -> Optional[Tensor]:
    """Draw i of a noise stream on `device` (None without the stream)."""
    return None if stream is None else torch.from_numpy(np.ascontiguousarray(stream[i])).to(device)


def condition(
    world: Any, tokens: Mapping[str, Any], negative: str, b: int, device: torch.device
) -> Tuple[Tensor, Tensor]:
    """guidanceCondition: context and mask of [base × b; target × b]. `negative` is the plan's token
    key of the base branch: "empty" (released code) or "source_text"."""
    ids = torch.tensor([list(tokens[negative])] * b + [list(tokens["text"])] * b, dtype=torch.int64, device=device)
    with torch.no_grad():
        return world.text_condition(ids)


def top_k_magnitude(g: Tensor, k: int, per_image: bool = False) -> Tensor:
    """All but the k largest |g| zeroed: over the whole batch, or over each image's elements."""
    rows = g.shape[0] if per_image else 1
    flat = g.abs().reshape(rows, -1)
    if k >= flat.shape[1]:
        return g.clone()
    kth = torch.topk(flat, k, dim=1).values[:, k - 1 : k]
    return (g.reshape(rows, -1) * (flat >= kth).float()).reshape(g.shape)


@torch.no_grad()
def sds_gradient(world: Any, z: Tensor, sp: SdsPlan, i: int, noise: Optional[Tensor]) -> Tensor:
    """g for latents z [b, h, w, c] at the plan's timestep i (values only)."""
    t, s, cond = sp.timesteps[i], sp.gs, sp.cond
    a = float(sp.alpha_bar[i])
    if s.noise == "zero":
        eps = torch.zeros_like(z)
    elif noise is None:
        raise ValueError("guidance noise 'random' needs a noise draw")
    else:
        eps = noise
    zt = z * math.sqrt(a) + eps * math.sqrt(1 - a)
    b = z.shape[0]
    ts = torch.full((2 * b,), float(t), dtype=torch.float32, device=z.device)
    out = world.eps(torch.cat([zt, zt]), ts, cond[0], cond[1])
    u, c = out[:b], out[b:]
    guided = u + (c - u) * s.guidance_scale
    g = (guided - eps) * float(sp.weights[i])
    return top_k_magnitude(g, s.top_k, s.top_k_per == "image") if s.top_k else g


def sds_loss(world: Any, z: Tensor, sp: SdsPlan, i: int, noise: Optional[Tensor]) -> Tensor:
    """⟨g, z⟩ with g computed off the tape: its gradient w.r.t. z is g (sdsInjection / sdsSurrogate)."""
    g = sds_gradient(world, z.detach(), sp, i, noise)
    return (g * z).sum()
