#!/usr/bin/env python3
"""PyTorch side of `make paper-time`: the paper's components timed with the reference code on the
same GPU, random weights at full size (timing does not depend on weight values), fp32 (TF32 off)
and fp16. References run from their public sources: diffusers v0.31.0 (UNet2DConditionModel,
AutoencoderKL, DDIMScheduler, DDIMInverseScheduler; with tools/refstubs), rosinality's
stylegan2-pytorch (Generator 1024/512/8; StyleCLIP's LevelsMapper is built from its PixelNorm and
EqualLinear, as StyleCLIP builds it), TreB1eN/InsightFace_Pytorch (IR-SE50, the ID loss).

Measured (medians), the same quantities bench/paper_time.ts reads from sdd-bench's runs:
  iter_s          one SDD iteration at batch 2: mapper → G 1024² → resize 512 → VAE encode (sample)
                  → UNet with CFG 100 (no grad) → SDS gradient (w(t) = 1 − ᾱ_t, top-k 1024) pushed
                  through the VAE encoder and G, + L2 + ID loss (IR-SE50), AdamW step
  hqs_s           the released HQS scan: 200 images × 19 t (per-image cost measured on --hqs-images
                  images, × 200)
  sdd_infer_s     G(w + 0.1·M(w)) per image, batch 8
  sdedit_infer_s  encode, 25 DDIM steps with CFG 7.5 (strength 0.5 of 50), decode: per image, batch 8
  ddib_infer_s    encode, 50 DDIM inversion steps (source prompt, no CFG), 50 CFG steps, decode: per image, batch 8
The text encoder runs once per prompt and is not timed (its output is a fixed random context).

  python3 bench/paper_time_torch.py --diffusers DIFFUSERS_v0.31.0 --rosinality STYLEGAN2_PYTORCH \
      --insightface INSIGHTFACE_PYTORCH --device cuda --out bench/results/paper_time_torch.json [--scale tiny]

--scale tiny: the configs of world paper-random-tiny's SD (datasets/paper/configs/tiny) and a 64²
generator, for a smoke run on a CPU.
"""
import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
import types

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, "not a loadable module file"
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def rosinality(repo, device):
    """model.py; its CUDA ops compiled when the toolchain allows, else the reference's native paths
    (upfirdn2d_native; fused_leaky_relu's own CPU formula) on every device. Returns (module, path)."""
    import torch.utils.cpp_extension as ext

    sys.path.insert(0, repo)
    path = "cuda-extensions"
    if device == "cpu":
        ext.load = lambda *a, **k: types.SimpleNamespace()
        path = "native (cpu)"
    try:
        m = load_module("sg2_model", os.path.join(repo, "model.py"))
    except Exception as e:  # no nvcc / ninja: run the native code on the GPU
        print(f"rosinality CUDA ops not built ({str(e).splitlines()[0][:120]}): native paths", file=sys.stderr)
        ext.load = lambda *a, **k: types.SimpleNamespace()
        for k in [k for k in sys.modules if k == "op" or k.startswith("op.")]:
            del sys.modules[k]
        import torch.nn.functional as F

        import op.fused_act as fa
        import op.upfirdn2d as up_mod

        def native_up(input, kernel, up=1, down=1, pad=(0, 0)):
            # rosinality calls it with integer factors and a (pad0, pad1) pair.
            return up_mod.upfirdn2d_native(input, kernel, up, up, down, down, pad[0], pad[1], pad[0], pad[1])

        def native_act(input, bias=None, negative_slope=0.2, scale=2**0.5):
            if bias is not None:
                input = input + bias.view(1, bias.shape[0], *([1] * (input.ndim - 2)))
            return F.leaky_relu(input, negative_slope=0.2) * scale

        up_mod.upfirdn2d = native_up
        fa.fused_leaky_relu = native_act
        import op

        op.upfirdn2d = native_up
        op.fused_leaky_relu = native_act
        m = load_module("sg2_model", os.path.join(repo, "model.py"))
        path = "native (no CUDA ops)"
    return m, path


def median_time(fn, device, torch, n):
    fn()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def config(scale, name):
    """datasets/paper/configs/SCALE/NAME.json without its comment keys (_*)."""
    with open(os.path.join(ROOT, "datasets", "paper", "configs", scale, f"{name}.json")) as f:
        return {k: v for k, v in json.load(f).items() if not k.startswith("_")}


