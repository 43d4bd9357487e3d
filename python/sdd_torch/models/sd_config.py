"""Reading diffusers / transformers model folders for the SD twins: config.json checked key by key
(port of src/diffusion/models/diffusers_config.ts) and the PyTorch-layout safetensors weights
(port of src/nn/torch_weights.ts) loaded strictly into a module whose parameter names are the
file's.

No key is ignored silently: a parser reads every key it implements through ConfigReader, names the
keys that cannot change inference (with the reason) in `irrelevant`, and `finish` refuses whatever
is left, in one line naming the file and the key. Published diffusers weights are already in
PyTorch's layouts (OIHW kernels, [out, in] linear weights), so tensors are copied as they are; only
names may be mapped (an older layout's names, transformers 5's unprefixed CLIPTextModel).
"""
import json
import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, TypeVar

import numpy as np
import torch
from torch import nn

from sdd_torch.nn import WeightsError
from sdd_torch.safetensors_np import SafetensorsError, read

Json = Dict[str, Any]


class ConfigError(ValueError):
    """A config.json this port does not implement or cannot read: one line naming the file and key."""


def dumps(v: Any) -> str:
    """JSON as JS's JSON.stringify writes it (no spaces), for messages identical to the TS loader's."""
    return json.dumps(v, separators=(",", ":"))


def read_json_object(file: str) -> Json:
    try:
        with open(file, encoding="utf-8") as f:
            v = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{file}: {str(e).splitlines()[0]}") from None
    if not isinstance(v, dict):
        raise ConfigError(f"{file}: not a JSON object")
    return v


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def refuse_unknown_keys(file: str, o: Mapping[str, Any], known: Iterable[str]) -> None:
    """The first key of `o` that is neither bookkeeping ("_…", dropped by diffusers) nor known, refused."""
    known_set = set(known)
    for k in o:
        if not k.startswith("_") and k not in known_set:
            raise ConfigError(
                f"{file}: {k}: not a setting this loader implements ({dumps(o[k])}); refused rather than ignored"
            )


_MISSING = object()


class ConfigReader:
    """Typed accessors over one config file (diffusers_config.ts ConfigReader): a wrong or missing
    value names the file and key; a null in the file is a value, not an absence."""

    def __init__(self, file: str, o: Mapping[str, Any]) -> None:
        self.file = file
        self.o = o
        self.seen: Set[str] = set()

    @staticmethod
    def of(folder: str) -> "ConfigReader":
        file = os.path.join(folder, "config.json")
        return ConfigReader(file, read_json_object(file))

    def value(self, key: str, fallback: Any = _MISSING) -> Any:
        self.seen.add(key)
        if key in self.o:
            return self.o[key]
        return None if fallback is _MISSING else fallback

    def has_value(self, key: str) -> bool:
        """Whether the key is in the file with a non-null value (marks it read)."""
        return self.value(key, None) is not None

    def irrelevant(self, keys: Mapping[str, str]) -> None:
        """Keys that cannot change what this port computes, each with the reason: accepted whatever their value."""
        self.seen.update(keys)

    def finish(self) -> None:
        refuse_unknown_keys(self.file, self.o, self.seen)

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.file}: {key} {message}")

    def num(self, key: str, fallback: Any = _MISSING) -> float:
        v = self.value(key, fallback)
        if not _is_number(v):
            raise self.fail(key, f"must be a number (got {dumps(v)})")
        return float(v)

    def integer(self, key: str, fallback: Any = _MISSING) -> int:
        v = self.num(key, fallback)
        if v != int(v) or v < 0:
            raise self.fail(key, f"must be a non-negative integer (got {dumps(self.o.get(key, fallback))})")
        return int(v)

    def flag(self, key: str, fallback: bool) -> bool:
        v = self.value(key, fallback)
        if not isinstance(v, bool):
            raise self.fail(key, f"must be true or false (got {dumps(v)})")
        return v

    def text(self, key: str, fallback: Any = _MISSING) -> str:
        v = self.value(key, fallback)
        if not isinstance(v, str):
            raise self.fail(key, f"must be a string (got {dumps(v)})")
        return v

    def items(self, key: str, kind: type, fallback: Any = _MISSING) -> List[Any]:
        """A non-empty list of strings (kind str) or numbers (kind int)."""
        v = self.value(key, fallback)
        ok = isinstance(v, list) and len(v) > 0 and all(isinstance(e, str) if kind is str else _is_number(e) for e in v)
        if not ok:
            raise self.fail(
                key, f"must be a non-empty list of {'string' if kind is str else 'number'}s (got {dumps(v)})"
            )
        return [e if kind is str else int(e) for e in v]

    def per_block(self, key: str, blocks: int, fallback: int) -> List[int]:
        """One number for every block, or a list with one number per block."""
        v = self.value(key, fallback)
        if _is_number(v):
            return [int(v)] * blocks
        if isinstance(v, list) and len(v) == blocks and all(_is_number(e) for e in v):
            return [int(e) for e in v]
        raise self.fail(key, f"must be a number or a list of {blocks} numbers (got {dumps(v)})")

    def silu(self, key: str = "act_fn") -> None:
        """act_fn: SiLU under any of diffusers' names for it (get_activation lower-cases)."""
        v = self.value(key, "silu")
        if not isinstance(v, str) or v.lower() not in ("silu", "swish"):
            raise self.fail(key, f'{dumps(v)} is not supported (supported: "silu", "swish")')

    def only(self, key: str, allowed: Sequence[Any], fallback: Any) -> Any:
        """A setting implemented only at the listed values: anything else is refused, not run differently."""
        v = self.value(key, fallback)
        if not any(dumps(a) == dumps(v) for a in allowed):
            raise self.fail(key, f"{dumps(v)} is not supported (supported: {', '.join(dumps(a) for a in allowed)})")
        return v


