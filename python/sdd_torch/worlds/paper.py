"""Twin of datasets/paper/world.ts with src/world/sd_parts.ts: the paper's worlds (`paper`,
`paper-random`, `paper-random-tiny`) over the torch twins of Stable Diffusion's UNet and VAE, its
CLIP text encoder, a CLIPModel for CLIP similarity, StyleGAN2 and IR-SE50.

The manifest's engine.models names each model (what the TS world hands over, WorldContract):
  unet, vae, text_encoder, clip:  {"weights": file | null, "sha256": hex, "architecture":
      {"config": <the folder's config.json>, "seed": int (no weights file: seeded random weights),
       "prediction_type": "epsilon" | "v_prediction", "alphas_cumprod": [...] (v_prediction only)}}
      (prediction_type and alphas_cumprod on the unet only; the weights file in PyTorch's layout
      as diffusers / transformers publish it, or its sharded index)
  stylegan2: {"weights", "sha256", "architecture": {}} (the architecture read from the file's shapes),
      or {"weights": null, "architecture": {"seed": int, "config": {"size", "style_dim", "n_mlp",
      "channel_multiplier", "lr_mlp", "channels"?: {res: width}}}};
  arcface: {"weights" | null, "sha256", "architecture": {"stages": [[units, width], ...] (IR-SE50's
      when absent), "seed": int (no weights file)}}
Without a weights file (paper-random at full size) every model gets seeded random weights from its
seed: deterministic per seed, not equal to the TS engine's (paper-random-tiny's harness writes TS's
weights to files instead, so there both engines compute with the same weights).
Every entry point takes and returns NHWC float32 tensors on the world's device, as sd_parts.ts's
diffusionOf / clipOf / arcfaceOf and world.ts's styleOf do: decode clips to [0, 1] (SD's pipeline),
the text condition attends to all 77 positions (mask all ones), CLIP resizes bilinearly
(half-pixel centres, no antialias) to its tower's size and normalises with CLIP's mean and std.
"""
import importlib
from typing import Any, Dict, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdd_torch.models.clip_text import ClipModel, build_clip
from sdd_torch.models.sd_config import ConfigError, read_torch_tensors
from sdd_torch.models.sd_unet import UNet2DCondition, build_unet
from sdd_torch.models.sd_vae import AutoencoderKL, build_vae
from sdd_torch.safetensors_np import sha256_file

NAMES = ("paper", "paper-random", "paper-random-tiny")
SD_MODELS = ("unet", "vae", "text_encoder", "clip")
# transformers' CLIPImageProcessor image_mean / image_std (sd_parts.ts CLIP_MEAN / CLIP_STD).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

Spec = Mapping[str, Any]


def _f32(x: Tensor) -> Tensor:
    """The boundary's dtype, whatever precision (autocast) the model ran at."""
    return x if x.dtype == torch.float32 else x.float()


def resize_bilinear(x: Tensor, size: int) -> Tensor:
    """tf.image.resizeBilinear(x, [size, size], false, true) of NHWC images: half-pixel centres,
    no antialias (PyTorch's align_corners=False); the identity at the same size."""
    if x.shape[1] == size and x.shape[2] == size:
        return x
    return F.interpolate(x.permute(0, 3, 1, 2), size=(size, size), mode="bilinear", align_corners=False).permute(
        0, 2, 3, 1
    )


def sd_model(name: str, spec: Spec, device: torch.device) -> nn.Module:
    """One of unet / vae / text_encoder / clip from its manifest spec: the file's tensors (its sha256
    checked) loaded strictly, or seeded random weights when the spec names no file."""
    arch = spec.get("architecture") or {}
    config = arch.get("config")
    if not isinstance(config, dict):
        raise ConfigError(f"engine.models.{name}.architecture.config: the model's config.json object is needed")
    weights = spec.get("weights")
    where = f"engine.models.{name}.architecture.config"
    build = {"unet": build_unet, "vae": build_vae, "text_encoder": build_clip, "clip": build_clip}[name]
    if weights is None:
        model: nn.Module = build(config, {}, where, "", random_seed=_seed(name, arch))
    else:
        want = spec.get("sha256")
        if want is not None:
            got = sha256_file(str(weights))
            if got != want:
                raise ConfigError(
                    f"{weights}: sha256 {got[:12]}…, the manifest expects {str(want)[:12]}… "
                    "(weights changed since planning)"
                )
        model = build(config, read_torch_tensors(str(weights)), where, str(weights))
    return model.to(device)


