#!/usr/bin/env python3
"""Makes test/fixtures/stylegan2/: parity data for sdd-bench's StyleGAN2 generator against the
reference model code, rosinality/stylegan2-pytorch's model.py (the Generator whose g_ema StyleCLIP
and the SDD code load), run from a checkout on the CPU (its CUDA ops are not compiled: the
reference's own native CPU paths of upfirdn2d and fused_leaky_relu run). Weights are synthetic
(tools/synthetic_weights.py), written through tools/convert_stylegan2.py from a .pt in the published
layout, and recreated bit for bit by the tests. Committed: only

  weights.json           name, shape, rule and float32 sha256 of every converted tensor
  expected.safetensors   w = g.style(z) for z [2, dim]; images = G(W+) for W+ [2, n_latent, dim]
                         (input_is_latent, randomize_noise=False, NCHW); wplus_grad =
                         d Σ(images ⊙ probe) / d W+; truncated = G([z], truncation 0.7,
                         truncation_latent = latent_avg)
                         (z, W+, probe: synthetic_weights.values('sg2_z' | 'sg2_wplus' | 'sg2_probe', shape, uniform))

Default: a small configuration (size 16, style_dim 64, 2 mapping layers: the reference's channel
table, so 512 channels, every block type). --full: FFHQ config-f (1024², 512, 8 layers, channel
multiplier 2) at batch 1, written where --out says (not committed: checked on a GPU host or by hand).

  /usr/bin/python3 tools/make_stylegan2_fixture.py --rosinality PATH_TO_stylegan2-pytorch [--full --out DIR]
"""
import argparse
import math
import os
import subprocess
import sys
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_io  # noqa: E402
import synthetic_weights as sw  # noqa: E402

SQRT3 = math.sqrt(3.0)


def fir(gain):
    k = np.array([1.0, 3.0, 3.0, 1.0])
    return (np.outer(k, k) / 64.0 * gain).reshape(-1).tolist()


def rule(name, shape):
    """Unit-variance weights as the reference initialises them (N(0, 1), ÷ lr_mul in the mapping);
    biases, noise strengths and the modulation's bias (init 1) spread a little, as trained ones are."""
    if name.endswith(".kernel"):
        return ["const", fir(4)]
    if name.startswith("style.") and name.endswith(".weight"):
        return ["uniform", SQRT3 / 0.01]
    if name.startswith("style.") and name.endswith(".bias"):
        return ["uniform", 10.0]
    if name.endswith("modulation.bias"):
        return ["around", 1.0, 0.1]
    if name.endswith("noise.weight") or name.endswith("activate.bias") or name.endswith(".bias"):
        return ["uniform", 0.1]
    if name == "latent_avg":
        return ["uniform", 1.0]
    if name.endswith(".weight") or name == "input.input" or name.startswith("noises."):
        return ["uniform", SQRT3]
    raise ValueError(name)


