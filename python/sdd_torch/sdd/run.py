"""What SDD's and StyleCLIP's twins share around the training loop (sdd.ts / styleclip.ts run):
the training codes (the world's, or its training images inverted once), the mapper init, the
evaluation (m sources edited with one generator forward each, τ_infer as editTimed measures it),
and the outputs (edited.npy, originals.npy in a world of codes, the mapper, timing.json).
"""
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch
from torch import Tensor

from sdd_torch import safetensors_np
from sdd_torch.methods.common import edit_timed, sources
from sdd_torch.sdd.distill import Frozen, edit_latents
from sdd_torch.sdd.mapper import MapperSettings, init_params

#: Images per encoder call when inverting (editing.ts invert).
INVERT_CHUNK = 100


@torch.no_grad()
def invert(world: Any, images: np.ndarray, frozen: Frozen) -> Tensor:
    """W+ codes of images (the e4e step), in chunks; the input pipeline, outside every τ."""
    parts: List[Tensor] = []
    for i in range(0, len(images), INVERT_CHUNK):
        x = torch.from_numpy(np.ascontiguousarray(images[i : i + INVERT_CHUNK])).to(world.device)
        with frozen():
            parts.append(world.style.encode(x).float())
    return torch.cat(parts)


def _codes(ctx: Any, world: Any, frozen: Frozen, codes_key: str, images_key: str) -> Tensor:
    """W+ codes the harness wrote (`codes_key`), or its images (`images_key`) inverted."""
    codes = ctx.input(codes_key)
    if codes is not None:
        return torch.from_numpy(codes).to(ctx.device)
    images = ctx.input(images_key)
    if images is None:
        raise ValueError(f"the manifest has neither {codes_key} nor {images_key}")
    return invert(world, images, frozen)


def train_codes(ctx: Any, world: Any, frozen: Frozen) -> Tensor:
    """editing.ts trainCodes: the n codes of a world of codes, or the n training images inverted
    (the twin asks for train_images > 0)."""
    return _codes(ctx, world, frozen, "train_codes", "train")


def source_codes(ctx: Any, world: Any, frozen: Frozen) -> Tensor:
    """W+ codes of the m sources: the harness's (reconstructed sources, a world of codes), or the
    sources inverted (sources: real)."""
    return _codes(ctx, world, frozen, "source_codes", "sources")


def new_mapper(ctx: Any, world: Any, ms: MapperSettings) -> Dict[str, Tensor]:
    return init_params(ms, ctx.noise("mapper_init"), int(world.style.dim), ctx.device)


def finish(
    ctx: Any,
    world: Any,
    params: Dict[str, Tensor],
    ms: MapperSettings,
    tau_train_s: float,
    frozen: Frozen,
    metadata: Optional[Dict[str, str]] = None,
) -> None:
    """Edits the m sources with the trained mapper, editTimed's protocol and batch layout (the
    plan's warmup / batches, methods/common.py edit_timed), and writes every output: originals.npy
    in a world of codes (common.sources), edited.npy, the mapper, timing.json last."""
    images = sources(ctx, world)
    w = source_codes(ctx, world, frozen)

    def edit(_x: Tensor, b: Mapping[str, Any], _hook: Any) -> Tensor:
        lo, k = int(b["offset"]), int(b["count"])
        return edit_latents(world, params, w[lo : lo + k], ms, frozen)

    result = edit_timed(ctx, images, edit, 1)
    ctx.write_edited(result["edited"])
    # The trained mapper, as the TS run's artifacts/mapper.safetensors (TS names, [in, out] layout).
    tensors = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in params.items()}
    ctx.write_file("mapper.safetensors", safetensors_np.serialize(tensors, {"method": ctx.method, **(metadata or {})}))
    ctx.env_extra["tau_infer_batches"] = len(result["batch_s_per_image"])
    ctx.write_timing(tau_train_s, result["tau_infer_s"])