class Clip:
    """world.clip (sd_parts.ts clipOf): projected CLIP image and text features (not normalised, as TS)."""

    def __init__(self, model: ClipModel) -> None:
        if model.config.vision is None:
            raise ConfigError(
                "engine.models.clip: a CLIPModel (both towers) is needed for CLIP similarity, not a CLIPTextModel"
            )
        self.model = model
        self.size = model.config.vision.image_size

    def image_embed(self, x: Tensor) -> Tensor:
        """Images [b, H, W, 3] in [0, 1] -> [b, projection_dim]."""
        mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device)
        std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device)
        return _f32(self.model.image_embeds((resize_bilinear(x, self.size) - mean) / std))

    def text_embed(self, ids: Tensor) -> Tensor:
        """Token ids [b, 77] (our tokenizer's) -> [b, projection_dim], pooled at the end-of-text token."""
        return _f32(self.model.text_embeds(ids))


class Style:
    """world.style (world.ts styleOf): G(W+) in [0, 1], resized to the diffusion model's size."""

    def __init__(self, g: Any, image_size: int) -> None:
        self.g = g
        self.levels: int = g.levels
        self.dim: int = g.dim
        self.groups: Dict[str, Tuple[int, int]] = {"coarse": (0, 4), "medium": (4, 8), "fine": (8, self.levels)}
        self.image_size = image_size

    def generate(self, w: Tensor) -> Tensor:
        return _f32(resize_bilinear(self.g.synthesis(w) * 0.5 + 0.5, self.image_size))


class Identity:
    """world.identity (sd_parts.ts arcfaceOf): IR-SE50 with e4e's crop of images in [0, 1]."""

    def __init__(self, net: Any) -> None:
        self.model = net

    def embed(self, x: Tensor) -> Tensor:
        return _f32(self.model.embed(x))


class World:
    def __init__(self, name: str, specs: Mapping[str, Spec], device: torch.device) -> None:
        lacking = [n for n in SD_MODELS if n not in specs]
        if lacking:
            raise ValueError(f"{name}: the manifest's engine.models lacks {', '.join(lacking)}")
        self.name = name
        self.device = device
        self.unet: UNet2DCondition = sd_model("unet", specs["unet"], device)
        self.vae: AutoencoderKL = sd_model("vae", specs["vae"], device)
        self.text_encoder: ClipModel = sd_model("text_encoder", specs["text_encoder"], device)
        self.clip = Clip(sd_model("clip", specs["clip"], device))
        uc, vc = self.unet.config, self.vae.config
        if uc.cross_attention_dim != self.text_encoder.config.text.hidden:
            raise ConfigError(
                f"{name}: unet cross_attention_dim {uc.cross_attention_dim} ≠ "
                f"text_encoder hidden_size {self.text_encoder.config.text.hidden}"
            )
        if uc.in_channels != vc.latent_channels:
            raise ConfigError(f"{name}: unet in_channels {uc.in_channels} ≠ vae latent_channels {vc.latent_channels}")
        self.image_size = uc.sample_size * 2 ** (len(vc.block_out_channels) - 1)
        self.latent_shape: Tuple[int, int, int] = (uc.sample_size, uc.sample_size, vc.latent_channels)
        self.scale_factor = vc.scaling_factor
        arch = specs["unet"].get("architecture") or {}
        self.prediction = str(arch.get("prediction_type", "epsilon"))
        self.alphas: Optional[Tensor] = None
        if self.prediction == "v_prediction":
            self.alphas = torch.tensor(arch["alphas_cumprod"], dtype=torch.float32, device=device)
        elif self.prediction != "epsilon":
            raise ConfigError(f"{name}: prediction_type {self.prediction!r} is not supported (epsilon, v_prediction)")
        self.style: Optional[Style] = (
            Style(_stylegan2(specs["stylegan2"], device), self.image_size) if "stylegan2" in specs else None
        )
        self.identity: Optional[Identity] = Identity(_arcface(specs["arcface"], device)) if "arcface" in specs else None
        self.diffae = None

    def encode(self, x: Tensor, noise: Optional[Tensor] = None) -> Tensor:
        """Images [b, H, W, 3] in [0, 1] -> scaled latents: the posterior mean, or with noise the
        sample mean + exp(logvar / 2) * noise."""
        mean, logvar = self.vae.encode_moments_nhwc(x * 2 - 1)
        z = mean if noise is None else mean + torch.exp(logvar * 0.5) * noise
        return _f32(z * self.scale_factor)

    def decode(self, z: Tensor) -> Tensor:
        """Scaled latents -> images in [0, 1] (clipped, as sd_parts.ts decodes)."""
        return _f32(torch.clamp(self.vae.decode_raw_nhwc(z / self.scale_factor) * 0.5 + 0.5, 0, 1))

    def text_condition(self, ids: Tensor) -> Tuple[Tensor, Tensor]:
        """Token ids [n, 77] -> the text encoder's last hidden states and a mask of ones (SD v1
        attends to all 77 positions, padding included)."""
        context = _f32(self.text_encoder.text_hidden(ids))
        return context, torch.ones(context.shape[:2], dtype=torch.float32, device=context.device)

    def eps(self, zt: Tensor, t: Tensor, context: Tensor, mask: Tensor) -> Tensor:
        """ε at float timesteps t [b] (the mask is all ones: SD attends to every position); a
        v-prediction UNet's output becomes ε = √ᾱ_t·v + √(1 − ᾱ_t)·z_t (ᾱ at the integer part of t)."""
        out = self.unet.forward_nhwc(zt, t, context)
        if self.alphas is not None:
            a = self.alphas[t.to(torch.int64)].reshape(-1, 1, 1, 1)
            out = torch.sqrt(a) * out + torch.sqrt(1 - a) * zt
        return _f32(out)


