"""safetensors read/write for the tools, in numpy (the safetensors package is not in Debian).

The format: an 8-byte little-endian header length, a JSON header {name: {dtype, shape,
data_offsets}}, then the raw little-endian data. Tensors are laid out in name order.
"""
import json
import os
import struct

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "U8": np.uint8}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


def save(path, tensors, metadata=None):
    """Writes {name: numpy array} atomically (a temporary file renamed over the target)."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        # not ascontiguousarray: it turns a 0-d array (CLIP's logit_scale) into shape [1]
        a = a if a.flags.c_contiguous else a.copy(order="C")
        if a.dtype not in _NAMES:
            raise ValueError(f"{name}: dtype {a.dtype} not supported")
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text.encode())))
        f.write(text.encode())
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load(path):
    """{name: numpy array} of a file (F32, F16, I64, I32, U8)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], dtype=np.dtype(_DTYPES[e["dtype"]]).newbyteorder("<")).reshape(
            e["shape"]
        )
    return out


def converter_main(doc, convert):
    """The command line every converter shares: SRC DST, then one summary line."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    a = ap.parse_args()
    keep = convert(a.src, a.dst)
    print(f"{a.dst}: {len(keep)} tensors, {sum(int(np.prod(v.shape)) for v in keep.values())} values")
