"""Twin of src/nn/stylegan2.ts: rosinality's StyleGAN2 generator `g_ema` (+ `latent_avg`), as our TS
reads a file converted by tools/convert_stylegan2.py.

The file is in PyTorch's layout already (modulated kernels [1, O, I, k, k], NCHW constant input and
noise buffers), so this module tree holds every tensor under its file name and shape and loads it
unchanged, strictly (sdd_torch.nn.load_weights: one line naming a missing or unused tensor). The
FIR buffers (`*.blur.kernel`, `*.upsample.kernel`) are checked against the [1, 3, 3, 1] kernel and
computed, not read, as in TS. Forward passes follow the TS code step for step: a modulated
convolution is "scale the input by the style, convolve with the shared kernel, scale the output by
the demodulation" (one kernel for the batch, no grouped convolution); upsampling convolutions are
a stride-2 transposed convolution then the blur; the toRGB skips are upfirdn2d-upsampled.
Noise is the file's fixed buffers (randomize_noise=False, as SDD and StyleCLIP generate).
Images: NHWC in about [-1, 1], differentiable w.r.t. W+.
"""
import math
import re
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdd_torch.nn import WeightsError, load_weights, nhwc
from sdd_torch.safetensors_np import load

LRELU_GAIN = math.sqrt(2.0)
# lr_mul of the mapping network: not stored in a checkpoint; rosinality's (and NVIDIA's) 0.01.
LR_MLP = 0.01
FIR = re.compile(r"^(convs\.\d+\.conv\.blur|to_rgbs\.\d+\.upsample)\.kernel$")


class StyleGan2Config(NamedTuple):
    """stylegan2.ts StyleGan2Config; `channels` holds every resolution's width (4 .. size)."""

    size: int
    style_dim: int
    n_mlp: int
    channels: Dict[int, int]
    lr_mlp: float = LR_MLP


def default_channels(size: int, channel_multiplier: int = 2) -> Dict[int, int]:
    """rosinality's channel table (stylegan2.ts channelsAt without overrides)."""
    out: Dict[int, int] = {}
    r = 4
    while r <= size:
        out[r] = 512 if r <= 32 else (16 * 1024 * channel_multiplier) // r
        r *= 2
    return out


def log_size(c: StyleGan2Config) -> int:
    lg = math.log2(c.size)
    if lg != int(lg) or lg < 2:
        raise WeightsError(f"StyleGAN2 size {c.size}: a power of two >= 4 is needed")
    return int(lg)


def n_latent(c: StyleGan2Config) -> int:
    """W+ levels: 2 log2(size) - 2 (18 at 1024^2)."""
    return log_size(c) * 2 - 2


def blur_kernel(gain: float) -> np.ndarray:
    """make_kernel([1, 3, 3, 1]) * gain: the outer product normalised to sum 1, times the gain (float32)."""
    k = np.array([1.0, 3.0, 3.0, 1.0])
    return (np.outer(k, k) * gain / 64.0).astype(np.float32)


_FIR_CACHE: Dict[Tuple[torch.device, torch.dtype], Tensor] = {}


def fir_kernel(like: Tensor) -> Tensor:
    """The blur kernel (gain 4) on `like`'s device and dtype: computed once per device, not a module
    buffer (the file's FIR tensors are checked, not loaded, and strict loading matches every buffer)."""
    key = (like.device, like.dtype)
    if key not in _FIR_CACHE:
        _FIR_CACHE[key] = torch.from_numpy(blur_kernel(4.0)).to(device=like.device, dtype=like.dtype)
    return _FIR_CACHE[key]


def upfirdn2d(x: Tensor, kernel: Tensor, up: int, pad: Tuple[int, int]) -> Tensor:
    """stylegan2.ts upfirdn2d (up 1 or 2, no down): zero insertion, zero padding (pad[0] before,
    pad[1] after on each axis), then a depthwise convolution with the flipped kernel. x NCHW."""
    b, ch, h, w = x.shape
    if up == 2:
        y = x.new_zeros(b, ch, 2 * h, 2 * w)
        y[:, :, ::2, ::2] = x
        x = y
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    k = torch.flip(kernel, [0, 1])
    return F.conv2d(x, k[None, None].expand(ch, 1, -1, -1), groups=ch)


