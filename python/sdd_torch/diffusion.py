"""DDIM loops and classifier-free guidance, ported from src/diffusion/pipelines/sample.ts.

The scheduler stays in TypeScript: a method's TS twin sends each step as the TS loop takes it
(baselines/torch_twin.ts StepPlan: the model's timestep t and the coefficients cx, ce, cn of
z' = cx*z + ce*eps (+ cn*noise), computed in float64 by src/diffusion/schedulers/ddim.ts), so the
loop here is the same sequence of float32 operations as ddimSampleTensor / ddimInvertTensor.
"""
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from sdd_torch.rng import Rng, normals

# eps(z, t): the noise prediction for a batch of latents at one (integer-valued) timestep.
EpsFn = Callable[[Tensor, float], Tensor]
# Called after each step with the number of steps done (progress).
StepHook = Callable[[int], None]


def linear(x: Tensor, eps: Tensor, cx: float, ce: float, noise: Optional[Tensor] = None, cn: float = 0.0) -> Tensor:
    """x' = cx*x + ce*eps (+ cn*noise): sample.ts `linear`, in its order of operations."""
    y = x * cx + eps * ce
    return y + noise * cn if noise is not None and cn > 0 else y


def host_normals(rng: Rng, shape: Sequence[int], device: torch.device) -> Tensor:
    """Standard normals of our Rng (the TS `Float32Array.from({length}, () => rng.normal())`),
    laid out in `shape` (NHWC, as tf.tensor4d reads them), on the device."""
    count = int(np.prod(shape))
    return torch.from_numpy(normals(rng, count).reshape(tuple(shape))).to(device)


def ddim_loop(
    eps: EpsFn,
    z: Tensor,
    steps: Sequence[Mapping[str, Any]],
    rng: Optional[Rng] = None,
    hook: Optional[StepHook] = None,
) -> Tensor:
    """ddimSampleTensor (and, with the inversion's steps, ddimInvertTensor): per step,
    z <- cx*z + ce*eps(z, t) (+ cn*noise, fresh normals from rng where cn > 0)."""
    for i, step in enumerate(steps):
        cn = float(step["cn"])
        noise = None
        if cn > 0:
            if rng is None:
                raise ValueError("a DDIM step with eta > 0 needs the batch's rng (plan gave no seed)")
            noise = host_normals(rng, z.shape, z.device)
        e = eps(z, float(step["t"]))
        z = linear(z, e, float(step["cx"]), float(step["ce"]), noise, cn)
        if hook is not None:
            hook(i + 1)
    return z


Condition = Tuple[Tensor, Tensor]


def repeat(cond: Condition, b: int) -> Condition:
    """repeatCondition: one row's context [1, L, D] and mask [1, L] for b images."""
    context, mask = cond
    return context.expand(b, -1, -1).contiguous(), mask.expand(b, -1).contiguous()


def text_eps(world: Any, cond: Condition, uncond: Condition, b: int, guidance: float) -> EpsFn:
    """textEps of baselines/common.ts: guidance 1 is the conditional model alone; otherwise
    cfgEps, one doubled batch (unconditional rows first) and eps_u + w*(eps_c - eps_u)."""
    if guidance == 1:
        context, mask = repeat(cond, b)

        def plain(z: Tensor, t: float) -> Tensor:
            return world.eps(z, torch.full((b,), t, dtype=torch.float32, device=z.device), context, mask)

        return plain
    (uc, um), (cc, cm) = repeat(uncond, b), repeat(cond, b)
    context, mask = torch.cat([uc, cc]), torch.cat([um, cm])

    def guided(z: Tensor, t: float) -> Tensor:
        out = world.eps(torch.cat([z, z]), torch.full((2 * b,), t, dtype=torch.float32, device=z.device), context, mask)
        u, c = out[:b], out[b:]
        return u + (c - u) * guidance

    return guided
