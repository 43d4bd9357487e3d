"""Twin of src/nn/arcface.ts: ArcFace IR-SE50 (the ResNet-50 "IR" units with squeeze-and-excitation;
model_ir_se50.pth, which StyleCLIP and e4e load for their ID loss) as our TS reads a file converted
by tools/convert_ir_se50.py, and the ID loss's preprocessing (`id_embed`).

The file is in PyTorch's layout (OIHW kernels, [out, in] linear weight), so this module tree holds
every tensor under its file name and shape and loads it unchanged, strictly
(sdd_torch.nn.load_weights: one line naming a missing or unused tensor). Inference only: BatchNorm
with running statistics, computed as TS does (x scale + (b - mean scale), scale = w / sqrt(var + eps)),
no dropout. Inputs NHWC in [-1, 1] at the boundary, as arcface.ts's irSe50 / idEmbed; `embed` takes
[0, 1] images, as the World's identity model (src/world/sd_parts.ts arcfaceOf).
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdd_torch.models.stylegan2 import seeded
from sdd_torch.nn import load_weights, nchw
from sdd_torch.safetensors_np import load

BN_EPS = 1e-5
# Units per stage and their widths; the first unit of each stage has stride 2 (arcface.ts IrStages).
IrStages = Sequence[Tuple[int, int]]
IR_SE50_STAGES: IrStages = ((3, 64), (4, 128), (14, 256), (3, 512))
EMBEDDING = 512
FACE = 112
# e4e / StyleCLIP IDLoss.extract_feats: pool to 256^2, crop [35:223, 32:220], pool to 112^2.
ID_SIZE = 256
CROP_TOP, CROP_LEFT, CROP = 35, 32, 188


class BatchNorm(nn.Module):
    """arcface.ts batchNorm over the channel axis (dim 1), running statistics only."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * torch.rsqrt(self.running_var + BN_EPS)
        shift = self.bias - self.running_mean * scale
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * scale.reshape(shape) + shift.reshape(shape)


class Conv(nn.Module):
    """Conv without bias, PyTorch padding (k - 1) / 2 on both sides at any stride (arcface.ts conv)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin, k, k))
        self.stride = stride
        self.pad = (k - 1) >> 1

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, stride=self.stride, padding=self.pad)


class PRelu(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((c,), 0.25))

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.weight)


class Linear(nn.Module):
    """arcface.ts torchLinear: PyTorch's [out, in] weight and a bias."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)


class SqueezeExcite(nn.Module):
    """Channel gates from the global average, through a 16x bottleneck (1x1 convs without bias)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1 = Conv(c, c // 16, 1, 1)
        self.fc2 = Conv(c // 16, c, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


class _Seq(nn.Module):
    """A container whose children are named 0, 1, ... as the reference's nn.Sequential (file names)."""

    def __init__(self, parts: List[Optional[nn.Module]]) -> None:
        super().__init__()
        for i, m in enumerate(parts):
            if m is not None:
                self.add_module(str(i), m)

    def at(self, i: int) -> nn.Module:
        m: nn.Module = getattr(self, str(i))
        return m


