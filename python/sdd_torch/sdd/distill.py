"""Twin of src/sdd/distill.ts: the latent-mapper training loop SDD and StyleCLIP share, and SDD's
guidance term.

    w' = w + step·M(w);  loss = guidance + λ_L2·MSE(w, w') + λ_ID·(1 − cos(ID(G(w')), ID(G(w))))

AdamW (the host Adam's update, ./adam.py) on the mapper only. Every draw of iteration `step`
comes from stream_rng(seed, f"step{step}") exactly as in TS — the batch indices first, then the
guidance's own (SDD: t from S, then two seeds TS hands to tf.randomNormal) — and the Gaussian
noise tfjs would draw comes from the harness's noise streams, indexed by step, so a resumed run
replays the same sequence. Per-step scalars stay on the device and are read LOG_EVERY steps at
a time (and before a checkpoint and at the end), each step then logged with ctx.metric.
"""
from typing import Any, Callable, ContextManager, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from sdd_torch.methods.common import Progress, precision
from sdd_torch.rng import Rng, stream_rng
from sdd_torch.sdd.adam import HostAdam
from sdd_torch.sdd.guidance import SdsPlan, sds_loss, stream_at
from sdd_torch.sdd.mapper import MapperSettings, apply_mapper

#: Steps whose scalars are read together (distill.ts LOG_EVERY).
LOG_EVERY = 10
SCALAR_NAMES = ("loss", "l2", "id_loss", "guidance")
ID_CHUNK = 32


class TrainSettings:
    """What the loop reads of a method's params and plan (no defaults: every key must be there)."""

    def __init__(self, params: Mapping[str, Any], plan: Mapping[str, Any]) -> None:
        self.iterations = int(params["iterations"])
        self.batch = int(params["batch"])
        self.lr = float(params["lr"])
        self.weight_decay = float(params["weight_decay"])
        self.lambda_l2 = float(params["lambda_l2"])
        self.lambda_id = float(params["lambda_id"])
        self.checkpoint_every = int(plan["checkpoint_every"])


class Term:
    """One iteration's guidance term: a loss on the edited images given the originals (rendered on
    demand: SDS never needs them, StyleCLIP's directional loss does), and host scalars to log."""

    def __init__(
        self, loss: Callable[[Tensor, Callable[[], Tensor]], Tensor], scalars: Optional[Dict[str, float]] = None
    ) -> None:
        self.loss = loss
        self.scalars = scalars or {}


TermAt = Callable[[Rng, int], Term]


class Frozen:
    """The frozen models' forwards under the run's precision (methods/common.py precision: CUDA
    autocast to float16 for fp16, refused on the CPU; fp32 / tf32 as the runtime set them). The
    mapper, the losses and the optimiser stay float32: the World hands float32 back."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        if ctx.precision == "fp16":
            precision(ctx)  # one line now, on the CPU, rather than mid-run

    def __call__(self) -> ContextManager[Any]:
        return precision(self.ctx)


def identity_of(world: Any, train_w: Tensor, frozen: Frozen) -> Tensor:
    """ID(G(w)) of every training code, once, in chunks (distill.ts identityOf)."""
    parts: List[Tensor] = []
    with torch.no_grad(), frozen():
        for i in range(0, train_w.shape[0], ID_CHUNK):
            parts.append(world.identity.embed(world.style.generate(train_w[i : i + ID_CHUNK])).float())
    return torch.cat(parts)


class _Log:
    """The device-held per-step scalars, read LOG_EVERY steps at a time (distill.ts ScalarLog)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.pending: List[Tuple[int, Dict[str, float], Tensor]] = []

    def push(self, step: int, host: Dict[str, float], values: Tensor) -> None:
        self.pending.append((step, host, values))

    def flush(self, force: bool) -> None:
        if not self.pending or (not force and len(self.pending) < LOG_EVERY):
            return
        batch, self.pending = self.pending, []
        values = torch.stack([v for _, _, v in batch]).cpu().numpy().astype(np.float64)
        for (step, host, _), row in zip(batch, values):
            scalars = dict(host)
            scalars.update({name: float(row[k]) for k, name in enumerate(SCALAR_NAMES)})
            self.ctx.metric(step, **scalars)  # raises NonFinite at the first bad step


