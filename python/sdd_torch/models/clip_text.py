"""Twin of src/nn/clip.ts: CLIP's text (and vision) transformers as Hugging Face transformers lays
them out (CLIPTextModel, SD v1's text_encoder; CLIPModel with both towers and projections), from
`config.json` + `model.safetensors`, every config key read, declared irrelevant or refused in one
line as the TS parser does. Pre-LayerNorm residual blocks, quick-GELU or GELU, a causal mask for
text (-1e9, as TS), the pooled text feature at the first end-of-text token (the highest id with a
legacy eos_token_id 2), the image feature at the class token.

Token ids come from our tokenizer (TS); this module never tokenizes. transformers 5 saves a
CLIPTextModel without the `text_model.` prefix: both layouts load, a file with both spellings of
one tensor is refused. The position_ids buffers of older checkpoints are left out.
"""
import os
import re
from typing import Any, Dict, List, Mapping, NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdd_torch.models.sd_blocks import attention_core, merge_heads, split_heads
from sdd_torch.models.sd_config import (
    ConfigError,
    Json,
    dumps,
    load_strict,
    seeded_init,
    read_json_object,
    read_torch_tensors,
    renamed,
)


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


def _activation(x: Tensor, act: str) -> Tensor:
    return x * torch.sigmoid(1.702 * x) if act == "quick_gelu" else F.gelu(x)


class _SelfAttention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x: Tensor, mask: Optional[Tensor]) -> Tensor:
        q, k, v = (split_heads(f(x), self.heads) for f in (self.q_proj, self.k_proj, self.v_proj))
        return self.out_proj(merge_heads(attention_core(q, k, v, mask)))


class _Mlp(nn.Module):
    def __init__(self, d: int, inner: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, inner)
        self.fc2 = nn.Linear(inner, d)


class _Layer(nn.Module):
    def __init__(self, c: TowerConfig) -> None:
        super().__init__()
        self.act = c.act
        self.layer_norm1 = nn.LayerNorm(c.hidden, eps=c.eps)
        self.self_attn = _SelfAttention(c.hidden, c.heads)
        self.layer_norm2 = nn.LayerNorm(c.hidden, eps=c.eps)
        self.mlp = _Mlp(c.hidden, c.intermediate)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp.fc2(_activation(self.mlp.fc1(self.layer_norm2(x)), self.act))


