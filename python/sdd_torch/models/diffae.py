"""Twin of datasets/toyfaces/models/diffae.ts: the semantic encoder and the z_sem-conditioned U-Net,
with the z_sem statistics and the per-attribute softmax-regression heads stored beside them."""
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from sdd_torch.models.featnet import heads_of
from sdd_torch.models.stylegen import image_size
from sdd_torch.nn import CondUNet, Tower, WeightsError, flatten_nhwc, nchw, nhwc


class DiffAe(CondUNet):
    def __init__(self, cfg: Mapping[str, Any], classes: Dict[str, int]) -> None:
        semantic = int(cfg["semantic"])
        super().__init__(cfg, semantic)
        widths: List[int] = [int(w) for w in cfg["encoderWidths"]]
        self.sem = Tower(widths, int(cfg["groups"]))
        side = image_size(cfg) >> (len(widths) - 1)
        self.sem.proj = nn.Linear(side * side * widths[-1], semantic)
        self.sem.register_buffer("mean", torch.zeros(semantic))
        self.sem.register_buffer("std", torch.ones(semantic))
        self.cls = nn.ModuleDict({name: nn.Linear(semantic, n) for name, n in classes.items()})

    def encode(self, x: Tensor) -> Tensor:
        """semanticEncode: NHWC [0, 1] images -> z_sem [B, semantic] (flattened in NHWC order)."""
        return self.sem.proj(flatten_nhwc(self.sem.features(x)))

    def eps(self, zt: Tensor, t: Tensor, zsem: Tensor) -> Tensor:
        """diffaeEps: the U-Net attends to z_sem as one always-visible context token."""
        b = zt.shape[0]
        ones = torch.ones(b, 1, dtype=zt.dtype, device=zt.device)
        return nhwc(self.unet(nchw(zt), t, zsem.reshape(b, 1, -1), ones))

    def normalise(self, z: Tensor) -> Tensor:
        return (z - self.sem.mean) / self.sem.std

    def denormalise(self, z: Tensor) -> Tensor:
        return z * self.sem.std + self.sem.mean

    def direction(
        self,
        attribute: str,
        target: Union[int, str],
        source: Optional[Union[int, str]] = None,
        values: Optional[Sequence[str]] = None,
    ) -> Tensor:
        """world_models.ts diffaeModels.direction: the classifier's target column minus the source
        column (or the mean of the other columns when source is None), unit-norm [semantic].

        target/source: class indices in the attribute's value order (TS valuesOf), or value names
        when `values` (that order) is given."""
        if attribute not in self.cls:
            raise WeightsError(f"diffae has no classifier for attribute '{attribute}'")
        cols = self.cls[attribute].weight  # [values, semantic]: row i is TS's column i

        def index(v: Union[int, str]) -> int:
            if isinstance(v, int):
                return v
            if values is None or v not in values:
                raise WeightsError(f"diffae: value '{v}' of '{attribute}' needs the attribute's value list")
            return list(values).index(v)

        ti = index(target)
        others = [i for i in range(cols.shape[0]) if i != ti]
        base = cols[index(source)] if source is not None else cols[others].mean(dim=0)
        d = cols[ti] - base
        return d / d.norm()


def build(cfg: Mapping[str, Any], tensors: Dict[str, np.ndarray]) -> DiffAe:
    return DiffAe(cfg, heads_of(tensors, "cls"))
