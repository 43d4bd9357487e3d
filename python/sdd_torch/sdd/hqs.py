"""Twin of the HQS scan of src/sdd/hqs.ts (Eq. 8–12): for each scanned t and each of K images x,

    d_t = ∂/∂x ⟨g_t, E(x)⟩      (g_t the guidance at the diffusion latent of x, ./guidance.py)
    N_t = mean |d_t|,  H_t = entropy of the spatial softmax of the channel mean of |d_t|,
    H_full_t = entropy of the softmax over every element,

per image (gradientStats), so any form and scaling (readHqs, in TS) reads one scan. One noise
draw and one VAE posterior draw per (image, t): here from the streams `hqs_sds` / `hqs_vae`
[T, K, h, w, c] instead of tf.randomNormal. The statistics are taken in float64, as TS does on
the host. Reading the curve and selecting S stay in TS (src/sdd/hqs.ts readHqs, selectTimesteps).
"""
import contextlib
from typing import Any, Callable, ContextManager, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from sdd_torch.sdd.guidance import SdsPlan, sds_loss, stream_at


def softmax_entropy(v: np.ndarray) -> float:
    """Entropy of softmax(v) (float64, shifted by the maximum)."""
    e = np.exp(v - v.max())
    q = e / e.sum()
    q = q[q > 0]
    return float(-(q * np.log(q)).sum())


def gradient_stats(d: np.ndarray) -> Tuple[float, float, float]:
    """N, H (spatial softmax of the channel mean of |d|) and H_full (softmax of every |d|) of one
    gradient image d [h, w, c] (hqs.ts gradientStats)."""
    a = np.abs(d.astype(np.float64))
    h, w, c = a.shape
    return float(a.sum() / (h * w * c)), softmax_entropy(a.sum(axis=2).reshape(-1) / c), softmax_entropy(a.reshape(-1))


def hqs_scan(
    world: Any,
    images: Tensor,
    sp: SdsPlan,
    on_step: Optional[Callable[[int], None]] = None,
    frozen: Optional[Callable[[], ContextManager[Any]]] = None,
) -> Dict[str, List[List[float]]]:
    """Per-image statistics {N, H, H_full}: [t][image] (hqs.ts ScanStats)."""
    stats: Dict[str, List[List[float]]] = {"N": [], "H": [], "H_full": []}
    device = images.device
    for i in range(len(sp.timesteps)):
        eps, vae = stream_at(sp.noise, i, device), stream_at(sp.vae_noise, i, device)
        x = images.detach().clone().requires_grad_(True)
        with frozen() if frozen is not None else contextlib.nullcontext():
            loss = sds_loss(world, world.encode(x, vae), sp, i, eps)
        (d,) = torch.autograd.grad(loss, [x])
        per = [gradient_stats(img) for img in d.detach().cpu().numpy()]
        stats["N"].append([s[0] for s in per])
        stats["H"].append([s[1] for s in per])
        stats["H_full"].append([s[2] for s in per])
        if on_step is not None:
            on_step(i + 1)
    return stats
