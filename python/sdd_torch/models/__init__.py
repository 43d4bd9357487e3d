"""The toyfaces zoo models as torch modules, loaded strictly from the zoo's safetensors files.

A model's spec is the manifest's engine.models[name] (docs: python/sdd_torch, the MODELS section of
the torch-engine spec): {"weights": path, "sha256": hex, "architecture": card architecture}.
`zoo_specs` builds the same dicts from a zoo folder (datasets/toyfaces/zoo/<name>/card.json) for tests.
"""
import importlib
import json
import pathlib
from typing import Any, Dict, Iterable, Mapping, Optional

import numpy as np
import torch
from torch import nn

from sdd_torch.nn import WeightsError, load_weights
from sdd_torch.safetensors_np import load

Spec = Mapping[str, Any]

# One module per zoo model, each with build(architecture, tensors) -> nn.Module.
MODELS = ("vae", "clip", "ldm", "stylegen", "idnet", "featnet", "diffae")


def zoo_specs(zoo_dir: pathlib.Path, names: Optional[Iterable[str]] = None) -> Dict[str, Dict[str, Any]]:
    """{name: spec} from each model's card.json in `zoo_dir` (every model with a card when names is None)."""
    chosen = list(names) if names is not None else [n for n in MODELS if (zoo_dir / n / "card.json").is_file()]
    specs: Dict[str, Dict[str, Any]] = {}
    for name in chosen:
        card = json.loads((zoo_dir / name / "card.json").read_text())
        path = zoo_dir / name / card["weights"]["file"]
        specs[name] = {
            "weights": str(path.resolve()),
            "sha256": card["weights"]["sha256"],
            "architecture": card["architecture"],
        }
    return specs


def read_tensors(name: str, spec: Spec) -> Dict[str, np.ndarray]:
    """The weights file's tensors as float32, after checking that it has the spec's sha256."""
    return load(str(spec["weights"]), sha256=str(spec["sha256"]))


def build(name: str, spec: Spec, device: torch.device = torch.device("cpu")) -> nn.Module:
    """Model `name` with its weights, strictly loaded, in eval mode, weights frozen, on `device`."""
    if name not in MODELS:
        raise WeightsError(f"no torch twin of zoo model '{name}' (have: {', '.join(MODELS)})")
    tensors = read_tensors(name, spec)
    model: nn.Module = importlib.import_module(f"sdd_torch.models.{name}").build(spec["architecture"], tensors)
    load_weights(model, tensors, spec["weights"])
    return model.to(device)
