"""Twin of src/diffusion/models/sd_vae.ts: diffusers' AutoencoderKL (SD v1's VAE), encoder to the
posterior mean and log-variance, decoder back to pixels, the latent scaling factor from
config.json (every key implemented or refused in one line, as the TS parser does). NCHW inside;
images in [-1, 1]; the `*_nhwc` methods take and return NHWC as the World boundary does.
"""
import re
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdd_torch.models.sd_blocks import Downsample2D, ResnetBlock2D, SpatialSelfAttention, Upsample2D, conv
from sdd_torch.models.sd_config import ConfigReader, dumps, load_diffusers, with_weights

# Keys that cannot change what this port computes, with why (diffusers v0.31.0's AutoencoderKL).
VAE_IRRELEVANT: Dict[str, str] = {
    "sample_size": "the tile size of tiled encoding/decoding, which is off unless enable_tiling() is called",
    "force_upcast": "whether an fp16 pipeline runs the VAE in float32; this port is float32 throughout",
}

VAE_EPS = 1e-6


class VaeConfig(NamedTuple):
    in_channels: int
    out_channels: int
    latent_channels: int
    block_out_channels: List[int]
    layers_per_block: int
    groups: int
    scaling_factor: float
    quant_conv: bool
    post_quant_conv: bool
    mid_attention: bool


def parse_vae_config(r: ConfigReader) -> VaeConfig:
    """config.json of an AutoencoderKL folder; settings this port does not implement are refused."""
    blocks = r.items("block_out_channels", int)
    n = len(blocks)
    down = r.items("down_block_types", str, ["DownEncoderBlock2D"] * n)
    up = r.items("up_block_types", str, ["UpDecoderBlock2D"] * n)
    if len(down) != n or any(d != "DownEncoderBlock2D" for d in down):
        raise r.fail("down_block_types", f"{dumps(down)}: not supported")
    if len(up) != n or any(d != "UpDecoderBlock2D" for d in up):
        raise r.fail("up_block_types", f"{dumps(up)}: not supported")
    r.silu()
    r.only("shift_factor", [None], None)
    # SDXL-style pipelines normalise latents with these; SD v1/v2's never do, and this port neither.
    r.only("latents_mean", [None], None)
    r.only("latents_std", [None], None)
    r.irrelevant(VAE_IRRELEVANT)
    groups = r.integer("norm_num_groups", 32)
    if any(c % groups for c in blocks):
        raise r.fail(
            "block_out_channels", f"{dumps(blocks)}: every width must be a multiple of norm_num_groups {groups}"
        )
    config = VaeConfig(
        in_channels=r.integer("in_channels", 3),
        out_channels=r.integer("out_channels", 3),
        latent_channels=r.integer("latent_channels", 4),
        block_out_channels=blocks,
        layers_per_block=r.integer("layers_per_block", 1),
        groups=groups,
        scaling_factor=r.num("scaling_factor", 0.18215),
        quant_conv=r.flag("use_quant_conv", True),
        post_quant_conv=r.flag("use_post_quant_conv", True),
        mid_attention=r.flag("mid_block_add_attention", True),
    )
    r.finish()
    return config


class _Mid(nn.Module):
    def __init__(self, c: int, config: VaeConfig) -> None:
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(c, c, config.groups, VAE_EPS, None) for _ in range(2)])
        if config.mid_attention:
            self.attentions = nn.ModuleList([SpatialSelfAttention(c, config.groups, VAE_EPS)])

    def forward(self, x: Tensor) -> Tensor:
        x = self.resnets[0](x)
        if hasattr(self, "attentions"):
            x = self.attentions[0].spatial(x)
        return self.resnets[1](x)


class _Stage(nn.Module):
    """A DownEncoderBlock2D / UpDecoderBlock2D: resnets, then a down- or upsampler (all but the last)."""

    def __init__(self, resnets: List[ResnetBlock2D], kind: str, sampler: Any) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(resnets)
        if sampler is not None:
            self.add_module(kind, nn.ModuleList([sampler]))

    def forward(self, x: Tensor) -> Tensor:
        for r in self.resnets:
            x = r(x)
        for kind in ("downsamplers", "upsamplers"):
            if hasattr(self, kind):
                x = getattr(self, kind)[0](x)
        return x


