"""safetensors read (and written) with numpy only, as src/util/safetensors.ts reads them: an 8-byte
little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__"?},
then the raw little-endian data. Every bound is checked before data is touched, and the tensors'
byte ranges must tile the data buffer exactly (no overlap, gap or trailing bytes). Any problem is
one line naming the file (SafetensorsError). Float tensors (F32, F16, BF16) come back as float32,
integers as int64 / int32 / uint8.
"""
import hashlib
import json
import os
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

import numpy as np

_MAX_HEADER = 100 * 1024 * 1024
# dtype -> (bytes per element, numpy dtype of the stored data)
_DTYPES: Dict[str, Tuple[int, str]] = {
    "F32": (4, "<f4"),
    "F16": (2, "<f2"),
    "BF16": (2, "<u2"),
    "I64": (8, "<i8"),
    "I32": (4, "<i4"),
    "U8": (1, "u1"),
}
_NAMES: Dict[str, str] = {"float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32", "uint8": "U8"}


class SafetensorsError(Exception):
    """A bad, unreadable or unexpected weights file: one line, starting with the file."""


class Entry(NamedTuple):
    name: str
    dtype: str
    shape: Tuple[int, ...]
    begin: int
    end: int


class Header(NamedTuple):
    entries: Dict[str, Entry]
    metadata: Dict[str, str]
    data_start: int


def _show(name: str) -> str:
    cut = name if len(name) <= 60 else name[:57] + "..."
    return cut if all(0x21 <= ord(ch) <= 0x7E for ch in cut) and cut else json.dumps(cut)


def _no_duplicates(pairs: List[Tuple[str, object]]) -> Dict[str, object]:
    seen: Dict[str, object] = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"{_show(k)}: key appears twice in the header")
        seen[k] = v
    return seen


def _entry(name: str, raw: object, fail: "_Fail") -> Entry:
    n = _show(name)
    if not isinstance(raw, dict):
        raise fail(f"{n}: expected {{dtype, shape, data_offsets}}, got {json.dumps(raw)[:40]}")
    dtype, shape, off = raw.get("dtype"), raw.get("shape"), raw.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise fail(f"{n}: unsupported dtype {json.dumps(dtype)[:40]} (have {', '.join(_DTYPES)})")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise fail(f"{n}: bad shape {json.dumps(shape)[:40]}")
    if (
        not isinstance(off, list)
        or len(off) != 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in off)
    ):
        raise fail(f"{n}: bad data_offsets {json.dumps(off)[:40]}")
    begin, end = off
    if begin > end:
        raise fail(f"{n}: data_offsets [{begin}, {end}] end before they begin")
    want = int(np.prod(shape, dtype=np.int64)) * _DTYPES[dtype][0]
    if end - begin != want:
        raise fail(f"{n}: {end - begin} bytes for shape {shape} {dtype} (expected {want})")
    return Entry(name, dtype, tuple(shape), begin, end)


class _Fail:
    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, message: str) -> SafetensorsError:
        return SafetensorsError(f"{self.path}: {message}")


def _parse_header(text: bytes, data_len: int, fail: _Fail) -> Tuple[Dict[str, Entry], Dict[str, str]]:
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise fail(f"header is not valid JSON ({str(err).splitlines()[0][:80]})") from None
    if not isinstance(header, dict):
        raise fail("header is not a JSON object")
    entries: Dict[str, Entry] = {}
    metadata: Dict[str, str] = {}
    for name, raw in header.items():
        if name == "__metadata__":
            if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
                raise fail("__metadata__: expected an object of strings")
            metadata = dict(raw)
            continue
        e = _entry(name, raw, fail)
        if e.end > data_len:
            raise fail(
                f"{_show(name)}: data_offsets [{e.begin}, {e.end}] outside the {data_len}-byte buffer (truncated?)"
            )
        entries[name] = e
    at = 0
    for e in sorted(entries.values(), key=lambda e: (e.begin, e.end)):
        if e.begin < at:
            raise fail(
                f"{_show(e.name)}: data_offsets [{e.begin}, {e.end}] overlap the previous tensor's (ending at {at})"
            )
        if e.begin > at:
            raise fail(f"{_show(e.name)}: data_offsets [{e.begin}, {e.end}] leave a gap after byte {at}")
        at = e.end
    if at != data_len:
        raise fail(f"{data_len - at} trailing bytes after the last tensor (data ends at {at} of {data_len})")
    return entries, metadata


