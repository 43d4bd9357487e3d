"""Minimal numpy/pickle-free stub of `safetensors` implementing the real file format
(8-byte LE header length + JSON header + raw little-endian tensor bytes)."""
__version__ = "0.4.5"
import json, struct
import numpy as np


class SafetensorError(Exception):
    pass


_DT = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def _read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    return header, data


class safe_open:
    def __init__(self, filename, framework="pt", device="cpu"):
        self._header, self._data = _read(filename)
        self._meta = self._header.pop("__metadata__", None)
        self._framework, self._device = framework, device

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def keys(self):
        return list(self._header.keys())

    def metadata(self):
        return self._meta

    def get_tensor(self, name):
        info = self._header[name]
        s, e = info["data_offsets"]
        dt = info["dtype"]
        if dt == "BF16":
            raw = np.frombuffer(self._data[s:e], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32).reshape(info["shape"])
            if self._framework == "pt":
                import torch as _pt

                return _pt.from_numpy(arr.copy()).to(_pt.bfloat16).to(self._device)
            return arr
        arr = np.frombuffer(self._data[s:e], dtype=_DT[dt]).reshape(info["shape"]).copy()
        if self._framework == "pt":
            import torch as _pt

            return _pt.from_numpy(arr).to(self._device)
        return arr

    def get_slice(self, name):
        return self.get_tensor(name)


from . import torch  # noqa: E402  (diffusers accesses safetensors.torch as attribute)

__all__ = ["SafetensorError", "safe_open", "torch"]
