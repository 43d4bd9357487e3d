"""Twin of datasets/toyfaces/models/clip.ts: the mini-CLIP image and text towers.

Vocabulary size and MAX_TOKENS are not in the card: they are read off the file's text.token
[vocab, width] and text.position [tokens, width] (the tokenizer lives in TS; ids come from it).
"""
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdd_torch.nn import MultiHeadAttention, Tower, layer_norm, unit


class _Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.norm1 = layer_norm(d)
        self.attn = MultiHeadAttention(d, d, heads)
        self.norm2 = layer_norm(d)
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        a = self.norm1(h)
        h = h + self.attn(a, a, mask)
        return h + self.fc2(F.silu(self.fc1(self.norm2(h))))


class _Text(nn.Module):
    def __init__(self, cfg: Mapping[str, Any], vocab: int, tokens: int) -> None:
        super().__init__()
        d, layers = int(cfg["textWidth"]), int(cfg["textLayers"])
        self.layers = layers
        self.token = nn.Parameter(torch.zeros(vocab, d))
        self.position = nn.Parameter(torch.zeros(tokens, d))
        for i in range(layers):
            self.add_module(f"block{i}", _Block(d, int(cfg["textHeads"])))
        self.final = layer_norm(d)
        self.proj = nn.Linear(d, int(cfg["embedding"]))


def token_mask(ids: Tensor) -> Tensor:
    """clip.ts tokenMask: 1 for words (id > 0), 0 for padding, float32 [B, L]."""
    return (ids > 0).to(torch.float32)


class Clip(nn.Module):
    def __init__(self, cfg: Mapping[str, Any], vocab: int, tokens: int) -> None:
        super().__init__()
        widths: List[int] = [int(w) for w in cfg["imageWidths"]]
        self.image = Tower(widths, int(cfg["groups"]))
        self.image.proj = nn.Linear(widths[-1], int(cfg["embedding"]))
        self.text = _Text(cfg, vocab, tokens)
        # The contrastive temperature: a training tensor, held so that the file is used exactly.
        self.register_buffer("logit_scale", torch.zeros(1))
        self.tokens = tokens
        self.width = int(cfg["textWidth"])

    def image_embed(self, x: Tensor) -> Tensor:
        """clipImageEmbed: NHWC [0, 1] images -> unit embeddings [B, E]."""
        h = self.image.features(x)
        return unit(self.image.proj(h.mean(dim=(2, 3))))

    def text_sequence(self, ids: Tensor) -> Tensor:
        """clipTextSequence: last hidden states [B, L, width] of token ids [B, L] (int)."""
        text = self.text
        h = text.token[ids.long()] + text.position
        mask = token_mask(ids)
        for i in range(text.layers):
            h = getattr(text, f"block{i}")(h, mask)
        return text.final(h)

    def text_embed(self, ids: Tensor) -> Tensor:
        """clipTextEmbed: mean of the word positions' hidden states, projected, unit-norm [B, E]."""
        h = self.text_sequence(ids)
        mask = token_mask(ids)[:, :, None]
        pooled = (h * mask).sum(dim=1) / torch.clamp(mask.sum(dim=1), min=1)
        return unit(self.text.proj(pooled))

    def text_condition(self, ids: Tensor) -> Tuple[Tensor, Tensor]:
        """clip.ts textCondition: context [n, L, width] and key mask [n, L]; the empty prompt (no
        word) attends to all its positions, as SD attends to the encoding of ""."""
        m = token_mask(ids)
        empty = m.sum(dim=1, keepdim=True) == 0
        return self.text_sequence(ids), torch.where(empty, torch.ones_like(m), m)


def build(cfg: Mapping[str, Any], tensors: Dict[str, np.ndarray]) -> Clip:
    vocab = tensors["text.token"].shape[0] if "text.token" in tensors else 0
    tokens = tensors["text.position"].shape[0] if "text.position" in tensors else 0
    return Clip(cfg, vocab, tokens)