def read_header(path: str) -> Header:
    """The checked header of a file, without reading its data."""
    fail = _Fail(str(path))
    try:
        with open(path, "rb") as f:
            total = os.fstat(f.fileno()).st_size
            if total < 8:
                raise fail(f"truncated: {total} bytes, shorter than the 8-byte header length")
            hlen = int.from_bytes(f.read(8), "little")
            if hlen > _MAX_HEADER:
                raise fail(f"header length {hlen} exceeds {_MAX_HEADER} bytes (not a safetensors file?)")
            if 8 + hlen > total:
                raise fail(f"truncated: header needs {hlen} bytes, file has {total - 8}")
            entries, metadata = _parse_header(f.read(hlen), total - 8 - hlen, fail)
    except OSError as e:
        raise fail(_io_reason(e)) from None
    return Header(entries, metadata, 8 + hlen)


def _io_reason(e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        return "no such file"
    if isinstance(e, IsADirectoryError):
        return "is a folder, expected a .safetensors file"
    if isinstance(e, PermissionError):
        return "permission denied"
    return f"cannot read ({e.strerror or e})"


def _decode(raw: bytes, e: Entry) -> np.ndarray:
    stored = np.frombuffer(raw, dtype=_DTYPES[e.dtype][1])
    if e.dtype == "BF16":  # bfloat16 is the top half of a float32
        values = (stored.astype(np.uint32) << 16).view(np.float32)
    elif e.dtype in ("F32", "F16"):
        values = stored.astype(np.float32)
    else:
        values = stored.astype(np.dtype(_DTYPES[e.dtype][1]).newbyteorder("="))
    return values.reshape(e.shape)


def read(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Every tensor (float32 for float dtypes, native-order copies) and the metadata."""
    header = read_header(path)
    tensors: Dict[str, np.ndarray] = {}
    try:
        with open(path, "rb") as f:
            f.seek(header.data_start)
            data = f.read()
    except OSError as err:
        raise _Fail(str(path))(_io_reason(err)) from None
    for name, e in header.entries.items():
        tensors[name] = _decode(data[e.begin : e.end], e)
    return tensors, header.metadata


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def check_names(path: str, have: Iterable[str], expected: Iterable[str]) -> None:
    """Strict loading: the file holds exactly `expected`; else one line naming the first difference."""
    have_set, want = set(have), set(expected)
    missing, unexpected = sorted(want - have_set), sorted(have_set - want)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise SafetensorsError(f"{path}: missing tensor {_show(missing[0])}{more}")
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise SafetensorsError(f"{path}: unexpected tensor {_show(unexpected[0])}{more}")


def load(
    path: str, expected_names: Optional[Iterable[str]] = None, sha256: Optional[str] = None
) -> Dict[str, np.ndarray]:
    """The file's tensors; with `expected_names`, exactly those (strict), with `sha256`, that file."""
    if sha256 is not None:
        try:
            got = sha256_file(path)
        except OSError as e:
            raise _Fail(str(path))(_io_reason(e)) from None
        if got != sha256:
            raise SafetensorsError(
                f"{path}: sha256 {got[:12]}…, the manifest expects {sha256[:12]}… (weights changed since planning)"
            )
    tensors, _ = read(path)
    if expected_names is not None:
        check_names(str(path), tensors, expected_names)
    return tensors


def serialize(tensors: Dict[str, np.ndarray], metadata: Optional[Dict[str, str]] = None) -> bytes:
    """The layout of serializeSafetensors (keys sorted, data in key order, header padded to 8 bytes)."""
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    chunks: List[bytes] = []
    offset = 0
    for name in sorted(tensors):
        x = np.asarray(tensors[name])
        kind = _NAMES.get(x.dtype.name)
        if kind is None:
            raise SafetensorsError(f"{_show(name)}: cannot store dtype {x.dtype} (have {', '.join(_NAMES)})")
        data = np.ascontiguousarray(x, dtype=np.dtype(_DTYPES[kind][1])).tobytes()
        header[name] = {"dtype": kind, "shape": list(x.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def save(path: str, tensors: Dict[str, np.ndarray], metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes a file whole: temp file in the same folder, fsync, rename."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(serialize(tensors, metadata))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