def _restore(
    params: Dict[str, Tensor], adam: HostAdam, tensors: Mapping[str, np.ndarray], adam_step: int, device: torch.device
) -> None:
    with torch.no_grad():
        for name, p in params.items():
            saved = tensors.get(f"p/{name}")
            if saved is None:
                raise ValueError(f"checkpoint lacks mapper parameter {name}")
            p.copy_(torch.from_numpy(np.asarray(saved, dtype=np.float32)).reshape(p.shape))
    moments = {
        k: torch.from_numpy(np.asarray(v, dtype=np.float32)).to(device).reshape(params[k[2:]].shape)
        for k, v in tensors.items()
        if k[:2] in ("m/", "v/") and k[2:] in params
    }
    adam.restore(adam_step, moments)


def train_mapper(
    ctx: Any,
    world: Any,
    params: Dict[str, Tensor],
    train_w: Tensor,
    s: TrainSettings,
    ms: MapperSettings,
    term_at: TermAt,
    frozen: Frozen,
    label: str,
) -> float:
    """Trains the mapper in place; returns τ_train's training seconds: the sum over iterations of
    each one's time from a device synchronisation to the next once its update is applied (the TS
    calibration's bracket), carried across resumed attempts in the checkpoint. Logging, progress
    and checkpoint writes fall between the brackets, as in TS."""
    adam = HostAdam(s.lr, s.weight_decay)
    start, seconds = 0, 0.0
    saved = ctx.load_checkpoint()
    if saved is not None:
        start, tensors, state = saved
        _restore(params, adam, tensors, int(state["adam_step"]), ctx.device)
        seconds = float(state["distill_s"])
    id_originals = identity_of(world, train_w, frozen)
    n = train_w.shape[0]
    log = _Log(ctx)
    progress = Progress(ctx, s.iterations)
    names = list(params)
    for step in range(start, s.iterations):
        t0 = ctx.now()
        rng = stream_rng(ctx.seed, f"step{step}")
        idx = [rng.int(n) for _ in range(s.batch)]
        term = term_at(rng, step)
        index = torch.tensor(idx, dtype=torch.int64, device=train_w.device)
        w = train_w[index]
        w2 = apply_mapper(params, w, ms)
        with frozen():
            x2 = world.style.generate(w2).float()

            def original() -> Tensor:
                with torch.no_grad(), frozen():
                    return world.style.generate(w).float()

            g = term.loss(x2, original)
            emb = world.identity.embed(x2).float()
        l2 = (w2 - w).square().mean()
        id_loss = 1 - (emb * id_originals[index]).sum(dim=1).mean()
        loss = g + (l2 * s.lambda_l2 + id_loss * s.lambda_id)
        grads = torch.autograd.grad(loss, [params[k] for k in names], allow_unused=True)
        log.push(step, term.scalars, torch.stack([loss, l2, id_loss, g]).detach())
        adam.apply(params, {k: gr for k, gr in zip(names, grads) if gr is not None})
        seconds += ctx.now() - t0
        log.flush(False)
        progress.tick(step + 1, label, force=step + 1 == s.iterations)
        every = s.checkpoint_every
        if every > 0 and (step + 1) % every == 0 and step + 1 < s.iterations:
            log.flush(True)  # a checkpoint never holds a state the NaN check has not seen
            tensors_out = {f"p/{k}": v.detach() for k, v in params.items()}
            tensors_out.update(adam.state())
            ctx.save_checkpoint(step + 1, tensors_out, {"adam_step": adam.step, "distill_s": seconds})
    log.flush(True)
    return seconds


def sds_term(world: Any, sp: SdsPlan, device: torch.device) -> TermAt:
    """SDD's guidance (distill.ts distill): SDS at t drawn uniformly from S, injected at the
    diffusion latent of the edited images (a posterior sample with the `vae` stream, else the mean).
    Its logged value is ⟨g, z⟩, not a meaningful loss."""

    def term_at(rng: Rng, step: int) -> Term:
        i = rng.int(len(sp.timesteps))
        rng.int(2**31), rng.int(2**31)  # the two tf.randomNormal seeds TS draws here: kept in step
        eps, vae = stream_at(sp.noise, step, device), stream_at(sp.vae_noise, step, device)

        def loss(x2: Tensor, _original: Callable[[], Tensor]) -> Tensor:
            z = world.encode(x2, vae)
            return sds_loss(world, z, sp, i, eps)

        return Term(loss, {"t": float(sp.timesteps[i])})

    return term_at


@torch.no_grad()
def edit_latents(world: Any, params: Mapping[str, Tensor], w: Tensor, ms: MapperSettings, frozen: Frozen) -> Tensor:
    """Edited images for W+ codes: one generator forward with the mapper, clipped to [0, 1]."""
    w2 = apply_mapper(params, w, ms)
    with frozen():
        return world.style.generate(w2).float().clamp(0, 1)