class Paper:
    """The paper's components at one precision, random weights (seeded 0, built in this order): SD's
    UNet and VAE, the generator, IR-SE50 and StyleCLIP's mapper with its AdamW, then the timed inputs;
    one method per measured quantity."""

    B = 8  # the inference batch

    def __init__(self, a, refs, dtype):
        sg2, insight, diffusers = refs["sg2"], refs["insight"], refs["diffusers"]
        dev, sched_cfg = a.device, config(a.scale, "scheduler")
        unet_cfg, vae_cfg = config(a.scale, "unet"), config(a.scale, "vae")
        size, style_dim, n_mlp = (1024, 512, 8) if a.scale == "full" else (64, 32, 2)
        self.dev, self.dtype, self.style_dim = dev, dtype, style_dim
        torch.manual_seed(0)
        self.unet = diffusers.UNet2DConditionModel.from_config(unet_cfg).to(dev, dtype).eval().requires_grad_(False)
        self.vae = diffusers.AutoencoderKL.from_config(vae_cfg).to(dev, dtype).eval().requires_grad_(False)
        self.g = sg2.Generator(size, style_dim, n_mlp).to(dev, dtype).eval().requires_grad_(False)
        self.ir = insight.Backbone(50, 0.6, "ir_se").to(dev, dtype).eval().requires_grad_(False)
        # StyleCLIP's LevelsMapper: per group PixelNorm + 4 × EqualLinear(lr_mul 0.01, fused lrelu).
        self.mapper = torch.nn.ModuleDict(
            {
                grp: torch.nn.Sequential(
                    *[sg2.EqualLinear(style_dim, style_dim, lr_mul=0.01, activation="fused_lrelu") for _ in range(4)]
                )
                for grp in ("medium", "fine")
            }
        ).to(dev, dtype)
        self.pixel_norm = sg2.PixelNorm()  # on [B, levels, dim]: across the group's levels (StyleCLIP's mapper)
        self.opt = torch.optim.AdamW(self.mapper.parameters(), lr=5e-3, weight_decay=2e-3)
        self.levels = self.g.n_latent
        self.ddim = diffusers.DDIMScheduler.from_config(sched_cfg)
        self.inv = diffusers.DDIMInverseScheduler.from_config(sched_cfg)
        self.ac = self.ddim.alphas_cumprod.to(dev)
        self.img = (
            8 * unet_cfg["sample_size"]
            if a.scale == "full"
            else 2 ** (len(vae_cfg["block_out_channels"]) - 1) * unet_cfg["sample_size"]
        )
        self.ctx_dim = unet_cfg["cross_attention_dim"]
        self.pool = torch.nn.AdaptiveAvgPool2d((256, 256))
        self.face = torch.nn.AdaptiveAvgPool2d((112, 112))
        self.w_train = torch.randn(2, self.levels, style_dim, device=dev, dtype=dtype)
        self.c2, self.u2 = self.ctx(2), self.ctx(2)
        self.w8 = torch.randn(self.B, self.levels, style_dim, device=dev, dtype=dtype)
        self.x8 = torch.rand(self.B, 3, self.img, self.img, device=dev, dtype=dtype) * 2 - 1
        self.c8, self.u8 = self.ctx(self.B), self.ctx(self.B)

    def ctx(self, b):
        return torch.randn(b, 77, self.ctx_dim, device=self.dev, dtype=self.dtype)

    def group(self, name, x):
        b, n, d = x.shape
        return self.mapper[name](self.pixel_norm(x).reshape(b * n, d)).reshape(b, n, d)

    def mapped(self, w):
        m = torch.cat([torch.zeros_like(w[:, :4]), self.group("medium", w[:, 4:8]), self.group("fine", w[:, 8:])], 1)
        return w + 0.1 * m

    def generate(self, w):
        img = self.img
        x, _ = self.g([w], input_is_latent=True, randomize_noise=False)
        return F.interpolate(x, size=(img, img), mode="bilinear", align_corners=False) if x.shape[-1] != img else x

    def id_feats(self, x):
        return self.ir(self.face(self.pool(x)[:, :, 35:223, 32:220]))

    def cfg_eps(self, z, t, scale, c, u):
        e = self.unet(torch.cat([z, z]), t, encoder_hidden_states=torch.cat([u, c])).sample
        eu, ec = e.chunk(2)
        return eu + scale * (ec - eu)

    def sds_latent_grad(self, x, t):
        lat = self.vae.encode(x).latent_dist.sample() * 0.18215
        noise = torch.randn_like(lat)
        with torch.no_grad():
            a_t = self.ac[t].to(self.dtype)
            zt = a_t.sqrt() * lat + (1 - a_t).sqrt() * noise
            gvec = (1 - a_t) * (self.cfg_eps(zt, t, 100.0, self.c2[: x.shape[0]], self.u2[: x.shape[0]]) - noise)
            flat = gvec.reshape(-1).abs()
            k = min(1024, flat.numel())
            keep = flat >= flat.topk(k).values[-1]
            gvec = gvec * keep.reshape(gvec.shape)
        return lat, gvec

    def iteration(self):
        self.opt.zero_grad(set_to_none=True)
        w_train = self.w_train
        w2 = self.mapped(w_train)
        x2 = self.generate(w2)
        t = torch.randint(200, 800, (1,), device=self.dev)
        lat, gvec = self.sds_latent_grad(x2, t)
        with torch.no_grad():
            orig = self.id_feats(self.generate(w_train))
        loss = (gvec * lat).sum() + 10 * ((w2 - w_train) ** 2).mean() + (1 - (self.id_feats(x2) * orig).sum(1).mean())
        loss.backward()
        self.opt.step()

    def hqs_image(self):
        with torch.no_grad():
            x0 = self.generate(
                self.mapped(torch.randn(1, self.levels, self.style_dim, device=self.dev, dtype=self.dtype))
            )
        for t in range(50, 951, 50):
            x = x0.clone().requires_grad_(True)
            lat, gvec = self.sds_latent_grad(x, torch.tensor([t], device=self.dev))
            torch.autograd.grad((gvec * lat).sum(), x)

    @torch.no_grad()
    def sdd_infer(self):
        self.generate(self.mapped(self.w8))

    @torch.no_grad()
    def sdedit(self):
        ddim = self.ddim
        z = self.vae.encode(self.x8).latent_dist.mean * 0.18215
        ddim.set_timesteps(50)
        ts = ddim.timesteps[25:]
        z = ddim.add_noise(z, torch.randn_like(z), ts[:1].repeat(self.B))
        for t in ts:
            z = ddim.step(self.cfg_eps(z, t, 7.5, self.c8, self.u8), t, z).prev_sample
        self.vae.decode(z / 0.18215)

    @torch.no_grad()
    def ddib(self):
        ddim, inv = self.ddim, self.inv
        z = self.vae.encode(self.x8).latent_dist.mean * 0.18215
        inv.set_timesteps(50)
        for t in inv.timesteps:
            z = inv.step(self.unet(z, t, encoder_hidden_states=self.c8).sample, t, z).prev_sample
        ddim.set_timesteps(50)
        for t in ddim.timesteps:
            z = ddim.step(self.cfg_eps(z, t, 7.5, self.c8, self.u8), t, z).prev_sample
        self.vae.decode(z / 0.18215)

    def measure(self, a):
        """The medians, in seconds (per image for inference, for 200 images for HQS)."""
        dev, n, B = self.dev, a.repeats, self.B
        return {
            "iter_s": median_time(self.iteration, dev, torch, n),
            "hqs_s": 200 * median_time(self.hqs_image, dev, torch, max(1, a.hqs_images)),
            "sdd_infer_s": median_time(self.sdd_infer, dev, torch, n) / B,
            "sdedit_infer_s": median_time(self.sdedit, dev, torch, max(1, n // 3)) / B,
            "ddib_infer_s": median_time(self.ddib, dev, torch, max(1, n // 3)) / B,
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--diffusers", required=True)
    ap.add_argument("--rosinality", required=True)
    ap.add_argument("--insightface", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--scale", choices=["full", "tiny"], default="full")
    ap.add_argument("--hqs-images", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--precisions", default="fp32,fp16")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    sys.path[:0] = [os.path.join(a.diffusers, "src"), os.path.join(ROOT, "tools", "refstubs")]
    import diffusers

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = a.device
    sg2, sg2_path = rosinality(a.rosinality, dev)
    insight = load_module("insightface_model", os.path.join(a.insightface, "model.py"))
    refs = {"sg2": sg2, "insight": insight, "diffusers": diffusers}
    out = {
        "device": dev if dev == "cpu" else torch.cuda.get_device_name(0),
        "scale": a.scale,
        "stylegan2_ops": sg2_path,
        "torch": torch.__version__,
    }
    for precision in a.precisions.split(","):
        dtype = torch.float16 if precision == "fp16" else torch.float32
        if dtype == torch.float16 and dev == "cpu":
            continue
        res = out[precision] = Paper(a, refs, dtype).measure(a)
        print(precision, json.dumps(res), flush=True)
        # the models are gone with their Paper: the cache goes before the next precision
        if dev.startswith("cuda"):
            torch.cuda.empty_cache()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