def diffusers_weights(folder: str) -> str:
    """The weights of a diffusers model folder (single file or sharded index)."""
    for f in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json"):
        if os.path.exists(os.path.join(folder, f)):
            return os.path.join(folder, f)
    pickle = (
        " (diffusion_pytorch_model.bin is a PyTorch pickle: publish or convert to safetensors)"
        if os.path.exists(os.path.join(folder, "diffusion_pytorch_model.bin"))
        else ""
    )
    raise ConfigError(f"{folder}: no diffusion_pytorch_model.safetensors{pickle}")


def _shards(path: str) -> List[str]:
    """The files of a weights path: itself, or the shards its index.json's weight_map names."""
    if not path.endswith(".index.json"):
        return [path]
    index = read_json_object(path)
    wmap = index.get("weight_map")
    if not isinstance(wmap, dict) or not all(isinstance(v, str) for v in wmap.values()):
        raise ConfigError(f"{path}: weight_map must be an object of tensor name -> file")
    return [os.path.join(os.path.dirname(path), f) for f in sorted(set(wmap.values()))]


def renamed(
    tensors: Mapping[str, np.ndarray],
    source: str,
    rename: Optional[Callable[[str], str]] = None,
    ignore: Optional[Callable[[str], bool]] = None,
    into: Optional[Dict[str, np.ndarray]] = None,
    origin: Optional[Dict[str, str]] = None,
) -> Dict[str, np.ndarray]:
    """File tensors under the model's names (`rename`), minus the ones the model never uses
    (`ignore`). Two file tensors that become one name are refused: neither layout may silently win."""
    out: Dict[str, np.ndarray] = {} if into is None else into
    seen: Dict[str, str] = {} if origin is None else origin
    for name, value in tensors.items():
        if ignore is not None and ignore(name):
            continue
        as_ = rename(name) if rename is not None else name
        if as_ in seen:
            raise WeightsError(f"{source}: {name} and {seen[as_]} are both {as_}")
        seen[as_] = name
        out[as_] = value
    return out