class _Encoder(nn.Module):
    def __init__(self, c: TowerConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList([_Layer(c) for _ in range(c.layers)])


class _TextEmbeddings(nn.Module):
    def __init__(self, c: TowerConfig) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(c.vocab_size, c.hidden)
        self.position_embedding = nn.Embedding(c.max_positions, c.hidden)


class TextTransformer(nn.Module):
    """text_model: embeddings, causal encoder, final_layer_norm."""

    def __init__(self, c: TowerConfig) -> None:
        super().__init__()
        self.config = c
        self.embeddings = _TextEmbeddings(c)
        self.encoder = _Encoder(c)
        self.final_layer_norm = nn.LayerNorm(c.hidden, eps=c.eps)

    def forward(self, ids: Tensor) -> Tensor:
        """last_hidden_state [B, T, D] of token ids [B, T]; SD v1 conditions on it (T = 77)."""
        c = self.config
        t = ids.shape[1]
        if t > c.max_positions:
            raise ValueError(f"CLIP text: {t} tokens, the model takes at most {c.max_positions}")
        emb = self.embeddings
        x = emb.token_embedding(ids.long()) + emb.position_embedding.weight[:t]
        mask = torch.full((t, t), -1e9, dtype=x.dtype, device=x.device).triu(1)[None, None]
        for layer in self.encoder.layers:
            x = layer(x, mask)
        return self.final_layer_norm(x)


class _VisionEmbeddings(nn.Module):
    def __init__(self, c: TowerConfig) -> None:
        super().__init__()
        grid = c.image_size // c.patch_size
        self.class_embedding = nn.Parameter(torch.zeros(c.hidden))
        self.patch_embedding = nn.Conv2d(c.channels, c.hidden, c.patch_size, stride=c.patch_size, bias=False)
        self.position_embedding = nn.Embedding(grid * grid + 1, c.hidden)


class VisionTransformer(nn.Module):
    """vision_model: patch embedding, class token, pre_layrnorm, encoder, post_layernorm of the class token."""

    def __init__(self, c: TowerConfig) -> None:
        super().__init__()
        self.embeddings = _VisionEmbeddings(c)
        self.pre_layrnorm = nn.LayerNorm(c.hidden, eps=c.eps)
        self.encoder = _Encoder(c)
        self.post_layernorm = nn.LayerNorm(c.hidden, eps=c.eps)

    def forward(self, pixels: Tensor) -> Tensor:
        """Pooled features [B, D] of normalised NCHW pixel_values."""
        e = self.embeddings
        patches = e.patch_embedding(pixels).flatten(2).transpose(1, 2)
        cls = e.class_embedding.reshape(1, 1, -1).expand(pixels.shape[0], 1, -1)
        x = self.pre_layrnorm(torch.cat([cls, patches], dim=1) + e.position_embedding.weight)
        for layer in self.encoder.layers:
            x = layer(x)
        return self.post_layernorm(x[:, 0])


class ClipModel(nn.Module):
    """CLIPTextModel (text_model only) or CLIPModel (both towers, projections, logit_scale)."""

    def __init__(self, c: ClipConfig) -> None:
        super().__init__()
        self.config = c
        self.text_model = TextTransformer(c.text)
        if c.vision is not None and c.projection_dim is not None:
            self.vision_model = VisionTransformer(c.vision)
            self.text_projection = nn.Linear(c.text.hidden, c.projection_dim, bias=False)
            self.visual_projection = nn.Linear(c.vision.hidden, c.projection_dim, bias=False)
            self.logit_scale = nn.Parameter(torch.zeros(()))

    def text_hidden(self, ids: Tensor) -> Tensor:
        return self.text_model(ids)

    def eos_positions(self, ids: Tensor) -> Tensor:
        """The pooled row per sequence: the first end-of-text token (transformers), or with a legacy
        eos_token_id 2 the highest id (the original code)."""
        eos = self.config.text.eos_token_id
        if eos == 2:
            return ids.argmax(dim=1)
        hit = ids == eos
        if not bool(hit.any(dim=1).all()):
            row = int((~hit.any(dim=1)).nonzero()[0])
            raise ValueError(f"CLIP text: sequence {row} has no end-of-text token ({eos})")
        return hit.to(torch.int64).argmax(dim=1)

    def text_embeds(self, ids: Tensor) -> Tensor:
        """Projected text features [B, projection_dim] (CLIPModel.get_text_features)."""
        hidden = self.text_model(ids)
        pooled = hidden[torch.arange(ids.shape[0], device=ids.device), self.eos_positions(ids)]
        return self.text_projection(pooled)

    def image_embeds(self, pixels_nhwc: Tensor) -> Tensor:
        """Projected image features [B, projection_dim] of normalised NHWC pixel_values."""
        return self.visual_projection(self.vision_model(pixels_nhwc.permute(0, 3, 1, 2)))


_TEXT_PARTS = re.compile(r"^(embeddings|encoder|final_layer_norm)\.")


def text_model_name(name: str) -> str:
    """transformers 5's unprefixed CLIPTextModel names (embeddings., encoder., final_layer_norm.) under text_model."""
    return f"text_model.{name}" if _TEXT_PARTS.match(name) else name


def _is_position_ids(name: str) -> bool:
    return name.endswith("embeddings.position_ids")


def build_clip(
    config: Mapping[str, Any],
    tensors: Dict[str, np.ndarray],
    config_file: str,
    source: str,
    random_seed: Optional[int] = None,
) -> ClipModel:
    """A CLIP of a config.json's contents with the file's tensors (both strictly)."""
    c = parse_clip_config(config_file, config)
    model = ClipModel(c)
    rename = text_model_name if c.kind == "CLIPTextModel" else None
    if random_seed is not None:
        seeded_init(model, random_seed)
        return model
    load_strict(model, renamed(tensors, source, rename, _is_position_ids), source)
    return model


def clip_weights(folder: str) -> str:
    """The weights file of a transformers folder: model.safetensors, or its sharded index."""
    for f in ("model.safetensors", "model.safetensors.index.json"):
        if os.path.exists(os.path.join(folder, f)):
            return os.path.join(folder, f)
    raise ConfigError(
        f"{folder}: no model.safetensors (a PyTorch pytorch_model.bin must be converted to safetensors first)"
    )


def load_clip(folder: str) -> ClipModel:
    """A CLIP folder (config.json + model.safetensors) loaded strictly."""
    cfg_file = os.path.join(folder, "config.json")
    c = parse_clip_config(cfg_file, read_json_object(cfg_file))
    model = ClipModel(c)
    weights = clip_weights(folder)
    rename = text_model_name if c.kind == "CLIPTextModel" else None
    load_strict(model, read_torch_tensors(weights, rename=rename, ignore=_is_position_ids), weights)
    return model
