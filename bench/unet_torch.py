"""The bench U-Net of src/nn/unet.ts in PyTorch: same layers, widths, loss and optimizer (Adam).

One training step = zero_grad + forward + MSE + backward + Adam step + reading the loss (the read
ends the timed region, so on CUDA all queued work is finished inside it).
  --device cpu   (default) torch.set_num_threads(--threads): bench/unet_step.ts's reference;
  --device cuda  fp32 with TF32 off (matmul and cuDNN): bench/gpu.ts's reference.
Prints one JSON line per (size, batch): {"size": S, "batch": B, "ms": [per-step times], ...}.
Usage: python3 bench/unet_torch.py --sizes 32,64 --batch 8 --steps 12 --warmup 3
       python3 bench/unet_torch.py --device cuda --sizes 32,64 --batches 8,64
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c), nn.Conv2d(c, c, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class Attention(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c)
        self.q, self.k, self.v, self.proj = (nn.Linear(c, c) for _ in range(4))

    def forward(self, x):
        b, c, h, w = x.shape
        n = self.norm(x).flatten(2).transpose(1, 2)  # [b, hw, c]
        att = torch.softmax(self.q(n) @ self.k(n).transpose(1, 2) / c**0.5, dim=-1)
        o = self.proj(att @ self.v(n)).transpose(1, 2).reshape(b, c, h, w)
        return x + o


class UNet(nn.Module):
    def __init__(self, ch=(32, 64, 128), groups=8, cin=3, cout=3):
        super().__init__()
        self.conv_in = nn.Conv2d(cin, ch[0], 3, padding=1)
        self.down_res = nn.ModuleList(ResBlock(c, groups) for c in ch)
        self.down = nn.ModuleList(nn.Conv2d(ch[i], ch[i + 1], 3, stride=2, padding=1) for i in range(len(ch) - 1))
        self.attn, self.mid = Attention(ch[-1], groups), ResBlock(ch[-1], groups)
        self.up = nn.ModuleList(nn.Conv2d(ch[i + 1], ch[i], 3, padding=1) for i in range(len(ch) - 1))
        self.merge = nn.ModuleList(nn.Conv2d(2 * ch[i], ch[i], 3, padding=1) for i in range(len(ch) - 1))
        self.up_res = nn.ModuleList(ResBlock(ch[i], groups) for i in range(len(ch) - 1))
        self.norm_out, self.conv_out = nn.GroupNorm(groups, ch[0]), nn.Conv2d(ch[0], cout, 3, padding=1)

    def forward(self, x):
        h, skips = self.conv_in(x), []
        for i, res in enumerate(self.down_res):
            h = res(h)
            if i < len(self.down):
                skips.append(h)
                h = self.down[i](h)
        h = self.mid(self.attn(h))
        for i in reversed(range(len(self.up))):
            h = self.up[i](F.interpolate(h, scale_factor=2, mode="nearest"))
            h = self.up_res[i](self.merge[i](torch.cat([h, skips[i]], 1)))
        return self.conv_out(F.silu(self.norm_out(h)))


def torch_device(name, threads):
    """The device to time on: CUDA in plain fp32 as tfjs computes it (no TF32 tensor-core
    shortcuts), or the CPU with `threads` threads."""
    if name == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch.cuda.is_available() is False")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    else:
        torch.set_num_threads(threads)
    return torch.device(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="32,64")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batches", default=None, help="comma list of batch sizes (overrides --batch)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    a = ap.parse_args()
    dev = torch_device(a.device, a.threads)
    batches = [int(b) for b in a.batches.split(",")] if a.batches else [a.batch]
    for size in map(int, a.sizes.split(",")):
        for batch in batches:
            torch.manual_seed(0)
            net = UNet().to(dev)
            opt = torch.optim.Adam(net.parameters(), lr=1e-4)
            x = torch.randn(batch, 3, size, size, device=dev)
            y = torch.randn(batch, 3, size, size, device=dev)
            times = []
            for i in range(a.warmup + a.steps):
                if a.device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                loss = F.mse_loss(net(x), y)
                loss.backward()
                opt.step()
                float(loss)  # a device → host read: waits for the step's queued work
                if i >= a.warmup:
                    times.append((time.perf_counter() - t0) * 1000)
            params = sum(p.numel() for p in net.parameters())
            out = {
                "size": size,
                "batch": batch,
                "params": params,
                "device": a.device,
                "threads": a.threads if a.device == "cpu" else None,
                "torch": torch.__version__,
                "ms": times,
            }
            if a.device == "cuda":
                out.update(gpu=torch.cuda.get_device_name(0), tf32=False)
            print(json.dumps(out), flush=True)
            del net, opt, x, y


if __name__ == "__main__":
    main()
