"""What SDD's and StyleCLIP's twins share around the training loop (sdd.ts / styleclip.ts run):
the training codes (the world's, or its training images inverted once), the mapper init, the
evaluation (m sources edited with one generator forward each, τ_infer as editTimed measures it),
and the outputs (edited.npy, originals.npy in a world of codes, the mapper, timing.json).
"""
import statistics
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from sdd_torch import safetensors_np
from sdd_torch.sdd.distill import Frozen, edit_latents
from sdd_torch.sdd.mapper import MapperSettings, init_params

#: Images per encoder call when inverting (editing.ts invert).
INVERT_CHUNK = 100
#: Images per generator call for a world of codes' originals (editing.ts generated).
GENERATE_CHUNK = 4


@torch.no_grad()
def invert(world: Any, images: np.ndarray, frozen: Frozen) -> Tensor:
    """W+ codes of images (the e4e step), in chunks; the input pipeline, outside every τ."""
    parts: List[Tensor] = []
    for i in range(0, len(images), INVERT_CHUNK):
        x = torch.from_numpy(np.ascontiguousarray(images[i : i + INVERT_CHUNK])).to(world.device)
        with frozen():
            parts.append(world.style.encode(x).float())
    return torch.cat(parts)


def train_codes(ctx: Any, world: Any, frozen: Frozen) -> Tensor:
    """editing.ts trainCodes: the n codes of a world of codes, or the n training images inverted."""
    codes = ctx.input("train_codes")
    if codes is not None:
        return torch.from_numpy(codes).to(ctx.device)
    images = ctx.input("train")
    if images is None:
        raise ValueError("the manifest has neither train_codes nor train: the twin asks for train_images > 0")
    return invert(world, images, frozen)


def source_codes(ctx: Any, world: Any, frozen: Frozen) -> Tuple[Tensor, bool]:
    """W+ codes of the m sources, and whether the world is one of codes (then originals = G(w))."""
    codes = ctx.input("source_codes")
    from_codes = bool(ctx.manifest["world"]["from_codes"])
    if codes is not None:
        return torch.from_numpy(codes).to(ctx.device), from_codes
    images = ctx.input("sources")
    if images is None:
        raise ValueError("the manifest has neither source_codes nor sources")
    return invert(world, images, frozen), from_codes


def new_mapper(ctx: Any, world: Any, ms: MapperSettings) -> Dict[str, Tensor]:
    return init_params(ms, ctx.noise("mapper_init"), int(world.style.dim), ctx.device)


@torch.no_grad()
def generated(world: Any, w: Tensor, frozen: Frozen) -> Tensor:
    """G(w) clipped, in chunks (a world of codes' originals)."""
    parts = []
    for i in range(0, w.shape[0], GENERATE_CHUNK):
        with frozen():
            parts.append(world.style.generate(w[i : i + GENERATE_CHUNK]).float().clamp(0, 1))
    return torch.cat(parts)


def edit_timed(ctx: Any, world: Any, params: Dict[str, Tensor], w: Tensor, ms: MapperSettings, batch: int, frozen: Frozen) -> Tuple[np.ndarray, float]:
    """editing.ts editTimed: a first untimed edit of one image warms up; then batches of `batch`,
    each timed to its synchronisation; τ_infer = the median over batches of seconds per image."""
    edit_latents(world, params, w[:1], ms, frozen)
    ctx.sync()
    out: List[np.ndarray] = []
    per_image: List[float] = []
    for i in range(0, w.shape[0], batch):
        chunk = w[i : i + batch]
        t0 = ctx.now()
        x = edit_latents(world, params, chunk, ms, frozen)
        host = x.cpu().numpy()  # read back: the batch's device work is done
        per_image.append((time.perf_counter() - t0) / chunk.shape[0])
        out.append(host)
        ctx.progress(i + chunk.shape[0], w.shape[0], "edit")
    return np.concatenate(out), float(statistics.median(per_image))


def finish(ctx: Any, world: Any, params: Dict[str, Tensor], ms: MapperSettings, tau_train_s: float, frozen: Frozen, metadata: Optional[Dict[str, str]] = None) -> None:
    """Edits the m sources with the trained mapper and writes every output (timing.json last)."""
    w, from_codes = source_codes(ctx, world, frozen)
    if from_codes:
        ctx.write_originals(generated(world, w, frozen).cpu().numpy())
    edited, tau_infer = edit_timed(ctx, world, params, w, ms, int(ctx.plan["edit_batch"]), frozen)
    ctx.write_edited(edited)
    # The trained mapper, as the TS run's artifacts/mapper.safetensors (TS names, [in, out] layout).
    tensors = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in params.items()}
    ctx.write_file("mapper.safetensors", safetensors_np.serialize(tensors, {"method": ctx.method, **(metadata or {})}))
    ctx.write_timing(tau_train_s, tau_infer)
