#!/usr/bin/env python3
"""Makes test/fixtures/sd_tiny/: a tiny random-weight Stable Diffusion v1 checkpoint in the
diffusers folder layout, and reference outputs from diffusers' own code.

  model_index.json, unet/, vae/, scheduler/scheduler_config.json (SD v1-4's),
  text_encoder/ (the CLIP fixture's text tower as a CLIPTextModel), tokenizer/ (the tokenizer fixture)
  unet_linear/      a second UNet in SD v2's style (use_linear_projection, per-block heads,
                    cross-attention in every down block), for the other code paths
  expected.safetensors:
    unet_sample [2,4,8,8], unet_t [2] (I64), context [2,77,32]  → unet_out, unet_linear_out
    vae_images [2,3,16,16] in [-1,1] → vae_mean (posterior mean, unscaled), vae_decoded (decode of vae_mean)
    ddim_*: a 10-step DDIM loop with classifier-free guidance 7.5, SDEdit-style from strength 0.6:
            ddim_init (image latents × scaling), ddim_noise, ddim_out (final latents)
  unet_act/         a third UNet whose config sets timestep_post_act and time_embedding_act_fn
                    ("silu") and time_embedding_dim (48, not 4 × 8)
  variants.safetensors: the same unet_sample, unet_t, context through unet_act's weights with
                    (timestep_post_act, time_embedding_act_fn, center_input_sample) =
                    (silu, silu, false) → unet_act_out, (mish, gelu, true) → unet_act_mish_gelu_out,
                    (relu, swish, false) → unet_act_relu_swish_out
  schedulers.json:  DDIMScheduler for other scheduler_config.json settings: the timesteps of
                    set_timesteps for every timestep_spacing and many step counts; ᾱ with
                    rescale_betas_zero_snr (float32 as the scheduler keeps it, and float64 through
                    the same function); whole DDIM loops (prev_sample, pred_original_sample per
                    step) for trailing/linspace spacing, zero SNR, ε and v prediction, η 0 and > 0

`--variants-only` writes just unet_act/, variants.safetensors and schedulers.json, leaving the
rest of the folder as it is.

Reference: diffusers v0.31.0 (UNet2DConditionModel, AutoencoderKL, DDIMScheduler), the newest
release that runs on Debian's torch 1.13 (later ones need torch ≥ 2), from a checkout, with the
small stand-ins in tools/refstubs/ for huggingface_hub and safetensors (neither is in Debian;
diffusers imports them, and loads/saves weights through safetensors' API).

Weights: seeded (torch.manual_seed), norms and biases moved off their trivial init, saved in
float16; the reference runs in float32 on exactly those rounded values.

  git -C DIFFUSERS_CHECKOUT checkout v0.31.0
  /usr/bin/python3 tools/make_sd_fixture.py --diffusers DIFFUSERS_CHECKOUT

Needs torch (Debian: python3-torch), numpy, and the CLIP and tokenizer fixtures already made.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
from typing import Any, Callable, Dict, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "test", "fixtures")
sys.path.insert(0, HERE)
import st_io  # noqa: E402
from sd_scheduler_cases import scheduler_cases  # noqa: E402

SD14_SCHEDULER: Dict[str, Any] = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.7.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}


def perturb(model, torch, norm_marker="norm"):
    """Seeded weights with norms (parameters named with `norm_marker`) and biases off their init (1, 0),
    so every tensor matters."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if norm_marker in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))


def save_fp16(model, folder, torch):
    """save_pretrained in float16; the model keeps float32 copies of the rounded values."""
    model.half().save_pretrained(folder, safe_serialization=True)
    model.float()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


# What every tiny UNet here shares: SD's 4 latent channels at 8×8, CLIP-tiny's 32-wide context.
TINY_UNET: Dict[str, Any] = dict(
    sample_size=8, in_channels=4, out_channels=4, cross_attention_dim=32, norm_num_groups=8
)


def tiny_unet(channels: Tuple[int, int], layers: int, cross: Tuple[bool, bool], **more: Any) -> Dict[str, Any]:
    """A two-block tiny UNet's config: TINY_UNET, `channels` and `layers` per block, `cross` the down
    blocks that cross-attend (the up blocks mirror them), then `more`."""
    down = tuple("CrossAttnDownBlock2D" if c else "DownBlock2D" for c in cross)
    up = tuple("CrossAttnUpBlock2D" if c else "UpBlock2D" for c in reversed(cross))
    return dict(
        TINY_UNET,
        block_out_channels=channels,
        layers_per_block=layers,
        down_block_types=down,
        up_block_types=up,
        **more,
    )


def seeded_saved(torch: Any, seed: int, make: Callable[[], Any], folder: str) -> Any:
    """make() after torch.manual_seed(seed), perturbed, saved to `folder` in float16."""
    torch.manual_seed(seed)
    model = make().eval()
    perturb(model, torch)
    save_fp16(model, folder, torch)
    return model


# The SDEdit loop's strength and classifier-free guidance scale.
STRENGTH, GUIDANCE = 0.6, 7.5


