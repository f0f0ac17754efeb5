#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_safetensors into tests/fuzz/corpus_safetensors:
small valid files (every dtype, metadata, escapes, a zero-size tensor, a
tiny tokenizer in BF16, a tiny dynamics model in F16, both in one file) and
the shipped model's header over truncated data.  Deterministic; rerun after
a format change.  Usage: tests/fuzz/mkcorpus_safetensors.py"""
import json
import os
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, "corpus_safetensors")
SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
         "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def pack(tensors, meta=None):
    """tensors: [(name, dtype, shape)]; data is a counting byte pattern."""
    header, blobs, at = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name, dtype, shape in tensors:
        n = numel(shape) * SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [at, at + n]}
        # small values in every float format: low bytes vary, high bytes near 0x3c/0x3f
        blobs.append(bytes((i * 7 + 1) % 64 if i % 2 == 0 else 0x3c for i in range(n)))
        at += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def tokenizer(dtype, C=4, hidden=8):
    t = []
    for name, cout, cin in (("enc.in", hidden, 48), ("enc.out", C, hidden), ("dec.in", hidden, C),
                            ("dec.out", 48, hidden)):
        t += [(f"tokenizer.{name}.weight", dtype, (cout, 3, 3, cin)), (f"tokenizer.{name}.bias", dtype, (cout,))]
    meta = {"tokenizer.arch": "conv-ae-s2d4-v1", "tokenizer.latent_channels": str(C),
            "tokenizer.hidden": str(hidden), "tokenizer.blocks": "0"}
    return t, meta


def dynamics(dtype, C=4, hidden=4):
    t = []
    for n, (o, i) in {"gru0.x": (3 * hidden, 2 * C), "gru0.h": (3 * hidden, hidden), "gru1.x": (3 * hidden, hidden),
                      "gru1.h": (3 * hidden, hidden), "head": (2 * C, hidden)}.items():
        t += [(f"dynamics.{n}.weight", dtype, (o, 3, 3, i)), (f"dynamics.{n}.bias", dtype, (o,))]
    t += [("dynamics.norm.mean", dtype, (C,)), ("dynamics.norm.std", dtype, (C,))]
    meta = {"dynamics.arch": "convgru2-gauss-v2", "dynamics.latent_channels": str(C), "dynamics.hidden": str(hidden),
            "dynamics.dilation": "1", "dynamics.logvar_min": "-10"}
    return t, meta


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "empty.st": pack([]),
        "dtypes.st": pack([(f"t_{d.lower()}", d, (2, 3)) for d in SIZES] + [("scalar", "F32", ()), ("none", "F16", (0, 4))],
                          {"format": "pt", "note": "caf\u00e9 \"quoted\" \\ \n"}),
        "escapes.st": pack([("a\u00e9\U0001f600\t\"b", "F32", (1,))]),
    }
    tk, tk_meta = tokenizer("BF16")
    dy, dy_meta = dynamics("F16")
    seeds["tokenizer.st"] = pack(tk, tk_meta)
    seeds["dynamics.st"] = pack(dy, dy_meta)
    seeds["model.st"] = pack(tk + dy, {**tk_meta, **dy_meta})
    shipped = os.path.join(ROOT, "..", "..", "models", "wm-default.safetensors")
    if os.path.exists(shipped):
        with open(shipped, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            f.seek(0)
            seeds["shipped_truncated.st"] = f.read(8 + n + 256)
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
