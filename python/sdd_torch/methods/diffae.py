"""DiffAE's twin (baselines/diffae.ts): z_sem from the semantic encoder, x_T by DDIM inversion of
the encoded image given z_sem, z_sem edited along the classifier's unit direction in normalised
space (z' = z + alpha*d), and DDIM decoding of x_T given z'."""
from typing import Any, Mapping

import torch
from torch import Tensor

from sdd_torch.diffusion import EpsFn, StepHook, ddim_loop
from sdd_torch.methods.common import edit_timed, finish, precision, sources


def run(ctx: Any) -> None:
    plan = ctx.plan
    world = ctx.world()
    ae = world.diffae
    if ae is None:
        raise RuntimeError(f"world {world.name} has no DiffAE models (the diffae baseline needs its own autoencoder)")
    images = sources(ctx, world)
    d = plan["direction"]
    with torch.no_grad(), precision(ctx):
        direction = ae.direction(str(d["attribute"]), str(d["target"]), d["source"], list(d["values"])).float()
    alpha = float(plan["alpha"])
    invert, sample = plan["invert"], plan["sample"]

    def given(zsem: Tensor) -> EpsFn:
        return lambda zt, t: ae.eps(
            zt, torch.full((zt.shape[0],), t, dtype=torch.float32, device=zt.device), zsem
        ).float()

    def edit(x: Tensor, batch: Mapping[str, Any], hook: StepHook) -> Tensor:
        zsem = ae.encode(x).float()
        z_edit = ae.denormalise(ae.normalise(zsem) + direction * alpha)
        x_t = ddim_loop(given(zsem), world.encode(x), invert, hook=hook)
        return world.decode(ddim_loop(given(z_edit), x_t, sample, hook=lambda i: hook(len(invert) + i)))

    finish(ctx, edit_timed(ctx, images, edit, len(invert) + len(sample)))
