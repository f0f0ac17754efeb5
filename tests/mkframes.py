#!/usr/bin/python3
"""Frame streams for the wm-mux tests, made with numpy and python3-msgpack
(an encoder independent of libwm), and the checks run on what comes back.

  mkframes.py gen [--src VIDEO] [--size WxH] [--frames N] [--clips K]
                  [--fps N/D] [--gray] [--vfr] [--bad-size-at I] > stream
      a stream of K clips of N frames: real footage decoded by the ffmpeg
      CLI when --src is given, else a moving synthetic pattern
  mkframes.py raw STREAM > frames.raw       the pixels of every frame, concatenated
  mkframes.py pts STREAM                    one pts per line (%.6f)
  mkframes.py psnr A.raw B.raw              PSNR in dB over all bytes (inf if equal)
  mkframes.py cut STREAM K                  a byte offset inside the K-th frame message
"""
import argparse
import subprocess
import sys

import msgpack
import numpy as np


def parse_size(s):
    w, h = s.lower().split("x")
    return int(w), int(h)


def source_frames(src, w, h, n, gray):
    """n frames of src scaled to w x h by the ffmpeg CLI (looping if short)."""
    fmt = "gray" if gray else "rgb24"
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-stream_loop", "-1", "-i", src,
         "-frames:v", str(n), "-vf", f"scale={w}:{h}:flags=bicubic", "-f", "rawvideo", "-pix_fmt", fmt, "-"],
        check=True, stdout=subprocess.PIPE).stdout
    c = 1 if gray else 3
    return np.frombuffer(raw, np.uint8).reshape(n, h, w, c) if c == 3 else np.frombuffer(raw, np.uint8).reshape(n, h, w)


def synthetic_frames(w, h, n, gray, seed):
    """Smooth gradients with a moving disc: content a codec has to work on."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for i in range(n):
        cx, cy = (0.5 + 0.3 * np.cos(i / 5 + seed)) * w, (0.5 + 0.3 * np.sin(i / 7 + seed)) * h
        disc = ((x - cx) ** 2 + (y - cy) ** 2 < (min(w, h) / 4) ** 2).astype(np.float32)
        r = 128 + 100 * np.sin(x / max(w, 1) * 6.28 + i / 10)
        g = 128 + 100 * np.cos(y / max(h, 1) * 6.28 + seed)
        b = 60 + 150 * disc
        img = np.stack([r, g, b], -1)
        if gray:
            img = img.mean(-1)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


def cmd_gen(a):
    w, h = parse_size(a.size)
    num, den = (int(v) for v in a.fps.split("/")) if "/" in a.fps else (int(a.fps), 1)
    pk = msgpack.Packer(use_bin_type=True)
    out = sys.stdout.buffer
    out.write(pk.pack({"kind": "stream", "version": 1, "producer": "mkframes.py"}))
    for k in range(a.clips):
        clip = f"clip{k}"
        frames = (source_frames(a.src, w, h, a.frames, a.gray) if a.src
                  else synthetic_frames(w, h, a.frames, a.gray, k))
        out.write(pk.pack({"kind": "clip", "id": clip, "source": a.src or "synthetic",
                           "fps": [num, den], "width": w, "height": h, "labels": {"test": True}}))
        out.write(pk.pack({"kind": "note", "text": "an unknown kind, ignored"}))
        t = 0.0
        for i in range(a.frames):
            img = frames[i]
            if a.bad_size_at == i:
                img = np.zeros((h, w + 2) + img.shape[2:], np.uint8)
            pts = t if a.vfr else i * den / num
            out.write(pk.pack({"kind": "frame", "clip": clip, "index": i, "pts": float(pts),
                               "width": int(img.shape[1]), "height": int(img.shape[0]),
                               "format": "gray8" if a.gray else "rgb24", "data": img.tobytes()}))
            t += 0.07 if i % 2 == 0 else 0.03   # irregular gaps: 70 ms, 30 ms
        out.write(pk.pack({"kind": "end", "clip": clip, "frames": a.frames}))


def read_stream(path):
    with open(path, "rb") as f:
        yield from msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 30)


def cmd_raw(a):
    for m in read_stream(a.stream):
        if m.get("kind") == "frame":
            sys.stdout.buffer.write(m["data"])


def cmd_pts(a):
    for m in read_stream(a.stream):
        if m.get("kind") == "frame":
            print(f"{m['pts']:.6f}")


def cmd_psnr(a):
    x = np.fromfile(a.a, np.uint8).astype(np.float64)
    y = np.fromfile(a.b, np.uint8).astype(np.float64)
    if x.size != y.size or x.size == 0:
        sys.exit(f"psnr: sizes differ: {x.size} and {y.size} bytes")
    mse = np.mean((x - y) ** 2)
    print("inf" if mse == 0 else f"{10 * np.log10(255.0 ** 2 / mse):.2f}")


def cmd_cut(a):
    with open(a.stream, "rb") as f:
        u = msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 30)
        start, k = 0, 0
        for m in u:
            end = u.tell()
            if m.get("kind") == "frame":
                if k == a.k:
                    print((start + end) // 2)
                    return
                k += 1
            start = end
    sys.exit(f"cut: fewer than {a.k + 1} frames")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--src")
    g.add_argument("--size", default="64x48")
    g.add_argument("--frames", type=int, default=10)
    g.add_argument("--clips", type=int, default=1)
    g.add_argument("--fps", default="30")
    g.add_argument("--gray", action="store_true")
    g.add_argument("--vfr", action="store_true")
    g.add_argument("--bad-size-at", type=int, default=-1)
    g.set_defaults(fn=cmd_gen)
    r = sub.add_parser("raw")
    r.add_argument("stream")
    r.set_defaults(fn=cmd_raw)
    t = sub.add_parser("pts")
    t.add_argument("stream")
    t.set_defaults(fn=cmd_pts)
    s = sub.add_parser("psnr")
    s.add_argument("a")
    s.add_argument("b")
    s.set_defaults(fn=cmd_psnr)
    c = sub.add_parser("cut")
    c.add_argument("stream")
    c.add_argument("k", type=int)
    c.set_defaults(fn=cmd_cut)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
