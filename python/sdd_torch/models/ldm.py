"""Twin of datasets/toyfaces/models/ldm.ts: the conditional U-Net over scaled VAE latents."""
from typing import Any, Dict, Mapping

import numpy as np
from torch import Tensor

from sdd_torch.nn import CondUNet, nchw, nhwc


class Ldm(CondUNet):
    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__(cfg, int(cfg["contextDim"]))
        self.latent_shape = (int(cfg["latentSize"]), int(cfg["latentSize"]), int(cfg["latentChannels"]))

    def forward(self, zt: Tensor, t: Tensor, context: Tensor, mask: Tensor) -> Tensor:
        """eps for NHWC latents zt at float timesteps t [B], context [B, M, D], key mask [B, M]."""
        return nhwc(self.unet(nchw(zt), t, context, mask))


def build(cfg: Mapping[str, Any], tensors: Dict[str, np.ndarray]) -> Ldm:
    return Ldm(cfg)
