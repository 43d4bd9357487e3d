"""Twin of src/nn/clip.ts: CLIP's text (and vision) transformers as Hugging Face transformers lays
them out (CLIPTextModel, SD v1's text_encoder; CLIPModel with both towers and projections), from
`config.json` (parsed by clip_config.py) + `model.safetensors`. Pre-LayerNorm residual blocks,
quick-GELU or GELU, a causal mask for text (-1e9, as TS), the pooled text feature at the first
end-of-text token (the highest id with a legacy eos_token_id 2), the image feature at the class
token.

Token ids come from our tokenizer (TS); this module never tokenizes. transformers 5 saves a
CLIPTextModel without the `text_model.` prefix: both layouts load, a file with both spellings of
one tensor is refused. The position_ids buffers of older checkpoints are left out.
"""
import os
import re
from typing import Any, Dict, Mapping, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdd_torch.models.clip_config import ClipConfig, TowerConfig, parse_clip_config
from sdd_torch.models.sd_blocks import attention_core, merge_heads, split_heads
from sdd_torch.models.sd_config import (
    ConfigError,
    load_strict,
    read_json_object,
    read_torch_tensors,
    with_weights,
)


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
    rename = text_model_name if c.kind == "CLIPTextModel" else None
    return with_weights(ClipModel(c), tensors, source, random_seed, rename, _is_position_ids)


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
