"""DDIB's twin (baselines/ddib.ts): deterministic DDIM inversion of the encoded image under the
source prompt (its guidance), then DDIM generation from z_T under the target prompt (its guidance)."""
from typing import Any, Mapping

from torch import Tensor

from sdd_torch.diffusion import StepHook, ddim_loop
from sdd_torch.methods.common import Text, edit_timed, finish, sources


def run(ctx: Any) -> None:
    plan = ctx.plan
    world = ctx.world()
    images = sources(ctx, world)
    source, target = Text(world, ctx, plan["source"]), Text(world, ctx, plan["target"])
    invert, sample = plan["invert"], plan["sample"]

    def edit(x: Tensor, batch: Mapping[str, Any], hook: StepHook) -> Tensor:
        b = x.shape[0]
        z_t = ddim_loop(source.eps(b), world.encode(x), invert, hook=hook)
        return world.decode(ddim_loop(target.eps(b), z_t, sample, hook=lambda i: hook(len(invert) + i)))

    finish(ctx, edit_timed(ctx, images, edit, len(invert) + len(sample)))
