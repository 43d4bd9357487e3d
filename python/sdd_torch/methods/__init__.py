"""The torch twins of the built-in methods: method name (manifest "method") -> module path, each
imported only when a run asks for it. A twin module exposes `run(ctx: RunContext) -> None`.
"""
import importlib
from types import ModuleType
from typing import Dict

METHODS: Dict[str, str] = {
    "sdedit": "sdd_torch.methods.sdedit",
    "ddib": "sdd_torch.methods.ddib",
    "diffae": "sdd_torch.methods.diffae",
    "styleclip": "sdd_torch.methods.styleclip",
    "sdd": "sdd_torch.methods.sdd",
}


class NoTwin(Exception):
    """The method has no torch twin (one line)."""


def load(name: str) -> ModuleType:
    """The twin module of `name`; a method without one is one line saying so. An import error
    inside an existing module is not masked: it propagates as it is."""
    path = METHODS.get(name)
    if path is None:
        raise NoTwin(f"method {name} has no torch twin (not in sdd_torch.methods.METHODS)")
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as e:
        if e.name is not None and (path == e.name or path.startswith(e.name + ".")):
            raise NoTwin(f"method {name} has no torch twin (python/{path.replace('.', '/')}.py)") from None
        raise
    if not callable(getattr(module, "run", None)):
        raise NoTwin(f"method {name}: {path} has no run(ctx)")
    return module
