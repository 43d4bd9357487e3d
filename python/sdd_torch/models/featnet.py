"""Twin of datasets/toyfaces/models/featnet.ts: FID features and per-attribute heads.

The heads (head.<attribute>) are read off the file: attribute names and class counts live in TS;
logits come back by name.
"""
from typing import Any, Dict, List, Mapping

import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from sdd_torch.nn import Tower


class FeatNet(Tower):
    def __init__(self, cfg: Mapping[str, Any], heads: Dict[str, int]) -> None:
        widths: List[int] = [int(w) for w in cfg["widths"]]
        super().__init__(widths, int(cfg["groups"]))
        features = int(cfg["features"])
        self.proj = nn.Linear(widths[-1], features)
        self.head = nn.ModuleDict({name: nn.Linear(features, classes) for name, classes in heads.items()})

    def forward(self, x: Tensor) -> Tensor:
        """featnetFeatures: NHWC [0, 1] images -> features [B, features] (global mean pool, linear)."""
        return self.proj(self.features(x).mean(dim=(2, 3)))

    def logits(self, features: Tensor) -> Dict[str, Tensor]:
        """featnetLogits: per attribute, the head's logits over SiLU(features)."""
        h = F.silu(features)
        return {name: head(h) for name, head in self.head.items()}


def heads_of(tensors: Dict[str, np.ndarray], prefix: str) -> Dict[str, int]:
    """{attribute: classes} from the file's <prefix>.<attribute>.bias tensors, in file order."""
    lead, tail = prefix + ".", ".bias"
    return {
        k[len(lead) : -len(tail)]: int(v.shape[0])
        for k, v in tensors.items()
        if k.startswith(lead) and k.endswith(tail)
    }


def build(cfg: Mapping[str, Any], tensors: Dict[str, np.ndarray]) -> FeatNet:
    return FeatNet(cfg, heads_of(tensors, "head"))
