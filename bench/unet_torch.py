"""The bench U-Net of src/nn/unet.ts in PyTorch (CPU, 2 threads): same layers, widths and loss.

Prints one JSON line per image size: {"size": S, "batch": B, "ms": [per-step times]}.
Usage: python3 bench/unet_torch.py --sizes 32,64 --batch 8 --steps 12 --warmup 3
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="32,64")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for size in map(int, a.sizes.split(",")):
        net = UNet()
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        x, y = torch.randn(a.batch, 3, size, size), torch.randn(a.batch, 3, size, size)
        times = []
        for i in range(a.warmup + a.steps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(net(x), y)
            loss.backward()
            opt.step()
            float(loss)
            if i >= a.warmup:
                times.append((time.perf_counter() - t0) * 1000)
        params = sum(p.numel() for p in net.parameters())
        print(json.dumps({"size": size, "batch": a.batch, "params": params, "threads": a.threads,
                          "torch": torch.__version__, "ms": times}), flush=True)


if __name__ == "__main__":
    main()
