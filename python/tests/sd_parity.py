"""The torch twins' side of test/torch_sd.test.ts: loads the tiny SD and CLIP folders with the twins'
own loaders, reads the inputs the TS test wrote (.npy) and writes each case's output, and the
gradient of sum(R * output) w.r.t. the case's input (R: the test's fixed random projection), as .npy.

usage: sd_parity.py <dir> <sd_dir> <clip_dir>    the models of the tiny folders
       sd_parity.py <dir> --world <models.json>   the paper world twin (worlds/paper.py) over the
                                                  specs {world, models} (engine.models' format)
dir holds the inputs and cases.json, outputs go to dir/py/.
       sd_parity.py --device-check [full|tiny] [cuda|cpu]
           paper-random's SD and CLIP twins (seeded random weights, the same on every device) on
           the device against the CPU: one JSON line per entry point with max |Δ| / max |CPU|
           (bound 1e-4, fp32 with both TF32 switches off), then the UNet CFG step's time (batch 2,
           synchronised, median of 10); exit 1 past the bound. For dist/gpu-check.sh.
"""
import json
import pathlib
import sys
import time
from typing import Callable, Dict

import numpy as np
import torch
from torch import Tensor

from sdd_torch.models.clip_text import load_clip
from sdd_torch.models.sd_unet import load_unet
from sdd_torch.models.sd_vae import load_vae
from sdd_torch.worlds.paper import World

Run = Callable[[Dict[str, Tensor]], Tensor]


def cases(sd: pathlib.Path, clip_dir: pathlib.Path) -> Dict[str, Run]:
    """name -> output from the inputs (NHWC where the TS side is NHWC)."""
    unet, unet_linear = load_unet(str(sd / "unet")), load_unet(str(sd / "unet_linear"))
    vae, te, clip = load_vae(str(sd / "vae")), load_clip(str(sd / "text_encoder")), load_clip(str(clip_dir))
    return {
        "text_hidden": lambda i: te.text_hidden(i["ids"].long()),
        "unet_eps": lambda i: unet.forward_nhwc(i["zt"], i["t"], i["context"]),
        "unet_linear_eps": lambda i: unet_linear.forward_nhwc(i["zt"], i["t"], i["context"]),
        "vae_mean": lambda i: vae.encode_moments_nhwc(i["x"])[0],
        "vae_logvar": lambda i: vae.encode_moments_nhwc(i["x"])[1],
        "vae_decode": lambda i: vae.decode_raw_nhwc(i["z"]),
        "clip_text_embeds": lambda i: clip.text_embeds(i["ids"].long()),
        "clip_image_embeds": lambda i: clip.image_embeds(i["pixels"]),
    }


def world_cases(specs_file: pathlib.Path) -> Dict[str, Run]:
    """The paper World's entry points (NHWC), as sd_parts.ts's diffusionOf and clipOf."""
    specs = json.loads(specs_file.read_text())
    world = World(str(specs["world"]), specs["models"], torch.device("cpu"))
    return {
        "encode": lambda i: world.encode(i["x"]),
        "encode_noise": lambda i: world.encode(i["x"], i["noise"]),
        "decode": lambda i: world.decode(i["z"]),
        "text_context": lambda i: world.text_condition(i["ids"].long())[0],
        "text_mask": lambda i: world.text_condition(i["ids"].long())[1],
        "eps": lambda i: world.eps(i["zt"], i["t"], i["context"], i["mask"]),
        "clip_image": lambda i: world.clip.image_embed(i["x"]),
        "clip_image_resized": lambda i: world.clip.image_embed(i["x48"]),
        "clip_text": lambda i: world.clip.text_embed(i["ids"].long()),
    }


DEVICE_BOUND = 1e-4


