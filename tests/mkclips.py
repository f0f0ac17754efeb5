#!/usr/bin/python3
"""Writes a stream of N small clips (clip, F frames of 8x8, end):
mkclips.py N [F]"""
import sys

import msgpack

n = int(sys.argv[1])
f = int(sys.argv[2]) if len(sys.argv) > 2 else 3
out = sys.stdout.buffer
out.write(msgpack.packb({"kind": "stream", "version": 1, "producer": "mkclips"}))
for c in range(n):
    cid = "c%04d" % c
    out.write(msgpack.packb({"kind": "clip", "id": cid, "source": "mkclips", "fps": [25, 1], "width": 8, "height": 8}))
    for i in range(f):
        out.write(msgpack.packb({"kind": "frame", "clip": cid, "index": i, "pts": i / 25.0, "width": 8, "height": 8,
                                 "format": "rgb24", "data": bytes([(c + i) % 256]) * 192}, use_bin_type=True))
    out.write(msgpack.packb({"kind": "end", "clip": cid, "frames": f}))
