"""SDEdit's twin (baselines/sdedit.ts): encode, noise to the first planned timestep with the
batch's own Rng (the TS seed, sent by the plan), then the last ceil(s*N) DDIM steps under the
target prompt with CFG; eta > 0 draws each step's noise from the same Rng, as the TS loop does."""
from typing import Any, Mapping

from torch import Tensor

from sdd_torch.diffusion import StepHook, ddim_loop, host_normals
from sdd_torch.methods.common import Text, edit_timed, finish, sources
from sdd_torch.rng import Rng


def run(ctx: Any) -> None:
    plan = ctx.plan
    world = ctx.world()
    images = sources(ctx, world)
    target = Text(world, ctx, plan["target"])
    start, steps = plan["start"], plan["steps"]
    sa, s1a = float(start["sqrt_alpha"]), float(start["sqrt_one_minus_alpha"])

    def edit(x: Tensor, batch: Mapping[str, Any], hook: StepHook) -> Tensor:
        b = x.shape[0]
        rng = Rng(int(batch["seed"]))
        noise = host_normals(rng, [b, *plan["latent_shape"]], x.device)
        z = world.encode(x) * sa + noise * s1a  # q(z_t | z_0) at the first planned timestep
        return world.decode(ddim_loop(target.eps(b), z, steps, rng, hook))

    finish(ctx, edit_timed(ctx, images, edit, len(steps)))
