"""Torch twin of StyleCLIP's latent mapper (baselines/styleclip.ts): the LevelsMapper trained with
a CLIP loss (global: 1 − cos(E_I(x'), E_T(target)); directional: 1 − cos(E_I(x') − E_I(x),
E_T(target) − E_T(source))) plus the L2 and identity terms, then each source edited with one
generator forward. Its only Gaussian draw is the mapper init (noise stream `mapper_init`); the
batch indices come from stream_rng(seed, f"step{k}") as in TS.
"""
from typing import Any, Callable

import torch
from torch import Tensor

from sdd_torch.rng import Rng
from sdd_torch.sdd.distill import Frozen, Term, TermAt, TrainSettings, train_mapper
from sdd_torch.sdd.mapper import MapperSettings
from sdd_torch.sdd.run import finish, new_mapper, train_codes


def unit(e: Tensor) -> Tensor:
    """e / ‖e‖ over the last axis (styleclip.ts unit: no epsilon)."""
    return e / e.norm(dim=-1, keepdim=True)


def clip_term(ctx: Any, world: Any, frozen: Frozen) -> TermAt:
    p = ctx.params
    mode = str(p["clip_loss"])
    if mode not in ("global", "directional"):
        raise ValueError(f"params.clip_loss: {mode!r}, expected global or directional")
    lam = float(p["lambda_clip"])
    ids = torch.tensor(
        [list(ctx.tokens["text"]), list(ctx.tokens["source_text"])], dtype=torch.int64, device=ctx.device
    )
    with torch.no_grad(), frozen():
        text = unit(world.clip.text_embed(ids).float())
    target, source = text[0], text[1]
    direction = unit(target - source)

    def loss(edited: Tensor, original: Callable[[], Tensor]) -> Tensor:
        with frozen():
            e = unit(world.clip.image_embed(edited).float())
        if mode == "global":
            cos = (e * target).sum(dim=1)
        else:
            with torch.no_grad(), frozen():
                e0 = unit(world.clip.image_embed(original()).float())
            cos = (unit(e - e0) * direction).sum(dim=1)
        return (1 - cos.mean()) * lam

    def term_at(_rng: Rng, _step: int) -> Term:
        return Term(loss)

    return term_at


def run(ctx: Any) -> None:
    world = ctx.world()
    frozen = Frozen(ctx)
    ms = MapperSettings(ctx.plan["mapper"])
    s = TrainSettings(ctx.params, ctx.plan)
    train_w = train_codes(ctx, world, frozen)
    params = new_mapper(ctx, world, ms)
    tau_train = train_mapper(ctx, world, params, train_w, s, ms, clip_term(ctx, world, frozen), frozen, "train")
    del train_w
    finish(ctx, world, params, ms, tau_train, frozen)
