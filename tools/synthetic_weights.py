"""Deterministic stand-in weights that sdd-bench's tests recreate bit for bit in TypeScript
(test/synthetic_weights.ts), so a full-size reference model (Inception: 24 M parameters) can be
checked without committing its weights: only the inputs and the reference outputs are fixtures.

Element i of tensor `name` is murmur3's fmix32 of (i * 0x9E3779B1 + fnv1a32(name)) mod 2^32,
mapped to u in [0, 1) by / 2^32, then to a value by the tensor's rule (see `values`).
"""
import numpy as np

M32 = np.uint64(0xFFFFFFFF)


def fnv1a32(text):
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def uniform(name, n):
    """n floats in [0, 1), float64, from the tensor's name."""
    x = (np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B1) + np.uint64(fnv1a32(name))) & M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & M32
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & M32
    x ^= x >> np.uint64(16)
    return x.astype(np.float64) / 2.0**32


def values(name, shape, rule):
    """float32 array. rule: ('uniform', a) → U(-a, a); ('around', c, a) → c + U(-a, a)."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(name, n)
    if rule[0] == "uniform":
        v = (2 * u - 1) * rule[1]
    elif rule[0] == "around":
        v = rule[1] + (2 * u - 1) * rule[2]
    else:
        raise ValueError(rule)
    return v.astype(np.float32).reshape(shape)
