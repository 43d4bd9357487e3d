"""Twin of datasets/toyfaces/world_models.ts: the toyfaces World over the zoo models' torch twins.

Every method takes and returns NHWC float32 tensors (on the world's device); models run in eval
mode with frozen weights, so gradients flow to inputs only.
"""
from typing import Any, Mapping, Optional, Tuple

import torch
from torch import Tensor

from sdd_torch.models import build
from sdd_torch.models.clip import Clip
from sdd_torch.models.diffae import DiffAe
from sdd_torch.models.featnet import FeatNet
from sdd_torch.models.idnet import IdNet
from sdd_torch.models.ldm import Ldm
from sdd_torch.models.stylegen import StyleGen
from sdd_torch.models.vae import Vae

REQUIRED = ("vae", "clip", "ldm", "stylegen", "idnet", "featnet")


def _f32(x: Tensor) -> Tensor:
    """The boundary's dtype, whatever precision (autocast) the model ran at."""
    return x if x.dtype == torch.float32 else x.float()


class Identity:
    """world.identity: the idnet embedding."""

    def __init__(self, idnet: IdNet) -> None:
        self.model = idnet

    def embed(self, x: Tensor) -> Tensor:
        return _f32(self.model(x))


class Features:
    """world.featnet: FID features and the attribute heads' logits (by attribute name)."""

    def __init__(self, featnet: FeatNet) -> None:
        self.model = featnet

    def features(self, x: Tensor) -> Tensor:
        return _f32(self.model(x))

    def logits(self, features: Tensor) -> Any:
        return {k: _f32(v) for k, v in self.model.logits(features).items()}


class World:
    name = "toyfaces"

    def __init__(self, specs: Mapping[str, Mapping[str, Any]], device: torch.device) -> None:
        lacking = [n for n in REQUIRED if n not in specs]
        if lacking:
            raise ValueError(f"toyfaces: the manifest's engine.models lacks {', '.join(lacking)}")
        self.device = device
        self.vae: Vae = build("vae", specs["vae"], device)
        self.ldm: Ldm = build("ldm", specs["ldm"], device)
        self.clip: Clip = build("clip", specs["clip"], device)
        self.style: Optional[StyleGen] = build("stylegen", specs["stylegen"], device)
        self.identity = Identity(build("idnet", specs["idnet"], device))
        self.featnet = Features(build("featnet", specs["featnet"], device))
        self.diffae: Optional[DiffAe] = build("diffae", specs["diffae"], device) if "diffae" in specs else None
        self.image_size = int(str(specs["vae"]["architecture"]["input"]).split("x")[0])
        self.latent_shape: Tuple[int, int, int] = self.ldm.latent_shape
        self.scale_factor = self.vae.scale_factor

    def encode(self, x: Tensor, noise: Optional[Tensor] = None) -> Tensor:
        """Images [b, H, W, 3] in [0, 1] -> scaled latents; with noise, the posterior sample
        mean + exp(logvar / 2) * noise (world_models.ts diffusionModels.encode)."""
        mean, logvar = self.vae.encode(x)
        z = mean if noise is None else mean + torch.exp(logvar * 0.5) * noise
        return _f32(z * self.scale_factor)

    def decode(self, z: Tensor) -> Tensor:
        """Scaled latents -> images (not clipped)."""
        return _f32(self.vae.decode(z / self.scale_factor))

    def text_condition(self, ids: Tensor) -> Tuple[Tensor, Tensor]:
        """Token ids [n, L] -> context [n, L, D] and key mask [n, L] (the empty prompt: all ones)."""
        context, mask = self.clip.text_condition(ids)
        return _f32(context), mask

    def eps(self, zt: Tensor, t: Tensor, context: Tensor, mask: Tensor) -> Tensor:
        """The latent U-Net's eps at float timesteps t [b]."""
        return _f32(self.ldm(zt, t, context, mask))


def load(ctx: Any) -> World:
    """The world of a run: the manifest's engine.models on the run's device."""
    return World(ctx.manifest["engine"]["models"], ctx.device)