def _seed(name: str, arch: Spec) -> int:
    """architecture.seed of a model the manifest gives no weights file."""
    if not isinstance(arch.get("seed"), int):
        raise ConfigError(f"engine.models.{name}: neither a weights file nor architecture.seed")
    return int(arch["seed"])


def _stylegan2(spec: Spec, device: torch.device) -> Any:
    """The StyleGAN2 twin (models/stylegan2.py), imported by name: only worlds with a generator need it."""
    module = importlib.import_module("sdd_torch.models.stylegan2")
    if spec.get("weights") is not None:
        return module.load_stylegan2(str(spec["weights"]), sha256=spec.get("sha256"), device=device)
    arch = spec.get("architecture") or {}
    c = arch.get("config")
    if not isinstance(c, dict):
        raise ConfigError(
            "engine.models.stylegan2.architecture.config: "
            "seeded weights need the architecture (size, style_dim, n_mlp, ...)"
        )
    size = int(c["size"])
    channels = module.default_channels(size, int(c.get("channel_multiplier", 2)))
    channels.update({int(r): int(w) for r, w in (c.get("channels") or {}).items()})
    config = module.StyleGan2Config(
        size=size,
        style_dim=int(c["style_dim"]),
        n_mlp=int(c["n_mlp"]),
        channels=channels,
        lr_mlp=float(c.get("lr_mlp", module.LR_MLP)),
    )
    return module.random_stylegan2(config, _seed("stylegan2", arch), device=device)


def _arcface(spec: Spec, device: torch.device) -> Any:
    """The IR-SE50 twin (models/arcface.py), with the spec's stages (IR-SE50's when none)."""
    module = importlib.import_module("sdd_torch.models.arcface")
    arch = spec.get("architecture") or {}
    stages = arch.get("stages")
    chosen = tuple((int(u), int(w)) for u, w in stages) if stages else module.IR_SE50_STAGES
    if spec.get("weights") is None:
        return module.random_ir_se50(_seed("arcface", arch), stages=chosen, device=device)
    return module.load_ir_se50(str(spec["weights"]), sha256=spec.get("sha256"), stages=chosen, device=device)


def load(ctx: Any) -> World:
    """The world of a run: the manifest's engine.models on the run's device."""
    name = str(ctx.manifest["world"]["name"])
    if name not in NAMES:
        raise ValueError(f"world '{name}' is not one of the paper's worlds ({', '.join(NAMES)})")
    return World(name, ctx.manifest["engine"]["models"], ctx.device)