def write_pipeline(folder: str, diffusers_version: str, scheduler: str, extra: Dict[str, Any]) -> None:
    """A diffusers pipeline folder's shared files: scheduler/scheduler_config.json (SD v1-4's), the
    tokenizer fixture as tokenizer/, and model_index.json naming `scheduler` (`extra` after the version)."""
    os.makedirs(os.path.join(folder, "scheduler"), exist_ok=True)
    with open(os.path.join(folder, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(SD14_SCHEDULER, f, indent=2)
    shutil.copytree(
        os.path.join(FIXTURES, "clip_tokenizer"),
        os.path.join(folder, "tokenizer"),
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("cases.json"),
    )
    with open(os.path.join(folder, "model_index.json"), "w") as f:
        json.dump(
            {
                "_class_name": "StableDiffusionPipeline",
                "_diffusers_version": diffusers_version,
                **extra,
                "scheduler": ["diffusers", scheduler],
                "text_encoder": ["transformers", "CLIPTextModel"],
                "tokenizer": ["transformers", "CLIPTokenizer"],
                "unet": ["diffusers", "UNet2DConditionModel"],
                "vae": ["diffusers", "AutoencoderKL"],
            },
            f,
            indent=2,
        )


def tiny_models(out: str, torch: Any, UNet2DConditionModel: Any, AutoencoderKL: Any) -> Tuple[Any, Any, Any]:
    """unet/ (SD v1's layout), unet_linear/ (SD v2's style) and vae/, seeded 0, 1, 2, saved in float16."""
    v1 = tiny_unet((16, 32), 2, (True, False), attention_head_dim=2)
    unet = seeded_saved(torch, 0, lambda: UNet2DConditionModel(**v1), os.path.join(out, "unet"))
    v2 = tiny_unet(
        (8, 16),
        1,
        (True, True),
        attention_head_dim=[2, 4],
        use_linear_projection=True,
        transformer_layers_per_block=[1, 2],
    )
    unet_lin = seeded_saved(torch, 1, lambda: UNet2DConditionModel(**v2), os.path.join(out, "unet_linear"))
    vae_config = dict(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=16,
    )
    vae = seeded_saved(torch, 2, lambda: AutoencoderKL(**vae_config), os.path.join(out, "vae"))
    return unet, unet_lin, vae


def write_text_encoder(out: str) -> None:
    """text_encoder/: the CLIP fixture's text tower (its parity is tested against openai/CLIP)."""
    clip_dir = os.path.join(FIXTURES, "clip_tiny")
    clip_cfg = json.load(open(os.path.join(clip_dir, "config.json")))
    os.makedirs(os.path.join(out, "text_encoder"))
    with open(os.path.join(out, "text_encoder", "config.json"), "w") as f:
        json.dump(
            {"architectures": ["CLIPTextModel"], **clip_cfg["text_config"], "torch_dtype": "float16"}, f, indent=2
        )
    clip_w = st_io.load(os.path.join(clip_dir, "model.safetensors"))
    st_io.save(
        os.path.join(out, "text_encoder", "model.safetensors"),
        {k: v for k, v in clip_w.items() if k.startswith("text_model.")},
        {"format": "pt"},
    )


def reference_outputs(torch: Any, DDIMScheduler: Any, unet: Any, unet_lin: Any, vae: Any) -> Dict[str, Any]:
    """expected.safetensors' tensors: both UNets, the VAE and an SDEdit DDIM loop with CFG, on seeded inputs."""
    clip_ref = st_io.load(os.path.join(FIXTURES, "clip_tiny", "expected.safetensors"))
    hidden = torch.from_numpy(np.array(clip_ref["last_hidden_state"]))  # [3, 77, 32]
    g = torch.Generator().manual_seed(3)
    sample = torch.randn(2, 4, 8, 8, generator=g)
    t = torch.tensor([10, 981], dtype=torch.int64)
    context = hidden[:2]
    unet_out = unet(sample, t, encoder_hidden_states=context).sample
    unet_lin_out = unet_lin(sample, t, encoder_hidden_states=context).sample

    images = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    post = vae.encode(images).latent_dist
    decoded = vae.decode(post.mean).sample

    # SDEdit with CFG through diffusers' scheduler: the loop of its img2img pipeline, written out.
    sched = DDIMScheduler.from_config(SD14_SCHEDULER)
    sched.set_timesteps(10)
    start = int(10 * STRENGTH)
    steps = sched.timesteps[10 - start :]
    init = post.mean[:1] * vae.config.scaling_factor
    noise = torch.randn(init.shape, generator=g)
    lat = sched.add_noise(init, noise, steps[:1])
    cond, uncond = hidden[0:1], hidden[2:3]
    for step in steps:
        eps = unet(torch.cat([lat, lat]), step, encoder_hidden_states=torch.cat([uncond, cond])).sample
        e_u, e_c = eps.chunk(2)
        lat = sched.step(e_u + GUIDANCE * (e_c - e_u), step, lat).prev_sample
    return {
        "unet_sample": sample.numpy(),
        "unet_t": t.numpy(),
        "context": context.numpy().astype(np.float32),
        "unet_out": unet_out.numpy(),
        "unet_linear_out": unet_lin_out.numpy(),
        "vae_images": images.numpy(),
        "vae_mean": post.mean.numpy(),
        "vae_decoded": decoded.numpy(),
        "ddim_init": init.numpy(),
        "ddim_noise": noise.numpy(),
        "ddim_timesteps": steps.numpy().astype(np.int64),
        "ddim_out": lat.numpy(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--diffusers", required=True, help="a checkout of github.com/huggingface/diffusers at v0.31.0")
    ap.add_argument("--out", default=os.path.join(FIXTURES, "sd_tiny"))
    ap.add_argument(
        "--variants-only", action="store_true", help="write only unet_act/, variants.safetensors and schedulers.json"
    )
    a = ap.parse_args()
    sys.path[:0] = [os.path.join(a.diffusers, "src"), os.path.join(HERE, "refstubs")]
    import torch
    import diffusers
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    torch.set_grad_enabled(False)
    rev = (
        subprocess.run(
            ["git", "-C", a.diffusers, "describe", "--tags", "--always"], capture_output=True, text=True
        ).stdout.strip()
        or diffusers.__version__
    )
    out = os.path.abspath(a.out)
    if a.variants_only:
        write_variants(out, rev, torch, UNet2DConditionModel, DDIMScheduler)
        return
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    unet, unet_lin, vae = tiny_models(out, torch, UNet2DConditionModel, AutoencoderKL)
    write_text_encoder(out)
    extra = {"feature_extractor": [None, None], "safety_checker": [None, None], "requires_safety_checker": False}
    write_pipeline(out, diffusers.__version__, "DDIMScheduler", extra)
    ref = reference_outputs(torch, DDIMScheduler, unet, unet_lin, vae)
    st_io.save(
        os.path.join(out, "expected.safetensors"),
        ref,
        {
            "reference": f"diffusers {rev}, torch {torch.__version__}, CPU float32 on float16-rounded weights",
            "strength": str(STRENGTH),
            "guidance": str(GUIDANCE),
            "steps": "10",
        },
    )
    write_variants(out, rev, torch, UNet2DConditionModel, DDIMScheduler)
    print(
        f"{out}: unet {sum(p.numel() for p in unet.parameters())} params, "
        f"unet_linear {sum(p.numel() for p in unet_lin.parameters())}, "
        f"vae {sum(p.numel() for p in vae.parameters())}; ddim timesteps {ref['ddim_timesteps'].tolist()}"
    )


UNET_ACT = tiny_unet((8, 16), 1, (True, False), attention_head_dim=2, time_embedding_dim=48)
# (timestep_post_act, time_embedding_act_fn, center_input_sample) → output name
ACT_VARIANTS = {
    ("silu", "silu", False): "unet_act_out",
    ("mish", "gelu", True): "unet_act_mish_gelu_out",
    ("relu", "swish", False): "unet_act_relu_swish_out",
}


def unet_act_outputs(out: str, torch: Any, UNet2DConditionModel: Any) -> Dict[str, np.ndarray]:
    """unet_act/ (saved with the first variant's config) and each variant's output on the same weights."""
    ref = st_io.load(os.path.join(out, "expected.safetensors"))
    sample, t, context = (torch.from_numpy(np.array(ref[k])) for k in ("unet_sample", "unet_t", "context"))
    outputs: Dict[str, np.ndarray] = {}
    weights = None
    for (post, act, center), name in ACT_VARIANTS.items():
        torch.manual_seed(4)
        unet = UNet2DConditionModel(
            **UNET_ACT, timestep_post_act=post, time_embedding_act_fn=act, center_input_sample=center
        ).eval()
        if weights is None:
            perturb(unet, torch)
            save_fp16(unet, os.path.join(out, "unet_act"), torch)
            weights = unet.state_dict()
        else:
            unet.load_state_dict(weights)
        outputs[name] = unet(sample, t, encoder_hidden_states=context).sample.numpy()
    return outputs


def write_variants(out: str, rev: str, torch: Any, UNet2DConditionModel: Any, DDIMScheduler: Any) -> None:
    """unet_act/, variants.safetensors and schedulers.json (needs expected.safetensors' UNet inputs)."""
    shutil.rmtree(os.path.join(out, "unet_act"), ignore_errors=True)
    outputs = unet_act_outputs(out, torch, UNet2DConditionModel)
    st_io.save(
        os.path.join(out, "variants.safetensors"),
        outputs,
        {"reference": f"diffusers {rev}, torch {torch.__version__}, CPU float32 on float16-rounded weights"},
    )
    cases = scheduler_cases(torch, DDIMScheduler, SD14_SCHEDULER)
    with open(os.path.join(out, "schedulers.json"), "w") as f:
        json.dump({"reference": f"diffusers {rev} DDIMScheduler, torch {torch.__version__}, CPU float32", **cases}, f)
    print(
        f"{out}: unet_act, {len(outputs)} variant outputs, {len(cases['timesteps'])} timestep lists, "
        f"{len(cases['loops'])} DDIM loops"
    )


if __name__ == "__main__":
    main()