def device_check(size: str, device_name: str) -> int:
    """The twins on `device_name` against the CPU (see the module docstring); returns the exit code."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    configs = pathlib.Path(__file__).resolve().parents[2] / "datasets" / "paper" / "configs" / size
    specs = {
        n: {"weights": None, "architecture": {"config": json.loads((configs / f"{n}.json").read_text()), "seed": 20231}}
        for n in ("unet", "vae", "text_encoder", "clip")
    }
    device = torch.device(device_name)
    worlds = {"cpu": World("paper-random", specs, torch.device("cpu")), "dev": World("paper-random", specs, device)}
    g = torch.Generator().manual_seed(0)
    h = worlds["cpu"].latent_shape[0]
    text = worlds["cpu"].clip.model.config.text
    # Prompt-like ids: start, 10 random tokens, end-of-text, then end-of-text as padding.
    ids = torch.full((2, 77), text.eos_token_id, dtype=torch.int64)
    ids[:, 0] = text.eos_token_id - 1
    ids[:, 1:11] = torch.randint(1, text.vocab_size - 2, (2, 10), generator=g)
    inputs = {
        "ids": ids,
        "zt": torch.randn(2, h, h, 4, generator=g),
        "t": torch.tensor([999.0, 250.0]),
        "x": torch.rand(1, 8 * h, 8 * h, 3, generator=g),
        "z": torch.randn(1, h, h, 4, generator=g),
    }
    entries: Dict[str, Callable[[World, Dict[str, Tensor]], Tensor]] = {
        "text_condition": lambda w, i: w.text_condition(i["ids"])[0],
        "eps": lambda w, i: w.eps(i["zt"], i["t"], *w.text_condition(i["ids"])),
        "encode": lambda w, i: w.encode(i["x"]),
        "decode": lambda w, i: w.decode(i["z"]),
        "clip_image": lambda w, i: w.clip.image_embed(i["x"]),
        "clip_text": lambda w, i: w.clip.text_embed(i["ids"]),
    }
    worst = 0.0
    with torch.no_grad():
        for name, run in entries.items():
            ref = run(worlds["cpu"], inputs)
            got = run(worlds["dev"], {k: v.to(device) for k, v in inputs.items()}).cpu()
            rel = float((got - ref).abs().max() / ref.abs().max().clamp(min=1e-30))
            worst = max(worst, rel)
            print(json.dumps({"size": size, "device": device_name, "entry": name, "rel": rel, "bound": DEVICE_BOUND}))
        w = worlds["dev"]
        zt, t = inputs["zt"].to(device), inputs["t"].to(device)
        context, mask = w.text_condition(ids.to(device))
        times = []
        for _ in range(12):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            w.eps(zt, t, context, mask)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
    print(
        json.dumps(
            {"size": size, "device": device_name, "unet_cfg_step_ms": 1000 * sorted(times[2:])[len(times[2:]) // 2]}
        )
    )
    return 0 if worst <= DEVICE_BOUND else 1


def main() -> None:
    if sys.argv[1] == "--device-check":
        args = sys.argv[2:] + ["full", "cuda"][len(sys.argv) - 2 :]
        sys.exit(device_check(args[0], args[1]))
    folder = pathlib.Path(sys.argv[1])
    meta = json.loads((folder / "cases.json").read_text())
    out = folder / "py"
    out.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    runs = (
        world_cases(pathlib.Path(sys.argv[3]))
        if sys.argv[2] == "--world"
        else cases(pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]))
    )
    inputs = {p.stem[3:]: torch.from_numpy(np.load(p)) for p in folder.glob("in_*.npy")}
    t1 = time.perf_counter()
    for name in meta["cases"]:
        wrt = meta["wrt"].get(name)
        with torch.no_grad():
            np.save(out / f"out_{name}.npy", runs[name](inputs).numpy().astype(np.float32))
        if wrt is not None:
            x = inputs[wrt].clone().requires_grad_(True)
            proj = torch.from_numpy(np.load(folder / f"proj_{name}.npy"))
            (runs[name]({**inputs, wrt: x}) * proj).sum().backward()
            assert x.grad is not None
            np.save(out / f"grad_{name}.npy", x.grad.numpy().astype(np.float32))
    print(f"load {t1 - t0:.2f} s, forward+grad {time.perf_counter() - t1:.2f} s")


if __name__ == "__main__":
    main()
