"""What the diffusion baselines' twins share, ported from src/methods/editing.ts and
baselines/common.ts: the evaluation sources, editTimed (one untimed warm-up image, then the
plan's batches, each timed between device synchronisations with its images read back, clipped
to [0, 1]), the text conditions, the precision context, and progress at most once a second.
"""
import contextlib
import statistics
import time
from typing import Any, Callable, ContextManager, Dict, List, Mapping

import numpy as np
import torch
from torch import Tensor

from sdd_torch.diffusion import Condition, EpsFn, StepHook, text_eps

# edit(x, batch, hook): the edited images of x [k, H, W, 3] (on the device, unclipped); `batch` is
# the plan's entry for the call ({"offset", "count"} and, SDEdit, "seed"); hook(i) after the
# call's i-th DDIM step (all its loops counted in a row).
Edit = Callable[[Tensor, Mapping[str, Any], StepHook], Tensor]
# G(w) chunk of editing.ts `generated` (a 1024^2 generator does not take m = 100 at once).
_GENERATE_CHUNK = 4
# The longest a running batch goes without a progress line (the harness kills a silent process).
_PROGRESS_EVERY_S = 1.0


def precision(ctx: Any) -> ContextManager[Any]:
    """Where the models run: fp16 under CUDA autocast (the World hands float32 back, so the DDIM
    arithmetic stays float32); fp32 and tf32 as runtime set them (TF32 switches)."""
    if ctx.precision != "fp16":
        return contextlib.nullcontext()
    if not ctx.on_cuda():
        raise RuntimeError("precision fp16 needs a CUDA device (this run is on the CPU): use fp32")
    return torch.autocast(device_type="cuda", dtype=torch.float16)


class Progress:
    """ctx.progress in units of DDIM steps over the whole run, written at most once a second (a
    write is an fsync: not in every step of a timed batch), and at each batch's end."""

    def __init__(self, ctx: Any, total: int) -> None:
        self.ctx, self.total, self.done, self.last = ctx, total, 0, 0.0

    def tick(self, done: int, label: str, force: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if force or now - self.last >= _PROGRESS_EVERY_S:
            self.ctx.progress(done, self.total, label)
            self.last = now


def sources(ctx: Any, world: Any) -> np.ndarray:
    """The m evaluation images [m, H, W, 3] in [0, 1] (host): the harness's, or in a world of codes
    G(w) of the source codes, clipped, which are then the run's originals (written here)."""
    images = ctx.input("sources")
    if images is not None:
        return images
    codes = ctx.input("source_codes")
    if codes is None or world.style is None:
        raise RuntimeError("the manifest gives neither sources nor source codes a generator can render")
    parts: List[np.ndarray] = []
    with torch.no_grad(), precision(ctx):
        for i in range(0, len(codes), _GENERATE_CHUNK):
            w = torch.from_numpy(codes[i : i + _GENERATE_CHUNK]).to(ctx.device)
            parts.append(world.style.generate(w).float().clamp(0, 1).cpu().numpy())
    images = np.concatenate(parts).astype(np.float32)
    ctx.write_originals(images)
    return images


def text_condition(world: Any, ctx: Any, key: str) -> Condition:
    """The encoded text of the engine block's token ids `key` (text | source_text | empty), one row."""
    ids = torch.tensor([ctx.tokens[key]], dtype=torch.int64, device=ctx.device)
    with torch.no_grad(), precision(ctx):
        context, mask = world.text_condition(ids)
    return context.float(), mask


class Text:
    """textPair + textEps (baselines/common.ts) for the plan's {tokens, guidance}
    (baselines/torch_twin.ts textPlan): the prompt and the empty prompt encoded once per run,
    repeated per batch."""

    def __init__(self, world: Any, ctx: Any, spec: Mapping[str, Any]) -> None:
        self.world = world
        self.cond = text_condition(world, ctx, str(spec["tokens"]))
        self.uncond = text_condition(world, ctx, "empty")
        self.guidance = float(spec["guidance"])

    def eps(self, b: int) -> EpsFn:
        return text_eps(self.world, self.cond, self.uncond, b, self.guidance)


def edit_timed(ctx: Any, images: np.ndarray, edit: Edit, steps_per_batch: int) -> Dict[str, Any]:
    """editTimed: warm-up on image 0 (untimed), then each of the plan's batches: uploaded, edited,
    clipped to [0, 1] and read back between two device synchronisations. τ_infer is the median over
    the first plan["timed_batches"] batches of seconds per image (the TS calibration's units).
    Returns edited [m, H, W, 3] and times."""
    plan = ctx.plan
    batches: List[Mapping[str, Any]] = plan["batches"]
    progress = Progress(ctx, (1 + len(batches)) * steps_per_batch)
    out = np.empty_like(images)
    per_image: List[float] = []
    with torch.no_grad(), precision(ctx):
        warm = plan["warmup"]
        x = torch.from_numpy(images[warm["offset"] : warm["offset"] + warm["count"]]).to(ctx.device)
        edit(x, warm, lambda j: progress.tick(j, "warm-up")).cpu()
        progress.tick(steps_per_batch, "warm-up", force=True)
        for i, b in enumerate(batches):
            lo, k = int(b["offset"]), int(b["count"])
            ctx.sync()
            t0 = time.perf_counter()
            x = torch.from_numpy(images[lo : lo + k]).to(ctx.device)
            label = f"batch {i + 1}/{len(batches)}"
            base = (1 + i) * steps_per_batch
            y = (
                edit(x, b, lambda j: progress.tick(base + j, label)).clamp(0, 1).float().cpu().numpy()
            )  # read back: the batch's device work is done
            ctx.sync()
            per_image.append((time.perf_counter() - t0) / k)
            out[lo : lo + k] = y
            progress.tick(base + steps_per_batch, label, force=True)
    timed = per_image[: int(plan["timed_batches"])]
    return {"edited": out, "tau_infer_s": statistics.median(timed), "batch_s_per_image": timed}


def finish(ctx: Any, result: Mapping[str, Any]) -> None:
    """edited.npy and timing.json (no training: τ_train = 0); env.json records how many batches were timed."""
    ctx.write_edited(result["edited"])
    ctx.env_extra["tau_infer_batches"] = len(result["batch_s_per_image"])
    ctx.write_timing(0.0, result["tau_infer_s"])