class IrUnit(nn.Module):
    """bottleneck_IR_SE: BN, 3x3 conv, PReLU, 3x3 conv (stride), BN, SE; plus the shortcut:
    MaxPool2d(1, stride) (plain subsampling) at equal width, else a strided 1x1 conv + BN."""

    def __init__(self, cin: int, depth: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.shortcut_layer: Optional[_Seq] = (
            None if cin == depth else _Seq([Conv(cin, depth, 1, stride), BatchNorm(depth)])
        )
        self.res_layer = _Seq(
            [
                BatchNorm(cin),
                Conv(cin, depth, 3, 1),
                PRelu(depth),
                Conv(depth, depth, 3, stride),
                BatchNorm(depth),
                SqueezeExcite(depth),
            ]
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.shortcut_layer is None:
            shortcut = x[:, :, :: self.stride, :: self.stride]
        else:
            shortcut = self.shortcut_layer.at(1)(self.shortcut_layer.at(0)(x))
        r = x
        for i in range(6):
            r = self.res_layer.at(i)(r)
        return r + shortcut


class IrSe50(nn.Module):
    """Backbone(50, 0.6, 'ir_se') under the file's names; `stages` other than IR-50's make a
    narrower network of the same units (paper-random-tiny's stand-in)."""

    def __init__(self, stages: IrStages = IR_SE50_STAGES) -> None:
        super().__init__()
        self.stages = [(int(u), int(d)) for u, d in stages]
        first = self.stages[0][1]
        self.input_layer = _Seq([Conv(3, first, 3, 1), BatchNorm(first), PRelu(first)])
        units: List[nn.Module] = []
        cin = first
        for n, depth in self.stages:
            for u in range(n):
                units.append(IrUnit(cin, depth, 2 if u == 0 else 1))
                cin = depth
        self.body = nn.ModuleList(units)
        side = FACE >> len(self.stages)
        # output_layer: BN2d, Dropout, Flatten, Linear, BN1d (indices 1 and 2 hold no tensors).
        self.output_layer = _Seq(
            [BatchNorm(cin), None, None, Linear(cin * side * side, EMBEDDING), BatchNorm(EMBEDDING)]
        )

    def forward_nchw(self, faces: Tensor) -> Tensor:
        """faces NCHW [B, 3, 112, 112] in [-1, 1] -> unit embeddings [B, 512]."""
        x = faces
        for i in range(3):
            x = self.input_layer.at(i)(x)
        for u in self.body:
            x = u(x)
        x = self.output_layer.at(0)(x)
        # PyTorch flattens NCHW channel-major: the linear layer's columns are in that order.
        e = self.output_layer.at(4)(self.output_layer.at(3)(x.flatten(1)))
        return e / e.norm(dim=1, keepdim=True)

    def forward(self, faces: Tensor) -> Tensor:
        """arcface.ts irSe50: faces NHWC [B, 112, 112, 3] in [-1, 1] -> unit embeddings [B, 512]."""
        return self.forward_nchw(nchw(faces))

    def id_embed(self, images: Tensor) -> Tensor:
        """arcface.ts idEmbed: the ID loss's embedding of generator images NHWC [B, S, S, 3] in
        [-1, 1]: AdaptiveAvgPool2d to 256^2 (unless already 256^2), the face crop, AdaptiveAvgPool2d
        to 112^2 (PyTorch's adaptive bins: TS builds the same bins as matrices)."""
        x = nchw(images)
        if x.shape[2] != ID_SIZE or x.shape[3] != ID_SIZE:
            x = F.adaptive_avg_pool2d(x, ID_SIZE)
        face = x[:, :, CROP_TOP : CROP_TOP + CROP, CROP_LEFT : CROP_LEFT + CROP]
        return self.forward_nchw(F.adaptive_avg_pool2d(face, FACE))

    def embed(self, x: Tensor) -> Tensor:
        """The World's identity embedding (sd_parts.ts arcfaceOf): NHWC images in [0, 1]."""
        return self.id_embed(x * 2 - 1)


def from_tensors(tensors: Dict[str, np.ndarray], source: str, stages: IrStages = IR_SE50_STAGES) -> IrSe50:
    """IR-SE50 (or the narrower `stages`) from a converted file's tensors, loaded strictly; eval mode, frozen."""
    net = IrSe50(stages)
    load_weights(net, tensors, source)
    return net


def _ts_init(net: IrSe50) -> Callable[[str], Tuple[str, float]]:
    """arcface.ts's initialisers: convolutions N(0, 2 / (k^2 c_in)) (He), the linear layer
    N(0, 1 / c_in), BatchNorm the identity (scale 1, shift 0, mean 0, var 1), PReLU slopes 1."""
    shapes = {name: tuple(t.shape) for name, t in net.named_parameters()}

    def init(name: str) -> Tuple[str, float]:
        shape = shapes.get(name, ())
        if len(shape) >= 2:
            return ("normal", math.sqrt((2.0 if len(shape) == 4 else 1.0) / math.prod(shape[1:])))
        if name.endswith("running_var") or name.endswith(".weight"):
            return ("const", 1.0)
        return ("const", 0.0)

    return init


def random_ir_se50(seed: int, stages: IrStages = IR_SE50_STAGES, device: torch.device = torch.device("cpu")) -> IrSe50:
    """arcface.ts randomIrSe50: IR-SE50 (or the narrower `stages`) with seeded random weights."""
    net = IrSe50(stages)
    seeded(net, seed, _ts_init(net))
    return net.to(device)


def load_ir_se50(
    path: str,
    sha256: Optional[str] = None,
    stages: IrStages = IR_SE50_STAGES,
    device: torch.device = torch.device("cpu"),
) -> IrSe50:
    """arcface.ts loadIrSe50: a file written by tools/convert_ir_se50.py (its sha256 checked when given)."""
    return from_tensors(load(path, sha256=sha256), path, stages).to(device)
