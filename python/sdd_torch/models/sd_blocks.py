"""Twin of src/diffusion/models/diffusers_blocks.ts: the blocks diffusers' UNet2DConditionModel and
AutoencoderKL share, NCHW, under diffusers' parameter names (so a module tree built here has
exactly the tensor names of the published safetensors files, in their PyTorch layouts).

Attention runs through `attention_core`: torch's fused scaled_dot_product_attention where torch
has it (>= 2.0; the speed the paper-scale runs need), the plain softmax(q·kᵀ/√d)·v otherwise.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_SDPA = getattr(F, "scaled_dot_product_attention", None)


def attention_core(q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """softmax(q·kᵀ/√dh + mask)·v over [B, H, T, dh] (attention.ts scaledDotProductAttention);
    `mask` is additive, broadcast to [B, H, Tq, Tk]."""
    if _SDPA is not None:
        return _SDPA(q, k, v, attn_mask=mask)
    logits = (q @ k.transpose(-1, -2)) * (1 / math.sqrt(q.shape[-1]))
    if mask is not None:
        logits = logits + mask
    return torch.softmax(logits, dim=-1) @ v


def split_heads(x: Tensor, heads: int) -> Tensor:
    """[B, T, H·dh] -> [B, H, T, dh]."""
    b, t, d = x.shape
    return x.reshape(b, t, heads, d // heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """[B, H, T, dh] -> [B, T, H·dh]."""
    b, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(b, t, h * dh)


def conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    """A diffusers convolution: padding k // 2 (1 for 3×3, none for 1×1), as TS's conv2d pads them."""
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def gelu_exact(x: Tensor) -> Tensor:
    """x · Φ(x) with the erf (torch's nn.GELU(), and TS's 0.5·x·(1 + erf(x/√2)))."""
    return F.gelu(x)


class ResnetBlock2D(nn.Module):
    """conv1(silu(norm1 x)) [+ time_emb_proj(silu temb)], conv2(silu(norm2 h)), added to x (through
    a 1×1 conv_shortcut when the width changes). Dropout is the identity at inference."""

    def __init__(self, cin: int, cout: int, groups: int, eps: float, temb: Optional[int]) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = conv(cin, cout)
        self.time_emb_proj: Optional[nn.Linear] = nn.Linear(temb, cout) if temb is not None else None
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = conv(cout, cout)
        self.conv_shortcut: Optional[nn.Conv2d] = conv(cin, cout, 1) if cin != cout else None

    def forward(self, x: Tensor, temb: Optional[Tensor] = None) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None and temb is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class Downsample2D(nn.Module):
    """A stride-2 3×3 conv: padding 1 (UNet) or, as the VAE encoder does, 0 with one extra row and
    column at the end."""

    def __init__(self, c: int, padding: int) -> None:
        super().__init__()
        self.pad_end = padding == 0
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=padding)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)) if self.pad_end else x)


class Upsample2D(nn.Module):
    """Nearest-neighbour ×2, then a 3×3 conv."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = conv(c, c)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Attention(nn.Module):
    """Self- or cross-attention of [B, T, C] queries (diffusers' Attention: to_q, to_k, to_v, to_out.0)."""

    def __init__(self, c: int, context_dim: int, heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(c, c, bias=qkv_bias)
        self.to_k = nn.Linear(context_dim, c, bias=qkv_bias)
        self.to_v = nn.Linear(context_dim, c, bias=qkv_bias)
        self.to_out = nn.ModuleList([nn.Linear(c, c)])

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
        ctx = x if context is None else context
        q, k, v = (split_heads(f(t), self.heads) for f, t in ((self.to_q, x), (self.to_k, ctx), (self.to_v, ctx)))
        return self.to_out[0](merge_heads(attention_core(q, k, v)))


class SpatialSelfAttention(Attention):
    """The VAE's mid-block attention: GroupNorm, one head over the H·W positions, residual."""

    def __init__(self, c: int, groups: int, eps: float) -> None:
        super().__init__(c, c, 1, True)
        self.group_norm = nn.GroupNorm(groups, c, eps=eps)

    def spatial(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        t = self.group_norm(x).flatten(2).transpose(1, 2)
        return x + self(t).transpose(1, 2).reshape(b, c, h, w)


class _GegluProj(nn.Module):
    def __init__(self, c: int, inner: int) -> None:
        super().__init__()
        self.proj = nn.Linear(c, 2 * inner)

    def forward(self, x: Tensor) -> Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * gelu_exact(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward: proj to 2·inner (inner = 4·C), value · GELU(gate), then back to C
    (net.1 is dropout: the identity at inference, no tensors)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.net = nn.ModuleList([_GegluProj(c, 4 * c), nn.Identity(), nn.Linear(4 * c, c)])

    def forward(self, x: Tensor) -> Tensor:
        return self.net[2](self.net[0](x))


class BasicTransformerBlock(nn.Module):
    """Self-attention, cross-attention to the context, GEGLU MLP; pre-LayerNorm (eps 1e-5), residuals."""

    def __init__(self, c: int, context_dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(c)
        self.attn1 = Attention(c, c, heads, False)
        self.norm2 = nn.LayerNorm(c)
        self.attn2 = Attention(c, context_dim, heads, False)
        self.norm3 = nn.LayerNorm(c)
        self.ff = FeedForward(c)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class Transformer2DModel(nn.Module):
    """Over a feature map: GroupNorm (eps 1e-6), proj_in (1×1 conv, or a linear layer with
    use_linear_projection), transformer blocks, proj_out, residual."""

    def __init__(self, c: int, context_dim: int, heads: int, layers: int, groups: int, linear: bool) -> None:
        super().__init__()
        self.linear = linear
        self.norm = nn.GroupNorm(groups, c, eps=1e-6)
        self.proj_in: nn.Module = nn.Linear(c, c) if linear else conv(c, c, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(c, context_dim, heads) for _ in range(layers)])
        self.proj_out: nn.Module = nn.Linear(c, c) if linear else conv(c, c, 1)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        b, c, h, w = x.shape
        normed = self.norm(x)
        t = (
            self.proj_in(normed.flatten(2).transpose(1, 2))
            if self.linear
            else self.proj_in(normed).flatten(2).transpose(1, 2)
        )
        for block in self.transformer_blocks:
            t = block(t, context)
        out = (
            self.proj_out(t).transpose(1, 2).reshape(b, c, h, w)
            if self.linear
            else self.proj_out(t.transpose(1, 2).reshape(b, c, h, w))
        )
        return x + out
