"""Minimal OFFLINE stub of huggingface_hub: enough for `import diffusers` and
building models from configs. Every network operation raises."""
__version__ = "0.36.0"
from . import constants, utils, file_download, _commit_api
from .utils import OfflineModeIsEnabled


def _offline(*a, **k):
    raise OfflineModeIsEnabled("huggingface_hub stub: no network access in this environment")


hf_hub_download = snapshot_download = model_info = create_repo = create_commit = _offline
upload_file = upload_folder = read_dduf_file = _offline


def get_token():
    return None


class DDUFEntry:  # only used for isinstance / type hints
    pass


class ModelCardData(dict):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.__dict__.update(kw)


class ModelCard:
    def __init__(self, content="", **kw):
        self.content = content
        self.data = ModelCardData()

    @classmethod
    def load(cls, *a, **k):
        _offline()

    @classmethod
    def from_template(cls, card_data=None, template_path=None, **kw):
        c = cls("")
        c.data = card_data or ModelCardData()
        return c

    def save(self, path):
        with open(path, "w") as f:
            f.write(str(self.content))


def split_torch_state_dict_into_shards(
    state_dict, filename_pattern="model{suffix}.safetensors", max_shard_size=None, **kw
):
    """Single-shard implementation (no real sharding)."""
    from types import SimpleNamespace

    fname = filename_pattern.format(suffix="")
    return SimpleNamespace(
        is_sharded=False,
        filename_to_tensors={fname: list(state_dict.keys())},
        tensor_to_filename={k: fname for k in state_dict},
        metadata={},
    )


# The submodules are imported for their side effect (diffusers reads them as attributes).
__all__ = [
    "constants",
    "utils",
    "file_download",
    "_commit_api",
    "OfflineModeIsEnabled",
    "hf_hub_download",
    "snapshot_download",
    "model_info",
    "create_repo",
    "create_commit",
    "upload_file",
    "upload_folder",
    "read_dduf_file",
    "get_token",
    "DDUFEntry",
    "ModelCardData",
    "ModelCard",
    "split_torch_state_dict_into_shards",
]
