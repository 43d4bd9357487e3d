"""What the torch engine sets up around a run: the device (engine.device; CUDA_VISIBLE_DEVICES
chooses which GPUs torch sees at all), the precision switches, the seed, peak memory accounting,
and the facts env.json records.
"""
import os
import sys
from typing import Any, Dict, Optional

import numpy as np
import torch


class RuntimeFailure(Exception):
    """The engine cannot run as the manifest asks (one line)."""


def resolve_device(spec: str) -> torch.device:
    """auto: the first visible GPU when torch sees one, else the CPU; cpu; cuda (or cuda:N)."""
    if spec == "auto":
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            seen = f", CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
            raise RuntimeFailure(
                f"device: engine.device is {spec} but torch {torch.__version__} sees no CUDA device "
                f"(built for CUDA {torch.version.cuda}{seen})"
            )
        device = torch.device("cuda:0" if spec == "cuda" else spec)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeFailure(
                f"device: engine.device is {spec} but torch sees {torch.cuda.device_count()} CUDA device(s)"
            )
        return device
    raise RuntimeFailure(f"engine.device: {spec!r}, expected auto, cpu or cuda")


def apply_precision(precision: str) -> Dict[str, bool]:
    """TF32 matmuls and convolutions on for tf32, off otherwise: fp32 is strict fp32, and under
    fp16 (autocast is the methods' own) what runs outside autocast stays strict fp32 too."""
    on = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on
    return {"tf32_matmul": on, "tf32_cudnn": on}


def prepare(device: torch.device, precision: str, seed: int) -> None:
    """Before a run: precision switches, torch's seed (CPU and every GPU), fresh peak counters."""
    apply_precision(precision)
    torch.manual_seed(seed)
    reset_peak(device)


# ---------------------------------------------------------------- peak memory

_rss_reset = False


def reset_peak(device: torch.device) -> None:
    """Starts a run's peak memory count: the CUDA allocator's peak, and on Linux the process's
    resident high-water mark (VmHWM, reset through /proc/self/clear_refs), so a worker reports
    each run's own peak rather than the largest of all its runs."""
    global _rss_reset
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _rss_reset = True
    except OSError:
        _rss_reset = False


def peak_rss_bytes() -> Optional[int]:
    """The process's peak resident size in bytes: VmHWM since reset_peak, else ru_maxrss; None if unknown."""
    if _rss_reset:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss) if sys.platform == "darwin" else int(rss) * 1024  # bytes on macOS, KiB on Linux


# ---------------------------------------------------------------- env.json


def device_name(device: torch.device) -> str:
    """cpu, or cuda:0 NVIDIA H200."""
    if device.type != "cuda":
        return "cpu"
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} {torch.cuda.get_device_name(index)}"


def environment(device: torch.device, precision: str) -> Dict[str, Any]:
    """env.json: the interpreter, versions, threads, device and precision, and the TF32 switches
    as they are set (plain values: the harness keeps them with the result)."""
    cuda = device.type == "cuda"
    return {
        "interpreter": sys.executable,
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__},
        "threads": torch.get_num_threads(),
        "device": device_name(device),
        "precision": precision,
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "gpu": torch.cuda.get_device_name(device) if cuda else None,
        "cuda": torch.version.cuda if cuda else None,
    }
