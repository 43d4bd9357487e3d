"""Twin of src/diffusion/models/sd_unet.ts: diffusers' UNet2DConditionModel (Stable Diffusion
v1/v2's noise predictor) configured from its config.json, every key implemented or refused in one
line as the TS parser does: CrossAttnDownBlock2D / DownBlock2D, UNetMidBlock2DCrossAttn,
UpBlock2D / CrossAttnUpBlock2D with skip concatenation, the sinusoidal timestep embedding.
NCHW inside; `forward_nhwc` takes and returns NHWC latents as the World boundary does.
"""
import math
from typing import Any, Dict, List, Mapping, NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdd_torch.models.sd_blocks import Downsample2D, ResnetBlock2D, Transformer2DModel, Upsample2D, conv, gelu_exact
from sdd_torch.models.sd_config import ConfigReader, dumps, load_diffusers, with_weights

# diffusers' get_activation names (it lower-cases them); swish and silu are the same function.
ACTIVATIONS = ("silu", "swish", "mish", "gelu", "relu")

# Keys that cannot change what this port computes, with why (diffusers v0.31.0's
# UNet2DConditionModel.__init__ and get_down/mid/up_block); the same list as sd_unet.ts.
UNET_IRRELEVANT: Dict[str, str] = {
    "dropout": "the identity at inference",
    "addition_time_embed_dim": 'read only by addition_embed_type "text_time" (refused)',
    "addition_embed_type_num_heads": 'read only by addition_embed_type "text" (refused)',
    "projection_class_embeddings_input_dim": 'read only by class_embed_type "projection" '
    'and addition_embed_type "text_time" (both refused)',
    "resnet_skip_time_act": "passed only to the ResnetDownsample/ResnetUpsample/SimpleCrossAttn block types (refused)",
    "resnet_out_scale_factor": (
        "passed only to the ResnetDownsample/ResnetUpsample/SimpleCrossAttn block types (refused)"
    ),
    "cross_attention_norm": "passed only to the SimpleCrossAttn block types (refused)",
    "mid_block_only_cross_attention": "read only by UNetMidBlock2DSimpleCrossAttn (refused)",
}


class UNetConfig(NamedTuple):
    in_channels: int
    out_channels: int
    block_out_channels: List[int]
    down: List[str]
    up: List[str]
    layers_per_block: int
    groups: int
    eps: float
    cross_attention_dim: int
    heads: List[int]  # per down block (attention_head_dim is read as the head count when num_attention_heads is unset)
    transformer_layers: List[int]
    linear_projection: bool
    flip_sin_to_cos: bool
    freq_shift: float
    downsample_padding: int
    sample_size: int
    center_input: bool
    time_embed_dim: int
    timestep_post_act: Optional[str]
    time_embedding_act: Optional[str]


def _optional_activation(r: ConfigReader, key: str) -> Optional[str]:
    v = r.value(key, None)
    if v is None:
        return None
    name = v.lower() if isinstance(v, str) else v
    if name not in ACTIVATIONS:
        raise r.fail(key, f"{dumps(v)} is not supported (supported: null, {', '.join(ACTIVATIONS)})")
    return str(name)


def _refuse_unimplemented(r: ConfigReader) -> None:
    """The settings this port implements only at their diffusers default: anything else is refused."""
    r.only("mid_block_type", ["UNetMidBlock2DCrossAttn"], "UNetMidBlock2DCrossAttn")
    r.silu()
    r.only("only_cross_attention", [False], False)
    r.only("dual_cross_attention", [False], False)
    r.only("upcast_attention", [False, True], False)  # float32 throughout: upcasting changes nothing
    r.only("class_embed_type", [None], None)
    r.only("num_class_embeds", [None], None)
    r.only("class_embeddings_concat", [False], False)
    r.only("addition_embed_type", [None], None)
    r.only("resnet_time_scale_shift", ["default"], "default")
    r.only("time_embedding_type", ["positional"], "positional")
    r.only("conv_in_kernel", [3], 3)
    r.only("conv_out_kernel", [3], 3)
    r.only("mid_block_scale_factor", [1], 1)
    r.only("time_cond_proj_dim", [None], None)
    r.only("encoder_hid_dim", [None], None)
    r.only("encoder_hid_dim_type", [None], None)
    r.only("reverse_transformer_layers_per_block", [None], None)
    r.only("attention_type", ["default"], "default")
    r.irrelevant(UNET_IRRELEVANT)