def read_torch_tensors(
    path: str, rename: Optional[Callable[[str], str]] = None, ignore: Optional[Callable[[str], bool]] = None
) -> Dict[str, np.ndarray]:
    """Every tensor of a PyTorch-layout file or sharded index (float32 for float dtypes), renamed
    and filtered as `renamed` does."""
    out: Dict[str, np.ndarray] = {}
    origin: Dict[str, str] = {}
    for shard in _shards(path):
        try:
            tensors, _ = read(shard)
        except SafetensorsError as e:
            raise WeightsError(str(e)) from None
        renamed(tensors, path, rename, ignore, out, origin)
    return out


def _few(what: str, names: List[str]) -> str:
    shown = ", ".join(names[:3])
    return f"{what} {len(names)} ({shown}{', …' if len(names) > 3 else ''})"


def load_strict(model: nn.Module, tensors: Mapping[str, np.ndarray], source: str) -> None:
    """Fills every parameter of `model` from `tensors` (names = the module paths). The file must hold
    exactly the model's tensors in their shapes, or one WeightsError line names the missing,
    unexpected and mis-shaped ones (as Params.verify does in TS); then eval mode, weights frozen."""
    params = dict(model.named_parameters())
    missing = [k for k in params if k not in tensors]
    unexpected = [k for k in tensors if k not in params]
    wrong = [
        f"{k} is {list(tensors[k].shape)}, the model expects {list(p.shape)}"
        for k, p in params.items()
        if k in tensors and tuple(tensors[k].shape) != tuple(p.shape)
    ]
    problems = [_few(w, n) for w, n in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if n]
    if problems:
        raise WeightsError(
            f"{source}: does not fit the model ({len(params)} model tensors, {len(tensors)} in the file): "
            f"{'; '.join(problems)}"
        )
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(
                torch.from_numpy(np.array(tensors[k], dtype=np.float32, order="C"))
            )  # np.array keeps 0-d (logit_scale) 0-d
    model.eval()
    model.requires_grad_(False)


def seeded_init(model: nn.Module, seed: int) -> None:
    """Random weights for a model with no file (paper-random at full size): deterministic per seed,
    not equal to the TS engine's (they need not match across engines). Norm scales one, biases
    zero, embeddings N(0, 0.02²), every other weight N(0, 1/fan_in) as the TS initialisers draw
    them; drawn on the CPU in parameter order, so any device gets the same values. Then eval mode,
    weights frozen."""
    g = torch.Generator().manual_seed(seed)
    norms = (nn.GroupNorm, nn.LayerNorm)
    with torch.no_grad():
        for _, owner in model.named_modules():
            for leaf, p in owner.named_parameters(recurse=False):
                if leaf == "bias":
                    p.zero_()
                elif isinstance(owner, norms):
                    p.fill_(1.0)
                else:
                    std = 0.02 if isinstance(owner, nn.Embedding) or p.dim() < 2 else float(p[0].numel()) ** -0.5
                    p.copy_(torch.randn(p.shape, generator=g) * std)
    model.eval()
    model.requires_grad_(False)


Model = TypeVar("Model", bound=nn.Module)


def with_weights(
    model: Model,
    tensors: Mapping[str, np.ndarray],
    source: str,
    random_seed: Optional[int],
    rename: Optional[Callable[[str], str]] = None,
    ignore: Optional[Callable[[str], bool]] = None,
) -> Model:
    """`model` with seeded random weights when `random_seed` is set (no file: paper-random), else
    with the file's tensors under its names (`renamed`), strictly loaded: the build_* loaders' end."""
    if random_seed is not None:
        seeded_init(model, random_seed)
    else:
        load_strict(model, renamed(tensors, source, rename, ignore), source)
    return model


def load_diffusers(model: Model, folder: str, rename: Optional[Callable[[str], str]] = None) -> Model:
    """`model` with a diffusers folder's weights (diffusers_weights, renamed by `rename`), strictly
    loaded: the load_* loaders' end."""
    weights = diffusers_weights(folder)
    load_strict(model, read_torch_tensors(weights, rename=rename), weights)
    return model
