#!/usr/bin/env python3
"""An example editing method behind the method contract (docs/method-contract.md), Python + numpy.

Deliberately simple, but a whole method: it "trains" the mean training image (a running mean over
batches, with a training curve and checkpoints, so a killed run resumes), then edits each source
image x as

    x' = clip((1 - alpha) x + alpha mean + tint (c - colour(x)) + sigma noise, 0, 1)

where c is the RGB colour named by the prompt's target value (white hair: white) when it names one,
colour(x) is the image's mean colour, and the noise is the harness's `edit` stream. Every setting
comes from the manifest: the plugin keeps no defaults of its own.
"""
import json
import math
import os
import resource
import sys
import time
from typing import Any, Dict, NoReturn, Optional, Tuple

import numpy as np

CONTRACT = 1
COLOURS: Dict[str, Tuple[float, float, float]] = {
    "white": (0.95, 0.95, 0.95),
    "black": (0.05, 0.05, 0.05),
    "blonde": (0.93, 0.82, 0.45),
    "red": (0.75, 0.15, 0.1),
    "brown": (0.45, 0.3, 0.15),
}
SETTINGS = ("alpha", "tint", "sigma", "batch", "train_batch", "checkpoint_every")


class Contract:
    """The run's contract folder: reads contract/in, writes contract/out (every file whole)."""

    def __init__(self, root: str) -> None:
        self.inp = os.path.join(root, "in")
        self.out = os.path.join(root, "out")
        os.makedirs(os.path.join(self.out, "checkpoint"), exist_ok=True)
        with open(os.path.join(self.inp, "manifest.json"), encoding="utf-8") as f:
            self.manifest: Dict[str, Any] = json.load(f)
        if self.manifest["contract"] != CONTRACT:
            fail(f"manifest.json: contract {self.manifest['contract']}, this plugin speaks {CONTRACT}")
        self.parent = os.getppid()

    def array(self, ref: Dict[str, Any]) -> np.ndarray:
        x = np.load(os.path.join(self.inp, ref["file"]))
        assert list(x.shape) == ref["shape"] and x.dtype == np.float32, ref
        return x

    def write(self, name: str, data: bytes, where: Optional[str] = None) -> None:
        """Temp file + fsync + rename: the harness sees the old file or the new one, never half."""
        path = os.path.join(where or self.out, name)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def write_json(self, name: str, value: Any, where: Optional[str] = None) -> None:
        self.write(name, (json.dumps(value, indent=1) + "\n").encode(), where)

    def write_npy(self, name: str, x: np.ndarray, where: Optional[str] = None) -> None:
        path = os.path.join(where or self.out, name)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(x, dtype=np.float32))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def progress(self, done: int, total: int, label: str) -> None:
        # The harness dies with its run: an orphan stops instead of writing into a resumed run.
        if os.getppid() != self.parent:
            fail("the harness is gone")
        self.write_json("progress.json", {"done": done, "total": total, "label": label})

    def metric(self, step: int, **scalars: float) -> None:
        with open(os.path.join(self.out, "metrics.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")


def fail(message: str) -> NoReturn:
    print(f"blend plugin: {message}", file=sys.stderr)
    sys.exit(2)


def settings_of(manifest: Dict[str, Any]) -> Dict[str, float]:
    given = manifest["params"]["settings"]
    for key in SETTINGS:
        if not isinstance(given.get(key), (int, float)):
            fail(f"method.params.settings.{key}: missing or not a number (no defaults here)")
    return {k: float(given[k]) for k in SETTINGS}


def resume(c: Contract) -> Tuple[int, np.ndarray, int]:
    """The last checkpoint: (step, running sum, count). The harness has already cut metrics.jsonl
    back to the steps before it (checkpoint/state.json's step), so the curve is only appended to."""
    state = os.path.join(c.out, "checkpoint", "state.json")
    if not os.path.exists(state):
        return 0, np.zeros((0,), np.float64), 0
    with open(state, encoding="utf-8") as f:
        step = int(json.load(f)["step"])
    total = np.load(os.path.join(c.out, "checkpoint", "sum.npy")).astype(np.float64)
    count = int(np.load(os.path.join(c.out, "checkpoint", "count.npy"))[0])
    return step, total, count


def train(c: Contract, s: Dict[str, float], total_work: int) -> Tuple[np.ndarray, float]:
    """The mean training image as a running mean over batches; returns it and τ_train."""
    ref = c.manifest["inputs"]["train"]
    if ref is None:
        fail("needs training images (method.params.train_images > 0)")
    images = c.array(ref)
    b = int(s["train_batch"])
    steps = math.ceil(len(images) / b)
    step, total, count = resume(c)
    if step > 0:
        print(f"resuming from step {step}", flush=True)
    if count == 0:
        total = np.zeros(images.shape[1:], np.float64)
    t0 = time.perf_counter()  # on a GPU: torch.cuda.synchronize() before reading the clock
    for k in range(step, steps):
        previous = total / max(count, 1)
        batch = images[k * b : (k + 1) * b]
        total = total + batch.sum(axis=0)
        count += len(batch)
        mean = total / count
        c.metric(k, delta=float(np.abs(mean - previous).mean()), brightness=float(mean.mean()))
        if (k + 1) % int(s["checkpoint_every"]) == 0 or k + 1 == steps:
            ck = os.path.join(c.out, "checkpoint")
            c.write_npy("sum.npy", total, ck)
            c.write_npy("count.npy", np.array([count], np.float32), ck)
            c.write_json("state.json", {"step": k + 1}, ck)  # last: it vouches for the arrays
        c.progress(k + 1, total_work, "train")
    return (total / max(count, 1)).astype(np.float32), time.perf_counter() - t0


def edit(c: Contract, s: Dict[str, float], mean: np.ndarray, done: int, total_work: int) -> Tuple[np.ndarray, float]:
    """Edits the sources in batches; returns them and τ_infer (seconds per image)."""
    sources = c.array(c.manifest["inputs"]["sources"])
    m = len(sources)
    noise: Optional[np.ndarray] = None
    if s["sigma"] > 0:
        ref = c.manifest["inputs"]["noise"].get("edit")
        if ref is None or ref["shape"] != list(sources.shape):
            fail("sigma > 0 needs method.params.noise.edit of the sources' shape [m, H, W, 3]")
        noise = c.array(ref)
    target = COLOURS.get(c.manifest["prompt"]["target"])
    out = np.empty_like(sources)
    b = int(s["batch"])
    t0 = time.perf_counter()
    for i in range(0, m, b):
        x = sources[i : i + b]
        y = (1 - s["alpha"]) * x + s["alpha"] * mean
        if target is not None:
            y = y + s["tint"] * (np.asarray(target, np.float32) - x.mean(axis=(1, 2), keepdims=True))
        if noise is not None:
            y = y + s["sigma"] * noise[i : i + b]
        out[i : i + b] = np.clip(y, 0, 1)
        c.progress(done + min(i + b, m), total_work, "edit")
    return out, (time.perf_counter() - t0) / m


def environment() -> Dict[str, Any]:
    threads = os.environ.get("OMP_NUM_THREADS")
    return {
        "interpreter": sys.executable,
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__},
        "threads": int(threads) if threads else (os.cpu_count() or 1),
        "device": "cpu",
        "precision": "fp32",
    }


def main() -> None:
    c = Contract(os.environ["SDD_CONTRACT_DIR"])
    c.write_json("env.json", environment())
    s = settings_of(c.manifest)
    m = c.manifest["params"]["eval_images"]
    n = c.manifest["params"]["train_images"]
    total_work = math.ceil(n / int(s["train_batch"])) + m
    mean, tau_train = train(c, s, total_work)
    edited, tau_infer = edit(c, s, mean, total_work - m, total_work)
    c.write_npy("edited.npy", edited)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    timing: Dict[str, Any] = {
        "tau_train_s": tau_train,
        "tau_infer_s": tau_infer,
        "peak_memory_bytes": peak,
        "synchronized": False,
    }
    c.write_json("timing.json", timing)


if __name__ == "__main__":
    main()
