"""Bit-exact port of src/util/rng.ts: sfc32 seeded through splitmix32 (12 warm-up draws), and its
Box–Muller normal(). The harness draws every contract noise stream with it
(parseInt(sha256("<seed>:contract:<name>")[0:8], 16)), so a twin can re-draw a stream and check it
against the file. Every value is a float64 exactly as V8 computes it (t / 2**32); normal() uses
math.log/sqrt/cos in float64 in the TS order of operations, and the TS callers cast to float32.
"""
import hashlib
import math
from typing import List, MutableSequence, Sequence, TypeVar

import numpy as np

T = TypeVar("T")
_M32 = 0xFFFFFFFF
_TWO_PI = 2 * math.pi  # JS evaluates 2 * Math.PI * x left to right: (2π) · x
_SCALE = 4294967296.0


def _splitmix32(seed: int) -> List[int]:
    """The four sfc32 words of Rng's constructor (Math.imul / >>> 0 arithmetic, mod 2**32)."""
    s = seed & _M32
    words = []
    for _ in range(4):
        s = (s + 0x9E3779B9) & _M32
        z = s
        z = ((z ^ (z >> 16)) * 0x85EBCA6B) & _M32
        z = ((z ^ (z >> 13)) * 0xC2B2AE35) & _M32
        words.append((z ^ (z >> 16)) & _M32)
    return words


class Rng:
    """sfc32 as src/util/rng.ts: the same seed gives the same stream as `new Rng(seed)`."""

    def __init__(self, seed: int) -> None:
        self.a, self.b, self.c, self.d = _splitmix32(int(seed))
        for _ in range(12):
            self.next()

    def next(self) -> float:
        """Uniform in [0, 1): a uint32 / 2**32, exact in float64 as in JS."""
        a, b, c, d = self.a, self.b, self.c, self.d
        t = (a + b + d) & _M32
        self.d = (d + 1) & _M32
        self.a = b ^ (b >> 9)
        self.b = (c + (c << 3)) & _M32
        c = ((c << 21) & _M32) | (c >> 11)
        self.c = (c + t) & _M32
        return t / _SCALE

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.next()

    def int(self, n: int) -> int:
        return math.floor(self.next() * n)

    def pick(self, xs: Sequence[T]) -> T:
        return xs[self.int(len(xs))]

    def normal(self) -> float:
        """Standard normal (Box–Muller), the TS expression term for term."""
        u = 1 - self.next()
        return math.sqrt(-2 * math.log(u)) * math.cos(_TWO_PI * self.next())

    def shuffle(self, xs: MutableSequence[T]) -> MutableSequence[T]:
        for i in range(len(xs) - 1, 0, -1):
            j = self.int(i + 1)
            xs[i], xs[j] = xs[j], xs[i]
        return xs


def stream_rng(seed: int, name: str) -> Rng:
    """streamRng of rng.ts: an independent stream per purpose under one run seed."""
    return Rng(int(hashlib.sha256(f"{seed}:{name}".encode("utf-8")).hexdigest()[:8], 16))


def contract_seed(seed: int, name: str) -> int:
    """rng_seed of the contract's noise stream `name` (src/methods/contract_in.ts)."""
    return int(hashlib.sha256(f"{seed}:contract:{name}".encode("utf-8")).hexdigest()[:8], 16)


def normals(rng: Rng, count: int) -> np.ndarray:
    """`Float32Array.from({length: count}, () => rng.normal())`: float32 [count], rng advanced.

    sfc32 is sequential, so this is one tight loop with the state in locals (the method calls of
    next()/normal() would cost about twice as much); the float64 values are cast to float32 once.
    """
    a, b, c, d = rng.a, rng.b, rng.c, rng.d
    out = [0.0] * count
    log, sqrt, cos, m32, two_pi, scale = math.log, math.sqrt, math.cos, _M32, _TWO_PI, _SCALE
    for i in range(count):
        t = (a + b + d) & m32
        d = (d + 1) & m32
        a = b ^ (b >> 9)
        b = (c + (c << 3)) & m32
        c = ((((c << 21) & m32) | (c >> 11)) + t) & m32
        u = 1 - t / scale
        t = (a + b + d) & m32
        d = (d + 1) & m32
        a = b ^ (b >> 9)
        b = (c + (c << 3)) & m32
        c = ((((c << 21) & m32) | (c >> 11)) + t) & m32
        out[i] = sqrt(-2 * log(u)) * cos(two_pi * (t / scale))
    rng.a, rng.b, rng.c, rng.d = a, b, c, d
    return np.array(out, dtype=np.float64).astype(np.float32)
