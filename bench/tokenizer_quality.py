#!/usr/bin/python3
"""Reconstruction quality of the tokenizer against a per-patch PCA code of
the same latent size.

  bench/tokenizer_quality.py --model M --train S.wm [S.wm...] --test NAME=T.wm [...]

Each test stream goes through the real filters (wm-encode-latent |
wm-decode-frame) and is compared frame by frame with its input: PSNR over
all pixels of the set, 10 log10(255^2 / MSE).  The baseline codes every
4x4x3 patch by its first C principal components (C = the model's latent
channels, so both codes have H/4 x W/4 x C floats), fitted on the frames
of the --train streams.  Prints a markdown table.
"""
import argparse
import json
import os
import struct
import subprocess
import sys

import msgpack
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_frames(data):
    """Frames of a wm stream (bytes) as {(clip, index): HxWx3 uint8}."""
    out = {}
    up = msgpack.Unpacker(raw=False, max_buffer_size=1 << 31)
    up.feed(data)
    for m in up:
        if isinstance(m, dict) and m.get("kind") == "frame":
            img = np.frombuffer(m["data"], np.uint8).reshape(m["height"], m["width"], -1)
            if img.shape[2] == 1:
                img = np.repeat(img, 3, axis=2)
            out[(m["clip"], m["index"])] = img
    return out


def model_channels(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return int(header["__metadata__"]["tokenizer.latent_channels"])


def patches(frames):
    x = np.stack(frames).astype(np.float64) / 255.0
    N, H, W, _ = x.shape
    return x.reshape(N, H // 4, 4, W // 4, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(-1, 48), x.shape


def unpatch(p, shape):
    N, H, W, _ = shape
    return p.reshape(N, H // 4, W // 4, 4, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(shape)


def psnr(mse):
    return 10 * np.log10(1.0 / mse) if mse > 0 else 99.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin"))
    ap.add_argument("--train", nargs="+", required=True)
    ap.add_argument("--test", nargs="+", required=True, metavar="NAME=STREAM")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--pool", nargs="*", default=[], metavar="LABEL=NAME,NAME",
                    help="also a row for these test sets together (MSE over all their pixels)")
    a = ap.parse_args()
    C = model_channels(a.model)

    train = []
    for s in a.train:   # at most 2000 frames of each, evenly spread
        with open(s, "rb") as f:
            frames = [v for v in read_frames(f.read()).values() if v.shape[:2] == (64, 64)]
        train += frames[::max(1, len(frames) // 2000)]
    rng = np.random.default_rng(0)
    tp, _ = patches(train)
    tp = tp[rng.choice(len(tp), size=min(len(tp), 400000), replace=False)]
    mean = tp.mean(0)
    _, _, vt = np.linalg.svd(tp - mean, full_matrices=False)
    basis = vt[:C]

    sums = {}
    print(f"| test set | frames | tokenizer PSNR (dB) | PCA {C}/48 PSNR (dB) | gain (dB) |")
    print("|---|---:|---:|---:|---:|")
    for spec in a.test:
        name, path = spec.split("=", 1)
        with open(path, "rb") as f:
            src = f.read()
        enc = [os.path.join(a.bin, "wm-encode-latent"), "--model", a.model, "--batch", "32", "--threads", a.threads]
        dec = [os.path.join(a.bin, "wm-decode-frame"), "--model", a.model, "--batch", "32", "--threads", a.threads]
        with open(path, "rb") as fin:
            p1 = subprocess.Popen(enc, stdin=fin, stdout=subprocess.PIPE)
            p2 = subprocess.Popen(dec, stdin=p1.stdout, stdout=subprocess.PIPE)
            p1.stdout.close()
            out = p2.stdout.read()
        if p2.wait() or p1.wait():
            sys.exit(f"the filters failed on {path}")
        orig, rec = read_frames(src), read_frames(out)
        keys = sorted(orig)
        assert set(keys) == set(rec), "decoded frames do not match the input frames"
        a_ = np.stack([orig[k] for k in keys]).astype(np.float64) / 255
        b_ = np.stack([rec[k] for k in keys]).astype(np.float64) / 255
        ours = psnr(np.mean((a_ - b_) ** 2))
        pp, shape = patches([orig[k] for k in keys])
        recon = np.clip(np.round(((pp - mean) @ basis.T @ basis + mean) * 255), 0, 255) / 255
        base = psnr(np.mean((unpatch(recon, shape) - a_) ** 2))
        print(f"| {name} | {len(keys)} | {ours:.2f} | {base:.2f} | {ours - base:+.2f} |")
        sys.stdout.flush()
        sums[name] = (np.sum((a_ - b_) ** 2), np.sum((unpatch(recon, shape) - a_) ** 2), a_.size, len(keys))
    for spec in a.pool:
        label, names = spec.split("=", 1)
        parts = [sums[n] for n in names.split(",")]
        se_o, se_b, n, frames = (sum(p[i] for p in parts) for i in range(4))
        ours, base = psnr(se_o / n), psnr(se_b / n)
        print(f"| **{label}** | {frames} | **{ours:.2f}** | {base:.2f} | {ours - base:+.2f} |")


if __name__ == "__main__":
    main()
