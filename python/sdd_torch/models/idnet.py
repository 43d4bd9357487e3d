"""Twin of datasets/toyfaces/models/idnet.ts: the identity embedding (ArcFace role)."""
from typing import Any, Dict, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from sdd_torch.nn import Tower, unit


class IdNet(Tower):
    def __init__(self, cfg: Mapping[str, Any], classes: int) -> None:
        widths = [int(w) for w in cfg["widths"]]
        super().__init__(widths, int(cfg["groups"]))
        self.embed = nn.Linear(widths[-1], int(cfg["embedding"]))
        # The ArcFace classifier [embedding, classes]: a training head, held so the file is used exactly.
        self.arc = nn.Module()
        self.arc.register_buffer("weight", torch.zeros(int(cfg["embedding"]), classes))

    def forward(self, x: Tensor) -> Tensor:
        """idnetEmbed: NHWC [0, 1] images -> unit embeddings [B, E]."""
        return unit(self.embed(self.features(x).mean(dim=(2, 3))))


def build(cfg: Mapping[str, Any], tensors: Dict[str, np.ndarray]) -> IdNet:
    return IdNet(cfg, tensors["arc.weight"].shape[1] if "arc.weight" in tensors else 0)