def load_reference(repo):
    """model.py with its op package; cpp_extension.load (the CUDA build) replaced by a no-op so the
    CPU paths, which never touch the built module, run."""
    import importlib.util

    import torch.utils.cpp_extension as ext

    ext.load = lambda *a, **k: types.SimpleNamespace()
    sys.path.insert(0, repo)
    spec = importlib.util.spec_from_file_location("sg2_model", os.path.join(repo, "model.py"))
    assert spec is not None and spec.loader is not None, "not a loadable module file"
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def time_reference(g, wplus, probe, device, out, torch):
    """Median seconds of G(W+) and of G(W+) + backward to W+ on `device`, fp32 (and fp16 on CUDA),
    written to reference.json beside the outputs (the CUDA ops are not built: on a GPU the
    reference's CUDA path needs them, so the native path is timed there too and said so)."""
    import json
    import statistics
    import time

    def timed(fn, n=5):
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    g = g.to(device)
    w = wplus.to(device)
    p = probe.to(device)

    def fwd():
        with torch.no_grad():
            g([w], input_is_latent=True, randomize_noise=False)

    def fwd_bwd():
        x = w.clone().requires_grad_(True)
        img, _ = g([x], input_is_latent=True, randomize_noise=False)
        torch.autograd.grad((img * p).sum(), x)

    times = {"forward": timed(fwd), "forward_backward": timed(fwd_bwd)}
    info = {
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
        "batch": int(w.shape[0]),
        "reference_seconds": times,
        "note": "rosinality's native upfirdn2d / fused_leaky_relu paths (its CUDA extensions are not compiled)",
        "torch": torch.__version__,
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(info, f, indent=1)


def reference_outputs(g, z, avg, wplus, probe, torch):
    """The reference's mapping (w), truncated images, W+ images and the W+ gradient of (images · probe)."""
    with torch.no_grad():
        w = g.style(z)
        trunc, _ = g([z], truncation=0.7, truncation_latent=avg[None], randomize_noise=False)
    images, _ = g([wplus], input_is_latent=True, randomize_noise=False)
    (grad,) = torch.autograd.grad((images * probe).sum(), wplus)
    return {
        "w": w.numpy(),
        "images": images.detach().numpy(),
        "wplus_grad": grad.numpy(),
        "truncated": trunc.numpy(),
    }


def float64_outputs(g, wplus, probe, torch):
    """At full size the W+ gradient is ill-conditioned in float32 (the reference's own fp32 result
    is ~1e-3 of max from float64): the float64 result is the truth both are measured against. `g`
    is converted in place and back."""
    g64 = g.double()
    w64 = wplus.detach().double().requires_grad_(True)
    img64, _ = g64([w64], input_is_latent=True, randomize_noise=False)
    (grad64,) = torch.autograd.grad((img64 * probe.double()).sum(), w64)
    g.float()
    return {"images_f64": img64.detach().float().numpy(), "wplus_grad_f64": grad64.float().numpy()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rosinality", required=True)
    ap.add_argument("--full", action="store_true")
    ap.add_argument(
        "--size", type=int, default=1024, help="with --full: the generator's size (config-f's widths; 1024 is FFHQ's)"
    )
    ap.add_argument("--out", default=os.path.join(HERE, "..", "test", "fixtures", "stylegan2"))
    ap.add_argument(
        "--device", default="cpu", help="where the reference's time per forward/backward is measured (--full)"
    )
    a = ap.parse_args()
    import torch

    ref = load_reference(a.rosinality)
    rev = (
        subprocess.run(["git", "-C", a.rosinality, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        or "unknown"
    )
    size, dim, n_mlp, batch = (a.size, 512, 8, 1) if a.full else (16, 64, 2, 2)
    g = ref.Generator(size, dim, n_mlp, channel_multiplier=2).eval()
    state = {
        k: torch.from_numpy(sw.values(k, list(v.shape), rule(k, list(v.shape)))) for k, v in g.state_dict().items()
    }
    g.load_state_dict(state)
    avg = torch.from_numpy(sw.values("latent_avg", [dim], rule("latent_avg", [dim])))
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    tensors = sw.through_converter(
        {"g_ema": state, "latent_avg": avg.reshape(1, dim)}, "convert_stylegan2.py", "stylegan2.pt", rule, out
    )

    levels = g.n_latent
    z = torch.from_numpy(sw.values("sg2_z", [batch, dim], ["uniform", SQRT3]))
    wplus = torch.from_numpy(sw.values("sg2_wplus", [batch, levels, dim], ["uniform", 1.0])).requires_grad_(True)
    probe = torch.from_numpy(sw.values("sg2_probe", [batch, 3, size, size], ["uniform", 1.0]))
    outputs = reference_outputs(g, z, avg, wplus, probe, torch)
    if a.full:
        outputs.update(float64_outputs(g, wplus, probe, torch))
    st_io.save(
        os.path.join(out, "expected.safetensors"),
        outputs,
        {
            "reference": f"rosinality/stylegan2-pytorch {rev[:12]} model.py "
            f"Generator({size}, {dim}, {n_mlp}, channel_multiplier=2), torch {torch.__version__}, CPU float32",
            "size": size,
            "style_dim": dim,
            "n_mlp": n_mlp,
        },
    )
    if a.full:
        time_reference(g, wplus.detach(), probe, a.device, out, torch)
    print(
        f"{out}: {len(tensors)} tensors, {sum(int(np.prod(t['shape'])) for t in tensors)} values; "
        f"images max {np.abs(outputs['images']).max():.3f}, |grad| max {np.abs(outputs['wplus_grad']).max():.3e}"
    )


if __name__ == "__main__":
    main()