def _head_counts(r: ConfigReader, blocks: List[int]) -> List[int]:
    """Heads per block: num_attention_heads when set, else attention_head_dim (diffusers' naming slip)."""
    n = len(blocks)
    if r.value("num_attention_heads", None) is None:
        heads = r.per_block("attention_head_dim", n, 8)
    else:
        heads = r.per_block("num_attention_heads", n, 8)
        r.irrelevant(
            {
                "attention_head_dim": (
                    "the cross-attention blocks take their width per head from num_attention_heads when it is set"
                )
            }
        )
    for i, (c, h) in enumerate(zip(blocks, heads)):
        if c % h != 0:
            raise r.fail("attention_head_dim", f"{dumps(heads)}: block {i}: {c} channels do not split into {h} heads")
    return heads


def parse_unet_config(r: ConfigReader) -> UNetConfig:
    blocks = r.items("block_out_channels", int)
    n = len(blocks)
    down = r.items("down_block_types", str)
    up = r.items("up_block_types", str)
    if len(down) != n or any(d not in ("CrossAttnDownBlock2D", "DownBlock2D") for d in down):
        raise r.fail("down_block_types", f"{dumps(down)}: expected {n} of CrossAttnDownBlock2D, DownBlock2D")
    if len(up) != n or any(d not in ("CrossAttnUpBlock2D", "UpBlock2D") for d in up):
        raise r.fail("up_block_types", f"{dumps(up)}: expected {n} of CrossAttnUpBlock2D, UpBlock2D")
    _refuse_unimplemented(r)
    groups = r.integer("norm_num_groups", 32)
    if any(c % groups for c in blocks):
        raise r.fail(
            "block_out_channels", f"{dumps(blocks)}: every width must be a multiple of norm_num_groups {groups}"
        )
    pad = r.integer("downsample_padding", 1)
    if pad not in (0, 1):
        raise r.fail("downsample_padding", f"{pad}: expected 0 or 1")
    time_dim = 4 * blocks[0] if r.value("time_embedding_dim", None) is None else r.integer("time_embedding_dim")
    config = UNetConfig(
        in_channels=r.integer("in_channels", 4),
        out_channels=r.integer("out_channels", 4),
        block_out_channels=blocks,
        down=down,
        up=up,
        layers_per_block=r.integer("layers_per_block", 2),
        groups=groups,
        eps=r.num("norm_eps", 1e-5),
        cross_attention_dim=r.integer("cross_attention_dim", 1280),
        heads=_head_counts(r, blocks),
        transformer_layers=r.per_block("transformer_layers_per_block", n, 1),
        linear_projection=r.flag("use_linear_projection", False),
        flip_sin_to_cos=r.flag("flip_sin_to_cos", True),
        freq_shift=r.num("freq_shift", 0),
        downsample_padding=pad,
        sample_size=r.integer("sample_size", 64),
        center_input=r.flag("center_input_sample", False),
        time_embed_dim=time_dim,
        timestep_post_act=_optional_activation(r, "timestep_post_act"),
        time_embedding_act=_optional_activation(r, "time_embedding_act_fn"),
    )
    r.finish()
    return config


