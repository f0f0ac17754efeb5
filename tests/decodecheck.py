#!/usr/bin/python3
"""Reads wm-decode output for the decode tests with python3-msgpack, an
implementation independent of libwm.

  decodecheck.py summary STREAM   one line per message, pixels as a byte count:
      stream producer=...
      clip id=0 source=a.mp4 fps=30/1 size=320x240 [error=...]
      frame clip=0 index=0 pts=0.033333 size=320x240 format=rgb24 bytes=230400
      end clip=0 frames=60 [error=...]
  decodecheck.py raw STREAM > out.raw   the pixels of every frame, concatenated
  decodecheck.py mad A.raw B.raw        mean absolute difference of two byte files
STREAM may be - for stdin."""
import sys

import msgpack


def messages(path):
    f = sys.stdin.buffer if path == "-" else open(path, "rb")
    yield from msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 30)


def summary(path):
    for m in messages(path):
        k = m["kind"]
        if k == "stream":
            line = f"stream producer={m['producer']}"
        elif k == "clip":
            line = f"clip id={m['id']} source={m['source']}"
            if "fps" in m:
                line += f" fps={m['fps'][0]}/{m['fps'][1]} size={m['width']}x{m['height']}"
        elif k == "frame":
            line = (f"frame clip={m['clip']} index={m['index']} pts={m['pts']:.6f} "
                    f"size={m['width']}x{m['height']} format={m['format']} bytes={len(m['data'])}")
        elif k == "end":
            line = f"end clip={m['clip']} frames={m['frames']}"
        else:
            line = k
        if "error" in m:
            line += f" error={m['error']}"
        print(line)


def raw(path):
    for m in messages(path):
        if m["kind"] == "frame":
            sys.stdout.buffer.write(m["data"])


def mad(a, b):
    x, y = open(a, "rb").read(), open(b, "rb").read()
    if len(x) != len(y) or not x:
        sys.exit(f"mad: {a} is {len(x)} bytes, {b} is {len(y)}")
    print(f"{sum(abs(p - q) for p, q in zip(x, y)) / len(x):.3f}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"summary": summary, "raw": raw, "mad": mad}[cmd](*args)
