"""Twin of src/nn/clip_config.ts: a transformers CLIP config.json (CLIPModel with both towers and
projections, or CLIPTextModel) parsed into the settings clip_text.py builds from, every key read,
declared irrelevant or refused in one line as the TS parser does.
"""
from typing import Any, Dict, List, Mapping, NamedTuple, Optional

import numpy as np

from sdd_torch.models.sd_config import ConfigError, Json, dumps


class TowerConfig(NamedTuple):
    hidden: int
    intermediate: int
    layers: int
    heads: int
    act: str
    eps: float
    # text: vocab_size, max_position_embeddings, eos_token_id; vision: image_size, patch_size, num_channels
    vocab_size: int = 0
    max_positions: int = 0
    eos_token_id: int = 0
    image_size: int = 0
    patch_size: int = 0
    channels: int = 0


class ClipConfig(NamedTuple):
    kind: str  # "CLIPModel" (both towers and projections) or "CLIPTextModel"
    text: TowerConfig
    vision: Optional[TowerConfig]
    projection_dim: Optional[int]


_TOWER_KEYS = [
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "hidden_act",
    "layer_norm_eps",
]
_TEXT_KEYS = _TOWER_KEYS + ["vocab_size", "max_position_embeddings", "eos_token_id"]
_VISION_KEYS = _TOWER_KEYS + ["image_size", "patch_size", "num_channels"]

# Keys of a transformers CLIP config that cannot change the features this port computes, by group
# (the same lists as clip.ts CLIP_IRRELEVANT). Everything else is refused in one line.
CLIP_IRRELEVANT: Dict[str, List[str]] = {
    # Training only: dropout is the identity at inference, the initialisers are overwritten by the weights.
    "training": [
        "attention_dropout",
        "dropout",
        "initializer_range",
        "initializer_factor",
        "logit_scale_init_value",
        "gradient_checkpointing",
    ],
    # The projection width of a tower's own *WithProjection class (CLIPModel reads the top-level one).
    "projection": ["projection_dim"],
    # Token ids the tokenizer uses; the text tower reads only eos_token_id (pooling).
    "tokens": ["bos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id"],
    # Bookkeeping, storage dtype (computation is float32), kernel choice and output format.
    "bookkeeping": [
        "architectures",
        "model_type",
        "transformers_version",
        "torch_dtype",
        "dtype",
        "use_bfloat16",
        "tf_legacy_loss",
        "torchscript",
        "return_dict",
        "output_attentions",
        "output_hidden_states",
        "use_return_dict",
        "_attn_implementation",
        "_attn_implementation_autoset",
        "_commit_hash",
        "use_cache",
    ],
    # Heads, labels and tasks of other model classes; CLIP's towers never read them.
    "other_classes": [
        "is_encoder_decoder",
        "is_decoder",
        "add_cross_attention",
        "cross_attention_hidden_size",
        "tie_encoder_decoder",
        "tie_word_embeddings",
        "chunk_size_feed_forward",
        "finetuning_task",
        "id2label",
        "label2id",
        "num_labels",
        "problem_type",
        "tokenizer_class",
        "prefix",
        "task_specific_params",
    ],
    # Text generation settings (older transformers saved them in every config); CLIP does not generate.
    "generation": [
        "max_length",
        "min_length",
        "do_sample",
        "early_stopping",
        "num_beams",
        "num_beam_groups",
        "diversity_penalty",
        "temperature",
        "top_k",
        "top_p",
        "typical_p",
        "repetition_penalty",
        "length_penalty",
        "no_repeat_ngram_size",
        "encoder_no_repeat_ngram_size",
        "bad_words_ids",
        "num_return_sequences",
        "output_scores",
        "return_dict_in_generate",
        "forced_bos_token_id",
        "forced_eos_token_id",
        "remove_invalid_values",
        "exponential_decay_length_penalty",
        "suppress_tokens",
        "begin_suppress_tokens",
    ],
}
_IRRELEVANT_KEYS = [k for ks in CLIP_IRRELEVANT.values() for k in ks]


def _refuse_unknown(file: str, o: Mapping[str, Any], where: str, read: List[str]) -> None:
    """Every key is read, irrelevant or bookkeeping ("_…"); pruned heads change the model."""
    known = set(read) | set(_IRRELEVANT_KEYS)
    for k in o:
        if k not in known and not k.startswith("_"):
            raise ConfigError(
                f"{file}: {where}{k}: not a setting this loader implements ({dumps(o[k])[:60]}); "
                "refused rather than ignored"
            )
    pruned = o.get("pruned_heads")
    if pruned is not None and (not isinstance(pruned, dict) or len(pruned) > 0):
        raise ConfigError(f"{file}: {where}pruned_heads {dumps(pruned)}: pruned attention heads are not supported")