class _Coder(nn.Module):
    """encoder / decoder: conv_in, blocks, mid_block, conv_norm_out, conv_out."""

    def __init__(
        self, cin: int, first: int, blocks: List[_Stage], mid: _Mid, last: int, cout: int, kind: str, groups: int
    ) -> None:
        super().__init__()
        self.conv_in = conv(cin, first)
        self.add_module(kind, nn.ModuleList(blocks))
        self.kind = kind
        self.mid_block = mid
        self.conv_norm_out = nn.GroupNorm(groups, last, eps=VAE_EPS)
        self.conv_out = conv(last, cout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_in(x)
        if self.kind == "up_blocks":
            x = self.mid_block(x)
        for b in getattr(self, self.kind):
            x = b(x)
        if self.kind == "down_blocks":
            x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class AutoencoderKL(nn.Module):
    def __init__(self, c: VaeConfig) -> None:
        super().__init__()
        self.config = c
        self.scaling_factor = c.scaling_factor
        blocks, g, lat = c.block_out_channels, c.groups, c.latent_channels
        enc: List[_Stage] = []
        ch = blocks[0]
        for i, out in enumerate(blocks):
            resnets = [ResnetBlock2D(ch if j == 0 else out, out, g, VAE_EPS, None) for j in range(c.layers_per_block)]
            ch = out
            enc.append(_Stage(resnets, "downsamplers", Downsample2D(out, 0) if i < len(blocks) - 1 else None))
        self.encoder = _Coder(c.in_channels, blocks[0], enc, _Mid(blocks[-1], c), blocks[-1], 2 * lat, "down_blocks", g)
        rev = blocks[::-1]
        dec: List[_Stage] = []
        ch = rev[0]
        for i, out in enumerate(rev):
            resnets = [
                ResnetBlock2D(ch if j == 0 else out, out, g, VAE_EPS, None) for j in range(c.layers_per_block + 1)
            ]
            ch = out
            dec.append(_Stage(resnets, "upsamplers", Upsample2D(out) if i < len(rev) - 1 else None))
        self.decoder = _Coder(lat, rev[0], dec, _Mid(rev[0], c), rev[-1], c.out_channels, "up_blocks", g)
        if c.quant_conv:
            self.quant_conv = conv(2 * lat, 2 * lat, 1)
        if c.post_quant_conv:
            self.post_quant_conv = conv(lat, lat, 1)

    def encode_moments(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        """The posterior's mean and log-variance (clamped to [-30, 20]), unscaled, of NCHW images in [-1, 1]."""
        x = self.encoder(images)
        if hasattr(self, "quant_conv"):
            x = self.quant_conv(x)
        mean, logvar = x.chunk(2, dim=1)
        return mean, torch.clamp(logvar, -30, 20)

    def decode_raw(self, latents: Tensor) -> Tensor:
        """Images NCHW (about [-1, 1]) of unscaled latents."""
        z = self.post_quant_conv(latents) if hasattr(self, "post_quant_conv") else latents
        return self.decoder(z)

    def encode_moments_nhwc(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        mean, logvar = self.encode_moments(images.permute(0, 3, 1, 2))
        return mean.permute(0, 2, 3, 1), logvar.permute(0, 2, 3, 1)

    def decode_raw_nhwc(self, latents: Tensor) -> Tensor:
        return self.decode_raw(latents.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


_OLD_ATTENTION = re.compile(r"\.attentions\.(\d+)\.(query|key|value|proj_attn)\.")
_NEW_NAMES = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def vae_rename(name: str) -> str:
    """Older diffusers VAEs name the mid-block attention query/key/value/proj_attn: the same tensors."""
    return _OLD_ATTENTION.sub(lambda m: f".attentions.{m.group(1)}.{_NEW_NAMES[m.group(2)]}.", name)


def build_vae(
    config: Mapping[str, Any],
    tensors: Dict[str, np.ndarray],
    config_file: str,
    source: str,
    random_seed: Optional[int] = None,
) -> AutoencoderKL:
    """A VAE of a config.json's contents (parsed strictly) with the file's tensors (strictly loaded)."""
    model = AutoencoderKL(parse_vae_config(ConfigReader(config_file, config)))
    return with_weights(model, tensors, source, random_seed, vae_rename)


def load_vae(folder: str) -> AutoencoderKL:
    """A diffusers `vae/` folder, loaded strictly (older attention names accepted, both at once refused)."""
    return load_diffusers(AutoencoderKL(parse_vae_config(ConfigReader.of(folder))), folder, vae_rename)
