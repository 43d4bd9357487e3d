"""World twins by manifest world name: each module has load(ctx) -> World (MODELS section of the
torch-engine spec). Imported lazily, so a method that needs no world never loads torch models."""
import importlib
from typing import Any

WORLDS = {
    "toyfaces": "sdd_torch.worlds.toyfaces",
    **{name: "sdd_torch.worlds.paper" for name in ("paper", "paper-random", "paper-random-tiny")},
}


def load(ctx: Any) -> Any:
    """The World of ctx.manifest["world"]["name"], its models on ctx.device."""
    name = str(ctx.manifest["world"]["name"])
    if name not in WORLDS:
        raise ValueError(f"world '{name}' has no torch twin (have: {', '.join(WORLDS)})")
    return importlib.import_module(WORLDS[name]).load(ctx)
