"""Torch twin of SDD (src/methods/sdd.ts): the latent mapper distilled from the diffusion model's
guidance at t drawn from the selected set S, then each source edited with one generator forward.

The TS twin resolves everything that is not tensor work into the plan: S (strategy random, or a
threshold / largest selection read from a cached HQS scan), ᾱ_t and w(t) for each t in S, the
mapper's settings and level groups, which prompt is ε̂'s base branch, the checkpoint interval and
the edit batch. The Gaussian draws come from the harness's noise streams: `mapper_init`, `sds`
[iterations, batch, h, w, c] (ε of each step; absent for noise type zero) and `vae` (the VAE
posterior draws; absent without vae_sample). τ_train here is the distillation only.

plan.phase "hqs" runs the HQS scan instead (sdd_twin.ts sddScanPlan): the per-image statistics of
python/sdd_torch/sdd/hqs.py on G(w + mapper_step·M(w)) of the first K training codes with an
untrained mapper (`hqs_mapper_init`), one ε and VAE draw per (t, image) (`hqs_sds`, `hqs_vae`),
written as contract/out/hqs_scan.json (an HqsScan: timesteps, stats, images, seconds); reading the
curve and selecting S stay in TS (sdd_twin.ts sddPlan).
"""
from typing import Any, List

import numpy as np
import torch

from sdd_torch.sdd.distill import Frozen, TrainSettings, sds_term, train_mapper
from sdd_torch.sdd.guidance import GuidanceSettings, SdsPlan, condition
from sdd_torch.sdd.hqs import hqs_scan
from sdd_torch.sdd.mapper import MapperSettings, apply_mapper, init_params
from sdd_torch.sdd.run import finish, new_mapper, train_codes


def _stream(ctx: Any, name: str, shape: tuple) -> np.ndarray:
    x = ctx.noise(name)
    if tuple(x.shape) != shape:
        raise ValueError(f"noise {name}: shape {list(x.shape)}, the distillation needs {list(shape)}")
    return x


def _sds_plan(
    ctx: Any, world: Any, gs: GuidanceSettings, timesteps: List[int], b: int, noise: Any, vae: Any
) -> SdsPlan:
    """The plan's ᾱ_t and w(t) for S, and the condition of b images (plan.negative as the base)."""
    alpha_bar = [float(a) for a in ctx.plan["alpha_bar"]]
    weights = [float(w) for w in ctx.plan["weight"]]
    cond = condition(world, ctx.tokens, str(ctx.plan["negative"]), b, ctx.device)
    return SdsPlan(timesteps, alpha_bar, weights, cond, gs, noise, vae)


def run(ctx: Any) -> None:
    phase = str(ctx.plan["phase"])
    if phase == "hqs":
        scan(ctx)
    elif phase == "distill":
        distill(ctx)
    else:
        raise ValueError(f"plan.phase: {phase!r}, expected hqs or distill")


def scan(ctx: Any) -> None:
    p, plan = ctx.params, ctx.plan
    world = ctx.world()
    frozen = Frozen(ctx)
    ms = MapperSettings(plan["mapper"])
    gs = GuidanceSettings(p["guidance"], str(p["hqs"]["top_k_per"]))
    timesteps = [int(t) for t in plan["timesteps"]]
    k = int(plan["images"])
    shape = (len(timesteps), k, *world.latent_shape)
    noise = _stream(ctx, "hqs_sds", shape) if gs.noise == "random" else None
    vae = _stream(ctx, "hqs_vae", shape) if bool(p["vae_sample"]) else None
    w = train_codes(ctx, world, frozen)[:k]
    untrained = init_params(ms, ctx.noise("hqs_mapper_init"), int(world.style.dim), ctx.device)
    with torch.no_grad(), frozen():
        images = world.style.generate(apply_mapper(untrained, w, ms)).float()
    sp = _sds_plan(ctx, world, gs, timesteps, k, noise, vae)
    t0 = ctx.now()
    stats = hqs_scan(world, images, sp, lambda i: ctx.progress(i, len(timesteps), "hqs scan"), frozen)
    seconds = ctx.now() - t0
    ctx.write_json("hqs_scan.json", {"timesteps": timesteps, "stats": stats, "images": k, "seconds": seconds})


def distill(ctx: Any) -> None:
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
    term_at = sds_term(world, _sds_plan(ctx, world, gs, timesteps, s.batch, noise, vae), ctx.device)
    distill_s = train_mapper(ctx, world, params, train_w, s, ms, term_at, frozen, "distill")
    del train_w
    finish(ctx, world, params, ms, distill_s, frozen, {"selection": str(plan["selection"]["strategy"])})
