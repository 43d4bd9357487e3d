"""Twin of HostAdam (src/nn/adam.ts), the update SDD's and StyleCLIP's mapper training apply:

    m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  w ← w·(1 − lr·wd) − lr·m̂/(√v̂ + ε)

with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ) (AdamW's decoupled decay; wd = 0 is Adam). HostAdam computes
each element in float64 (JS numbers) from float32 weights, moments and gradients, and stores the
results back as float32; the new weight uses the float64 moments of this step, not their float32
copies (a JS assignment expression's value is its right-hand side). The same here, as float64
tensor ops on the parameters' device, so the port agrees to the last bit up to sqrt/div rounding.
"""
from typing import Dict, Mapping

import torch
from torch import Tensor


class HostAdam:
    def __init__(
        self, lr: float, weight_decay: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.eps = float(eps)
        self.step = 0
        self.m: Dict[str, Tensor] = {}
        self.v: Dict[str, Tensor] = {}

    @torch.no_grad()
    def apply(self, params: Mapping[str, Tensor], grads: Mapping[str, Tensor]) -> None:
        """One update of every parameter that has a gradient (in place)."""
        self.step += 1
        t = self.step
        b1, b2, eps, lr = self.beta1, self.beta2, self.eps, self.lr
        c1 = 1 - b1**t
        c2 = 1 - b2**t
        decay = 1 - lr * self.weight_decay
        for name, w in params.items():
            g0 = grads.get(name)
            if g0 is None:
                continue  # not on the loss path this step
            g = g0.detach().double()
            m = self.m.get(name)
            v = self.v.get(name)
            m64 = (m.double() * b1 if m is not None else torch.zeros_like(g)) + (1 - b1) * g
            v64 = (v.double() * b2 if v is not None else torch.zeros_like(g)) + (1 - b2) * g * g
            self.m[name] = m64.float()
            self.v[name] = v64.float()
            new = w.detach().double() * decay - (lr * (m64 / c1)) / (torch.sqrt(v64 / c2) + eps)
            w.copy_(new.float())

    def state(self) -> Dict[str, Tensor]:
        """The moments as checkpoint tensors m/<name>, v/<name> (distill.ts stateOf)."""
        out: Dict[str, Tensor] = {}
        for name in self.m:
            out[f"m/{name}"] = self.m[name]
            out[f"v/{name}"] = self.v[name]
        return out

    def restore(self, step: int, tensors: Mapping[str, Tensor]) -> None:
        """setState: the step count and whatever moments the checkpoint holds."""
        self.step = int(step)
        self.m = {k[2:]: v for k, v in tensors.items() if k.startswith("m/")}
        self.v = {k[2:]: v for k, v in tensors.items() if k.startswith("v/")}