class EqualLinear(nn.Module):
    """EqualLinear: x (W lr_mul / sqrt(in))^T + b lr_mul, then (activate) leaky ReLU 0.2 x sqrt 2."""

    def __init__(self, cin: int, cout: int, lr_mul: float, activate: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        scale = self.lr_mul / math.sqrt(self.weight.shape[1])
        y = x @ (self.weight * scale).t() + self.bias * self.lr_mul
        return F.leaky_relu(y, 0.2) * LRELU_GAIN if self.activate else y


class ModulatedConv(nn.Module):
    """ModulatedConv2d (the reference's fused=True) as x s -> conv -> d, with the style s from
    `modulation` (EqualLinear, lr 1). Upsampling: conv_transpose2d stride 2 (no padding), then the
    blur with gain 4, pad (1, 1)."""

    def __init__(self, cin: int, cout: int, k: int, style_dim: int, demodulate: bool, upsample: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, cout, cin, k, k))
        self.modulation = EqualLinear(style_dim, cin, 1.0, activate=False)
        self.demodulate = demodulate
        self.upsample = upsample
        self.k = k

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        cin = x.shape[1]
        kernel = self.weight[0] * (1 / math.sqrt(cin * self.k * self.k))  # [O, I, k, k]
        s = self.modulation(w)
        xs = x * s[:, :, None, None]
        if self.upsample:
            out = F.conv_transpose2d(xs, kernel.transpose(0, 1), stride=2)  # [2H+1, 2W+1]
            out = upfirdn2d(out, fir_kernel(out), 1, (1, 1))
        else:
            out = F.conv2d(xs, kernel, padding=self.k // 2)
        if not self.demodulate:
            return out
        # d[b, o] = 1 / sqrt(sum_{i,kh,kw} (k s_i)^2 + 1e-8) = 1 / sqrt(s^2 . sum_hw k^2 + 1e-8)
        k_sq = kernel.square().sum(dim=(2, 3)).t()  # [I, O]
        d = torch.rsqrt(s.square() @ k_sq + 1e-8)
        return out * d[:, :, None, None]


class _Strength(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))


class _Bias(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(c))


class StyledConv(nn.Module):
    """StyledConv: modulated 3x3 conv, + the fixed noise buffer x its strength, FusedLeakyReLU (bias)."""

    def __init__(self, cin: int, cout: int, style_dim: int, upsample: bool) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 3, style_dim, demodulate=True, upsample=upsample)
        self.noise = _Strength()
        self.activate = _Bias(cout)

    def forward(self, x: Tensor, w: Tensor, noise: Tensor) -> Tensor:
        y = self.conv(x, w) + noise * self.noise.weight
        return F.leaky_relu(y + self.activate.bias[None, :, None, None], 0.2) * LRELU_GAIN


class ToRgb(nn.Module):
    """ToRGB: 1x1 modulated conv without demodulation, + bias, + the skip upsampled (gain 4, pad (2, 1))."""

    def __init__(self, cin: int, style_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, 3, 1, style_dim, demodulate=False, upsample=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, w: Tensor, skip: Optional[Tensor]) -> Tensor:
        y = self.conv(x, w) + self.bias
        return y if skip is None else y + upfirdn2d(skip, fir_kernel(skip), 2, (2, 1))


class _Input(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.zeros(1, c, 4, 4))


