import json, struct, os, tempfile
import numpy as np
import torch as _torch
from . import safe_open, SafetensorError

__all__ = ["safe_open", "SafetensorError", "save", "save_file", "load_file", "load"]

_TO = {
    _torch.float64: "F64",
    _torch.float32: "F32",
    _torch.float16: "F16",
    _torch.bfloat16: "BF16",
    _torch.int64: "I64",
    _torch.int32: "I32",
    _torch.int16: "I16",
    _torch.int8: "I8",
    _torch.uint8: "U8",
    _torch.bool: "BOOL",
}


def _tobytes(t, name=None):
    t = t.detach().cpu().contiguous()
    if t.dtype == _torch.bfloat16:
        return (t.float().numpy().view(np.uint32) >> 16).astype("<u2").tobytes()
    return t.numpy().tobytes()


def save(tensors, metadata=None):
    header, chunks, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for k in sorted(tensors):
        t = tensors[k]
        b = _tobytes(t)
        header[k] = {"dtype": _TO[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(chunks)


def save_file(tensors, filename, metadata=None):
    with open(filename, "wb") as f:
        f.write(save(tensors, metadata))


def load_file(filename, device="cpu"):
    with safe_open(filename, framework="pt", device=str(device)) as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def load(data):
    fd, p = tempfile.mkstemp()
    os.write(fd, data)
    os.close(fd)
    try:
        return load_file(p)
    finally:
        os.unlink(p)
