"""The run-folder method contract (docs/method-contract.md, `contract: 1`) as a torch twin sees it:
RunContext reads contract/in/ (manifest, arrays, noise streams) and writes contract/out/, every file
whole (a temporary name in the same folder, fsync, os.replace), metrics.jsonl in whole lines only.
It also watches the harness: once it is gone, the next progress, metric or write raises Stopped, so
an orphan never writes into a run that is being resumed.
"""
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

CONTRACT = 1
PRECISIONS = ("fp32", "tf32", "fp16")
INPUTS = ("sources", "source_codes", "train", "train_codes")
_STATE = "state.json"


class ContractError(Exception):
    """A contract input or output that is not as the manifest says (one line)."""


class NonFinite(Exception):
    """A NaN or ±Inf in a metric or an output: the run fails as non-finite."""


class Stopped(Exception):
    """The harness is gone (parent changed or SDD_PARENT_PID dead): stop without writing."""


# ---------------------------------------------------------------- whole files


def write_atomic(path: Union[str, Path], data: bytes) -> None:
    """Temp file in the same folder + fsync + rename: a reader sees the old file or the new one."""
    path = str(path)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def json_bytes(value: Any) -> bytes:
    """Strict JSON (NaN and ±Inf refused: they are not JSON and the harness would reject them)."""
    return (json.dumps(value, indent=1, allow_nan=False) + "\n").encode("utf-8")


def npy_bytes(x: np.ndarray) -> bytes:
    """A .npy version 1 image of x as little-endian C-order float32 (what the contract reads)."""
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(x, dtype="<f4"), allow_pickle=False)
    return buf.getvalue()