class StyleGan2(nn.Module):
    """g_ema under its parameter names; `latent_avg` [style_dim] when the file has it."""

    def __init__(self, config: StyleGan2Config, with_latent_avg: bool) -> None:
        super().__init__()
        c = config
        self.config = c
        self.levels = n_latent(c)
        self.dim = c.style_dim
        self.style = nn.Module()
        for i in range(1, c.n_mlp + 1):
            self.style.add_module(str(i), EqualLinear(c.style_dim, c.style_dim, c.lr_mlp, activate=True))
        self.input = _Input(c.channels[4])
        self.conv1 = StyledConv(c.channels[4], c.channels[4], c.style_dim, upsample=False)
        self.to_rgb1 = ToRgb(c.channels[4], c.style_dim)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        self.noises.register_buffer("noise_0", torch.zeros(1, 1, 4, 4))
        cin = c.channels[4]
        for r in range(3, log_size(c) + 1):
            cout = c.channels[2**r]
            self.convs.append(StyledConv(cin, cout, c.style_dim, upsample=True))
            self.convs.append(StyledConv(cout, cout, c.style_dim, upsample=False))
            self.to_rgbs.append(ToRgb(cout, c.style_dim))
            j = (r - 3) * 2
            self.noises.register_buffer(f"noise_{j + 1}", torch.zeros(1, 1, 2**r, 2**r))
            self.noises.register_buffer(f"noise_{j + 2}", torch.zeros(1, 1, 2**r, 2**r))
            cin = cout
        self.latent_avg: Optional[Tensor]
        if with_latent_avg:
            self.register_buffer("latent_avg", torch.zeros(c.style_dim))
        else:
            self.latent_avg = None

    def mapping(self, z: Tensor) -> Tensor:
        """z [B, dim] -> w [B, dim]: PixelNorm, then the n_mlp EqualLinear layers (lr_mul, leaky ReLU)."""
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        for i in range(1, self.config.n_mlp + 1):
            x = getattr(self.style, str(i))(x)
        return x

    def truncate(self, w: Tensor, psi: float, avg: Optional[Tensor] = None) -> Tensor:
        """w_avg + psi (w - w_avg), toward `avg` or the file's latent_avg."""
        centre = avg if avg is not None else self.latent_avg
        if psi == 1:
            return w
        if centre is None:
            raise WeightsError("truncation needs an average latent: this generator's file has no latent_avg")
        return centre + (w - centre) * psi

    def _noise(self, i: int) -> Tensor:
        noise: Tensor = getattr(self.noises, f"noise_{i}")
        return noise

    def synthesis_nchw(self, wplus: Tensor) -> Tensor:
        """G(W+) [B, levels, dim] -> images NCHW [B, 3, size, size] (the reference's layout)."""
        b, n, dim = wplus.shape
        if n != self.levels or dim != self.dim:
            raise WeightsError(f"W+ is [{n}, {dim}]; this generator takes [{self.levels}, {self.dim}]")
        x = self.input.input.expand(b, -1, -1, -1)
        x = self.conv1(x, wplus[:, 0], self._noise(0))
        skip = self.to_rgb1(x, wplus[:, 1], None)
        i = 1
        for k, to_rgb in enumerate(self.to_rgbs):
            j = 2 * k
            x = self.convs[j](x, wplus[:, i], self._noise(j + 1))
            x = self.convs[j + 1](x, wplus[:, i + 1], self._noise(j + 2))
            skip = to_rgb(x, wplus[:, i + 2], skip)
            i += 2
        return skip

    def synthesis(self, wplus: Tensor) -> Tensor:
        """G(W+) -> images NHWC [B, size, size, 3] in about [-1, 1] (stylegan2.ts synthesis)."""
        return nhwc(self.synthesis_nchw(wplus))


def config_of(tensors: Mapping[str, np.ndarray], source: str) -> StyleGan2Config:
    """stylegan2.ts styleGan2ConfigOf: the architecture from the tensor shapes (style_dim and the
    mapping depth from style.*, the size from the toRGB count, each resolution's channels from its
    convolutions)."""

    def shape(name: str) -> Tuple[int, ...]:
        if name not in tensors:
            raise WeightsError(
                f"{source}: no tensor {name} (not a StyleGAN2 g_ema converted by tools/convert_stylegan2.py)"
            )
        return tuple(tensors[name].shape)

    n_mlp = sum(1 for n in tensors if re.match(r"^style\.\d+\.weight$", n))
    rgbs = sum(1 for n in tensors if re.match(r"^to_rgbs\.\d+\.bias$", n))
    channels = {4: shape("conv1.conv.weight")[1]}
    for r in range(3, rgbs + 3):
        channels[2**r] = shape(f"convs.{(r - 3) * 2}.conv.weight")[1]
    return StyleGan2Config(size=4 * 2**rgbs, style_dim=shape("style.1.weight")[1], n_mlp=n_mlp, channels=channels)