def timestep_embedding(t: Tensor, dim: int, flip_sin_to_cos: bool, shift: float) -> Tensor:
    """diffusers' get_timestep_embedding: [B, dim] sinusoids, exponent over (half − shift), cos first when flipped."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * (-math.log(10000) / (half - shift)))
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    s, c = torch.sin(args), torch.cos(args)
    return torch.cat([c, s] if flip_sin_to_cos else [s, c], dim=1)


def activate(x: Tensor, act: Optional[str]) -> Tensor:
    if act is None:
        return x
    if act in ("silu", "swish"):
        return F.silu(x)
    if act == "mish":
        return x * torch.tanh(F.softplus(x))
    if act == "gelu":  # torch's nn.GELU(): the exact, erf form
        return gelu_exact(x)
    return F.relu(x)


class _TimeEmbedding(nn.Module):
    def __init__(self, cin: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(cin, dim)
        self.linear_2 = nn.Linear(dim, dim)


class _Block(nn.Module):
    """A down, mid or up block: resnets, attentions (cross-attention blocks), down/upsamplers."""

    def __init__(
        self,
        resnets: List[ResnetBlock2D],
        attentions: List[Transformer2DModel],
        sampler: Optional[nn.Module],
        kind: str,
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(resnets)
        if attentions:
            self.attentions = nn.ModuleList(attentions)
        if sampler is not None:
            self.add_module(kind, nn.ModuleList([sampler]))


class UNet2DCondition(nn.Module):
    """eps (or v, per the scheduler's prediction_type) of NCHW latents at timesteps t [B] with text
    hidden states context [B, M, cross_attention_dim]; submodules named as diffusers' parameters."""

    def __init__(self, c: UNetConfig) -> None:
        super().__init__()
        self.config = c
        b0, blocks, temb = c.block_out_channels[0], c.block_out_channels, c.time_embed_dim
        self.conv_in = conv(c.in_channels, b0)
        self.time_embedding = _TimeEmbedding(b0, temb)

        def res(cin: int, cout: int) -> ResnetBlock2D:
            return ResnetBlock2D(cin, cout, c.groups, c.eps, temb)

        def cross(ch: int, heads: int, layers: int) -> Transformer2DModel:
            return Transformer2DModel(ch, c.cross_attention_dim, heads, layers, c.groups, c.linear_projection)

        down: List[nn.Module] = []
        skip_channels = [b0]
        ch = b0
        for i, out in enumerate(blocks):
            resnets, attns = [], []
            for _ in range(c.layers_per_block):
                resnets.append(res(ch, out))
                ch = out
                if c.down[i] == "CrossAttnDownBlock2D":
                    attns.append(cross(out, c.heads[i], c.transformer_layers[i]))
                skip_channels.append(out)
            last = i == len(blocks) - 1
            down.append(
                _Block(resnets, attns, None if last else Downsample2D(out, c.downsample_padding), "downsamplers")
            )
            if not last:
                skip_channels.append(out)
        self.down_blocks = nn.ModuleList(down)
        top = blocks[-1]
        self.mid_block = _Block(
            [res(top, top), res(top, top)], [cross(top, c.heads[-1], c.transformer_layers[-1])], None, ""
        )
        up: List[nn.Module] = []
        rev, rev_heads, rev_layers = blocks[::-1], c.heads[::-1], c.transformer_layers[::-1]
        for i, out in enumerate(rev):
            resnets, attns = [], []
            for _ in range(c.layers_per_block + 1):
                resnets.append(res(ch + skip_channels.pop(), out))
                ch = out
                if c.up[i] == "CrossAttnUpBlock2D":
                    attns.append(cross(out, rev_heads[i], rev_layers[i]))
            up.append(_Block(resnets, attns, None if i == len(rev) - 1 else Upsample2D(out), "upsamplers"))
        self.up_blocks = nn.ModuleList(up)
        self.conv_norm_out = nn.GroupNorm(c.groups, b0, eps=c.eps)
        self.conv_out = conv(b0, c.out_channels)

    def time_embed(self, t: Tensor) -> Tensor:
        """TimestepEmbedding (linear_1, SiLU, linear_2, timestep_post_act) of the sinusoids, then
        time_embedding_act_fn once on the result, as every ResNet block receives it."""
        c = self.config
        te = self.time_embedding
        sinus = timestep_embedding(t, c.block_out_channels[0], c.flip_sin_to_cos, c.freq_shift)
        emb = activate(te.linear_2(F.silu(te.linear_1(sinus.to(te.linear_1.weight.dtype)))), c.timestep_post_act)
        return activate(emb, c.time_embedding_act)

    def forward(self, sample: Tensor, t: Tensor, context: Tensor) -> Tensor:
        c = self.config
        temb = self.time_embed(t)
        x = self.conv_in(sample * 2 - 1 if c.center_input else sample)
        skips = [x]
        for i, block in enumerate(self.down_blocks):
            for j, resnet in enumerate(block.resnets):
                x = resnet(x, temb)
                if c.down[i] == "CrossAttnDownBlock2D":
                    x = block.attentions[j](x, context)
                skips.append(x)
            if hasattr(block, "downsamplers"):
                x = block.downsamplers[0](x)
                skips.append(x)
        mid = self.mid_block
        x = mid.resnets[1](mid.attentions[0](mid.resnets[0](x, temb), context), temb)
        for i, block in enumerate(self.up_blocks):
            for j, resnet in enumerate(block.resnets):
                x = resnet(torch.cat([x, skips.pop()], dim=1), temb)
                if c.up[i] == "CrossAttnUpBlock2D":
                    x = block.attentions[j](x, context)
            if hasattr(block, "upsamplers"):
                x = block.upsamplers[0](x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))

    def forward_nhwc(self, sample: Tensor, t: Tensor, context: Tensor) -> Tensor:
        """The same on NHWC latents [B, H, W, in] -> [B, H, W, out] (unetForward's layout)."""
        return self(sample.permute(0, 3, 1, 2), t, context).permute(0, 2, 3, 1)


def build_unet(
    config: Mapping[str, Any],
    tensors: Dict[str, np.ndarray],
    config_file: str,
    source: str,
    random_seed: Optional[int] = None,
) -> UNet2DCondition:
    """A UNet of a config.json's contents (parsed strictly) with the file's tensors (strictly loaded)."""
    return with_weights(
        UNet2DCondition(parse_unet_config(ConfigReader(config_file, config))), tensors, source, random_seed
    )


def load_unet(folder: str) -> UNet2DCondition:
    """A diffusers `unet/` folder (config.json + diffusion_pytorch_model.safetensors), loaded strictly."""
    return load_diffusers(UNet2DCondition(parse_unet_config(ConfigReader.of(folder))), folder)
