"""Torch twin of SDD (src/methods/sdd.ts): the latent mapper distilled from the diffusion model's
guidance at t drawn from the selected set S, then each source edited with one generator forward.

The TS twin resolves everything that is not tensor work into the plan: S (strategy random, or a
threshold / largest selection read from a cached HQS scan), ᾱ_t and w(t) for each t in S, the
mapper's settings and level groups, which prompt is ε̂'s base branch, the checkpoint interval and
the edit batch. The Gaussian draws come from the harness's noise streams: `mapper_init`, `sds`
[iterations, batch, h, w, c] (ε of each step; absent for noise type zero) and `vae` (the VAE
posterior draws; absent without vae_sample). τ_train here is the distillation only: the HQS scan
the selection came from was not run by this process.
"""
from typing import Any

import numpy as np

from sdd_torch.sdd.distill import Frozen, TrainSettings, sds_term, train_mapper
from sdd_torch.sdd.guidance import GuidanceSettings, condition
from sdd_torch.sdd.mapper import MapperSettings
from sdd_torch.sdd.run import finish, new_mapper, train_codes


def _stream(ctx: Any, name: str, shape: tuple) -> np.ndarray:
    x = ctx.noise(name)
    if tuple(x.shape) != shape:
        raise ValueError(f"noise {name}: shape {list(x.shape)}, the distillation needs {list(shape)}")
    return x


def run(ctx: Any) -> None:
    p, plan = ctx.params, ctx.plan
    world = ctx.world()
    frozen = Frozen(ctx)
    ms = MapperSettings(plan["mapper"])
    s = TrainSettings(p, plan)
    gs = GuidanceSettings(p["guidance"])
    timesteps = [int(t) for t in plan["timesteps"]]
    if not timesteps:
        raise ValueError("plan.timesteps: empty selection")
    shape = (s.iterations, s.batch, *world.latent_shape)
    noise = _stream(ctx, "sds", shape) if gs.noise == "random" else None
    vae = _stream(ctx, "vae", shape) if bool(p["vae_sample"]) else None
    train_w = train_codes(ctx, world, frozen)
    params = new_mapper(ctx, world, ms)
    cond = condition(world, ctx.tokens, str(plan["negative"]), s.batch, ctx.device)
    term_at = sds_term(world, timesteps, [float(a) for a in plan["alpha_bar"]], [float(w) for w in plan["weight"]], cond, gs, noise, vae, ctx.device)
    distill_s = train_mapper(ctx, world, params, train_w, s, ms, term_at, frozen, "distill")
    del train_w
    finish(ctx, world, params, ms, distill_s, frozen, {"selection": str(plan["selection"]["strategy"])})