def check_fir(tensors: Mapping[str, np.ndarray], source: str) -> List[str]:
    """stylegan2.ts checkFirBuffers: every FIR buffer must be make_kernel([1, 3, 3, 1]) x 4 (both
    follow a factor-2 upsampling); returns their names (checked, then left out of the strict match)."""
    want = blur_kernel(4.0).reshape(-1)
    names = [n for n in tensors if FIR.match(n)]
    for name in names:
        v = np.asarray(tensors[name], dtype=np.float32).reshape(-1)
        if v.size != 16 or np.any(np.abs(v - want) > 1e-6):
            raise WeightsError(f"{source}: {name} is not the [1, 3, 3, 1] FIR kernel this generator implements")
    return names


def from_tensors(tensors: Dict[str, np.ndarray], source: str, config: Optional[StyleGan2Config] = None) -> StyleGan2:
    """The generator of a converted file's tensors: FIR buffers checked, every other tensor loaded
    strictly; eval mode, weights frozen. `config`: the file's own (config_of) when None."""
    fir = set(check_fir(tensors, source))
    cfg = config if config is not None else config_of(tensors, source)
    g = StyleGan2(cfg, "latent_avg" in tensors)
    rest = {k: v.reshape(-1) if k == "latent_avg" else v for k, v in tensors.items() if k not in fir}
    load_weights(g, rest, source)
    return g


def seeded(model: nn.Module, seed: int, init: Callable[[str], Tuple[str, float]]) -> None:
    """Random weights for a model with no file (paper-random at full size): init(name) ->
    ("normal", std) | ("const", value), as the TS initialisers choose; normals drawn on the CPU in
    parameter-then-buffer order, so any device gets the same values. Deterministic per seed, not
    equal to the TS engine's (they need not match across engines). Then eval mode, weights frozen."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            kind, v = init(name)
            t.copy_(torch.randn(t.shape, generator=g) * v if kind == "normal" else torch.full(t.shape, v))
    model.eval()
    model.requires_grad_(False)


def _ts_init(lr_mlp: float) -> Callable[[str], Tuple[str, float]]:
    """stylegan2.ts's initialisers: mapping weights N(0, 1/lr_mul^2), kernels, the constant input and
    noise maps N(0, 1), the modulation's bias 1, every other bias and noise strength 0."""

    def init(name: str) -> Tuple[str, float]:
        if name.endswith("modulation.bias"):
            return ("const", 1.0)
        if name.endswith(".bias") or name.endswith("noise.weight"):
            return ("const", 0.0)
        return ("normal", 1 / lr_mlp if name.startswith("style.") else 1.0)

    return init


def random_stylegan2(config: StyleGan2Config, seed: int, device: torch.device = torch.device("cpu")) -> StyleGan2:
    """stylegan2.ts randomStyleGan2: the architecture with seeded random weights and no latent_avg
    (truncation then needs a centre: mean_latent)."""
    g = StyleGan2(config, with_latent_avg=False)
    seeded(g, seed, _ts_init(config.lr_mlp))
    return g.to(device)


def mean_latent(g: StyleGan2, n: int, seed: int) -> Tensor:
    """The mean of the mapping over n seeded z (rosinality's mean_latent; stylegan2.ts averageLatent
    draws its z with tfjs's generator: the same estimate, other samples)."""
    z = torch.randn(n, g.dim, generator=torch.Generator().manual_seed(seed)).to(next(g.parameters()).device)
    with torch.no_grad():
        return g.mapping(z).mean(dim=0)


def load_stylegan2(
    path: str,
    sha256: Optional[str] = None,
    config: Optional[StyleGan2Config] = None,
    device: torch.device = torch.device("cpu"),
) -> StyleGan2:
    """stylegan2.ts loadStyleGan2: a file written by tools/convert_stylegan2.py (its sha256 checked when given)."""
    return from_tensors(load(path, sha256=sha256), path, config).to(device)