def _field(file: str, o: Mapping[str, Any], key: str, kind: type, fallback: Any = None) -> Any:
    v = o.get(key)
    v = fallback if v is None else v
    ok = (
        isinstance(v, str)
        if kind is str
        else isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
    )
    if not ok:
        raise ConfigError(f"{file}: {key} must be a {'string' if kind is str else 'number'} (got {dumps(o.get(key))})")
    return v


def _tower(file: str, o: Mapping[str, Any], where: str) -> Dict[str, Any]:
    act = _field(file, o, "hidden_act", str, "quick_gelu")
    if act not in ("quick_gelu", "gelu"):
        raise ConfigError(f"{file}: {where}hidden_act '{act}' is not supported (quick_gelu, gelu)")
    c = dict(
        hidden=int(_field(file, o, "hidden_size", float)),
        intermediate=int(_field(file, o, "intermediate_size", float)),
        layers=int(_field(file, o, "num_hidden_layers", float)),
        heads=int(_field(file, o, "num_attention_heads", float)),
        act=act,
        eps=float(_field(file, o, "layer_norm_eps", float, 1e-5)),
    )
    if c["hidden"] % c["heads"]:
        raise ConfigError(
            f"{file}: {where}hidden_size {c['hidden']} is not a multiple of num_attention_heads {c['heads']}"
        )
    return c


def _text_config(file: str, o: Mapping[str, Any], where: str) -> TowerConfig:
    _refuse_unknown(file, o, where, _TEXT_KEYS + ["pruned_heads"])
    return TowerConfig(
        **_tower(file, o, where),
        vocab_size=int(_field(file, o, "vocab_size", float, 49408)),
        max_positions=int(_field(file, o, "max_position_embeddings", float, 77)),
        eos_token_id=int(_field(file, o, "eos_token_id", float, 2)),
    )


def _vision_config(file: str, o: Mapping[str, Any]) -> TowerConfig:
    _refuse_unknown(file, o, "vision_config.", _VISION_KEYS + ["pruned_heads"])
    c = TowerConfig(
        **_tower(file, o, "vision_config."),
        image_size=int(_field(file, o, "image_size", float, 224)),
        patch_size=int(_field(file, o, "patch_size", float, 32)),
        channels=int(_field(file, o, "num_channels", float, 3)),
    )
    if c.image_size % c.patch_size:
        raise ConfigError(
            f"{file}: vision_config.image_size {c.image_size} is not a multiple of patch_size {c.patch_size}"
        )
    return c


def _check_config_dict(file: str, o: Mapping[str, Any], key: str, tower: Mapping[str, Any]) -> None:
    """Older CLIPModel configs repeat a tower's settings in *_config_dict: accepted where they agree."""
    d = o.get(key)
    if d is None:
        return
    if not isinstance(d, dict):
        raise ConfigError(f"{file}: {key} must be an object or null")
    for k, v in d.items():
        if k in tower and dumps(tower[k]) != dumps(v):
            raise ConfigError(
                f"{file}: {key}.{k} {dumps(v)} differs from {key.replace('_dict', '')}.{k} {dumps(tower[k])}: "
                "ambiguous, not supported"
            )


def parse_clip_config(file: str, o: Any) -> ClipConfig:
    """A transformers CLIP config.json: CLIPModel (text_config + vision_config) or CLIPTextModel."""
    if not isinstance(o, dict):
        raise ConfigError(f"{file}: not a JSON object")
    archs = o.get("architectures")
    arch = str(archs[0]) if isinstance(archs, list) and archs else str(o.get("model_type") or "")
    if arch in ("CLIPTextModel", "clip_text_model"):
        return ClipConfig("CLIPTextModel", _text_config(file, o, ""), None, None)
    if arch not in ("CLIPModel", "clip"):
        raise ConfigError(f"{file}: architectures '{arch}' is not a CLIP model (CLIPModel, CLIPTextModel)")

    def sub(k: str) -> Json:
        v = o.get(k)
        if not isinstance(v, dict):
            raise ConfigError(f"{file}: {k} is missing")
        return v

    _refuse_unknown(
        file, o, "", ["text_config", "vision_config", "text_config_dict", "vision_config_dict", "pruned_heads"]
    )
    config = ClipConfig(
        "CLIPModel",
        _text_config(file, sub("text_config"), "text_config."),
        _vision_config(file, sub("vision_config")),
        int(_field(file, o, "projection_dim", float, 512)),
    )
    _check_config_dict(file, o, "text_config_dict", sub("text_config"))
    _check_config_dict(file, o, "vision_config_dict", sub("vision_config"))
    return config