def as_numpy(x: Any) -> np.ndarray:
    """A numpy array of an array or a torch tensor (any device), without torch imported here."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def write_inputs(root: Union[str, Path], manifest: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> Path:
    """What the harness writes (tests): contract/in/<file> for each array, then manifest.json last."""
    inp = Path(root) / "in"
    inp.mkdir(parents=True, exist_ok=True)
    (Path(root) / "out").mkdir(exist_ok=True)
    for name, x in arrays.items():
        write_atomic(inp / name, npy_bytes(x))
    write_atomic(inp / "manifest.json", json_bytes(manifest))
    return Path(root)


def _shape(x: Any) -> str:
    return "[" + ", ".join(str(int(d)) for d in x) + "]"


def _first_nonfinite(x: np.ndarray) -> Tuple[int, int]:
    """How many values are NaN or ±Inf, and the first image (leading index) holding one."""
    if x.size == 0:
        return 0, -1
    bad = ~np.isfinite(x.reshape(len(x), -1))
    count = int(bad.sum())
    return count, int(np.argmax(bad.any(axis=1))) if count else -1


def parent_pid_env() -> Optional[int]:
    raw = os.environ.get("SDD_PARENT_PID", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process of that pid: it exists
        return True
    return True


# ---------------------------------------------------------------- the run


class RunContext:
    """One run of a torch twin: its manifest, inputs and outputs (python-api.md, CORE)."""

    def __init__(self, contract_dir: Union[str, Path], device: Any = None) -> None:
        root = Path(contract_dir)
        self.in_dir = root / "in"
        self.out_dir = root / "out"
        self.manifest: Dict[str, Any] = self._manifest()
        self.engine: Dict[str, Any] = self.manifest["engine"]
        self.params: Dict[str, Any] = self.manifest["params"]
        self.plan: Dict[str, Any] = self.engine.get("plan") or {}
        self.tokens: Dict[str, Any] = self.engine.get("tokens") or {}
        self.method: str = str(self.manifest["method"])
        self.seed: int = int(self.manifest["seed"])
        self.run_id: str = str(self.manifest["run_id"])
        self.precision: str = self.engine.get("precision", "")
        if self.precision not in PRECISIONS:
            raise ContractError(
                f"manifest.json: engine.precision {self.precision!r}, expected one of {', '.join(PRECISIONS)}"
            )
        if device is None:
            from . import runtime

            device = runtime.resolve_device(str(self.engine.get("device", "")))
        self.device: Any = device
        # Plain values a twin adds to env.json (written by the runner after run(ctx) returns).
        self.env_extra: Dict[str, Any] = {}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._parent = os.getppid()
        self._parent_env = parent_pid_env()
        self._world: Any = None

    def _manifest(self) -> Dict[str, Any]:
        path = self.in_dir / "manifest.json"
        if not path.is_file():
            raise ContractError(f"{path}: missing (is {self.in_dir.parent} a run's contract folder?)")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise ContractError(f"{path}: not JSON ({str(e).splitlines()[0]})") from None
        if not isinstance(manifest, dict):
            raise ContractError(f"{path}: not a JSON object")
        if manifest.get("contract") != CONTRACT:
            raise ContractError(
                f"manifest.json: contract {manifest.get('contract')!r}, the torch engine speaks {CONTRACT}"
            )
        engine = manifest.get("engine")
        if not isinstance(engine, dict) or engine.get("name") != "torch":
            raise ContractError(
                f"manifest.json: engine {json.dumps(engine)[:60]}, expected an engine block with name \"torch\""
            )
        for key in ("method", "seed", "run_id", "params", "inputs", "outputs"):
            if key not in manifest:
                raise ContractError(f"manifest.json: no {key}")
        return manifest

    # ------------------------------------------------------------ the harness

    def check_parent(self) -> None:
        """Raises Stopped when the harness is gone: our parent changed (we were re-parented) or
        SDD_PARENT_PID names no process any more."""
        if os.getppid() != self._parent:
            raise Stopped(f"the harness is gone (parent {self._parent} exited)")
        if self._parent_env is not None and not pid_alive(self._parent_env):
            raise Stopped(f"the harness is gone (SDD_PARENT_PID {self._parent_env} exited)")

    def progress(self, done: int, total: int, label: str = "") -> None:
        self.write_json("progress.json", {"done": int(done), "total": int(total), "label": str(label)})

    def metric(self, step: int, **scalars: Any) -> None:
        """One whole line {"step": step, name: value, ...} appended to metrics.jsonl (values: floats,
        numpy scalars or 0-d tensors)."""
        values: Dict[str, float] = {}
        for name, v in scalars.items():
            value = float(v)
            if not math.isfinite(value):
                raise NonFinite(f"metric {name} = {value} at step {step}")
            values[name] = value
        self.check_parent()
        line = (json.dumps({"step": int(step), **values}, allow_nan=False) + "\n").encode("utf-8")
        # One write of a whole line in append mode: a kill leaves at worst a last line without its
        # newline, which the harness does not read (and cuts before the next attempt).
        with open(self.out_dir / "metrics.jsonl", "ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    # ------------------------------------------------------------ inputs

    def _array(self, ref: Dict[str, Any], what: str) -> np.ndarray:
        path = self.in_dir / ref["file"]
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ContractError(f"contract/in/{ref['file']}: cannot read ({str(e).splitlines()[0]})") from None
        if x.dtype != np.float32 or list(x.shape) != list(ref["shape"]):
            raise ContractError(
                f"contract/in/{ref['file']}: {x.dtype} {_shape(x.shape)}, "
                f"the manifest's {what} is float32 {_shape(ref['shape'])}"
            )
        return x

    def input(self, key: str) -> Optional[np.ndarray]:
        """sources | source_codes | train | train_codes (float32, the manifest's shape), or None."""
        if key not in INPUTS:
            raise ContractError(f"input {key!r}: expected one of {', '.join(INPUTS)}")
        ref = self.manifest["inputs"].get(key)
        return None if ref is None else self._array(ref, f"inputs.{key}")

    def noise(self, name: str) -> np.ndarray:
        """The harness's noise stream `name` (contract/in/noise_<name>.npy)."""
        refs = self.manifest["inputs"].get("noise") or {}
        if name not in refs:
            raise ContractError(
                f"noise stream {name!r} is not in the manifest (it has: {', '.join(sorted(refs)) or 'none'}): "
                "the method's TS twin must ask for it in inputs()"
            )
        return self._array(refs[name], f"inputs.noise.{name}")

    # ------------------------------------------------------------ outputs

    def write_file(self, name: str, data: bytes) -> None:
        """contract/out/<name>, whole; refused once the harness is gone."""
        self.check_parent()
        write_atomic(self.out_dir / name, data)

    def write_json(self, name: str, value: Any) -> None:
        try:
            data = json_bytes(value)
        except ValueError as e:
            raise NonFinite(f"contract/out/{name}: {e}") from None
        self.write_file(name, data)

    def _write_images(self, key: str, images: Any) -> None:
        ref = self.manifest["outputs"].get(key)
        if ref is None:
            raise ContractError(f"{key}: the manifest asks for no {key} (outputs.{key} is null)")
        x = as_numpy(images).astype(np.float32, copy=False)
        if list(x.shape) != list(ref["shape"]):
            raise ContractError(f"{key}: shape {_shape(x.shape)}, the manifest expects {_shape(ref['shape'])}")
        count, first = _first_nonfinite(x)
        if count:
            raise NonFinite(f"{key}: {count} non-finite values (the first in image {first})")
        self.write_file(ref["file"], npy_bytes(x))

    def write_edited(self, images: Any) -> None:
        """The edits [m, H, W, 3] float32 NHWC, in the order of the sources."""
        self._write_images("edited", images)

    def write_originals(self, images: Any) -> None:
        """G(w) of the source codes (a world of codes only)."""
        self._write_images("originals", images)

    def write_timing(self, tau_train_s: float, tau_infer_s: float, **extra: Any) -> None:
        """timing.json: τ_train (s), τ_infer (s per image), the peak memory, whether synchronised."""
        for name, v in (("tau_train_s", tau_train_s), ("tau_infer_s", tau_infer_s)):
            if not math.isfinite(float(v)) or float(v) < 0:
                raise ContractError(f"timing: {name} = {v}, expected a finite number >= 0")
        self.write_json(
            "timing.json",
            {
                "tau_train_s": float(tau_train_s),
                "tau_infer_s": float(tau_infer_s),
                "peak_memory_bytes": self.peak_memory_bytes(),
                "synchronized": self.on_cuda(),
                **extra,
            },
        )

    # ------------------------------------------------------------ checkpoints

    def load_checkpoint(self) -> Optional[Tuple[int, Dict[str, np.ndarray], Dict[str, Any]]]:
        """(step, tensors, state) of out/checkpoint/, or None when there is none."""
        ck = self.out_dir / "checkpoint"
        path = ck / _STATE
        if not path.is_file():
            return None
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            step, name, state = int(saved["step"]), str(saved["tensors"]), saved.get("state", {})
        except (ValueError, KeyError, TypeError) as e:
            raise ContractError(f"contract/out/checkpoint/{_STATE}: unreadable ({e})") from None
        try:
            with np.load(ck / name, allow_pickle=False) as z:
                tensors = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise ContractError(
                f"contract/out/checkpoint/{name} (named by {_STATE}): {str(e).splitlines()[0]}"
            ) from None
        return step, tensors, state

    def save_checkpoint(self, step: int, tensors: Dict[str, Any], state: Dict[str, Any]) -> None:
        """The tensors in tensors-<step>.npz, then state.json {"step", "tensors", "state"} last (it
        vouches for them), then the older tensor files go: a kill at any point leaves a whole one."""
        ck = self.out_dir / "checkpoint"
        ck.mkdir(exist_ok=True)
        name = f"tensors-{int(step)}.npz"
        import io

        buf = io.BytesIO()
        np.savez(buf, **{k: as_numpy(v) for k, v in tensors.items()})
        self.write_file(f"checkpoint/{name}", buf.getvalue())
        self.write_json(f"checkpoint/{_STATE}", {"step": int(step), "tensors": name, "state": state})
        _fsync_dir(ck)
        for old in ck.glob("tensors-*.npz"):
            if old.name != name:
                old.unlink()

    # ------------------------------------------------------------ device

    def on_cuda(self) -> bool:
        return getattr(self.device, "type", str(self.device)) == "cuda"

    def sync(self) -> None:
        """Waits for the device's queued work (before reading a clock); nothing to wait for on a CPU."""
        if self.on_cuda():
            import torch

            torch.cuda.synchronize(self.device)

    def now(self) -> float:
        """The clock after a device synchronisation: time.perf_counter() closing a timed region."""
        self.sync()
        return time.perf_counter()

    def peak_memory_bytes(self) -> Optional[int]:
        """The device's peak allocation since the run began, or the process's peak resident size."""
        if self.on_cuda():
            import torch

            return int(torch.cuda.max_memory_allocated(self.device))
        from . import runtime

        return runtime.peak_rss_bytes()

    def world(self) -> Any:
        """sdd_torch.worlds.load(self), loaded once."""
        if self._world is None:
            import importlib

            self._world = importlib.import_module("sdd_torch.worlds").load(self)
        return self._world


def _fsync_dir(path: Path) -> None:
    """Makes the renames inside a folder durable (POSIX; a no-op where folders cannot be opened)."""
    if sys.platform.startswith("win"):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
