#!/usr/bin/python3
"""Writes small wm streams, good and hostile, for the stream tests.

    mkstream.py KIND > out.wms
KIND: good | garbage | cut | badlen | huge | notmap | nokind | deep | newer
Every hostile stream starts with complete, valid messages so tests can
check that they still come out before the error."""
import struct
import sys

import msgpack


def frame(i, w=4, h=2, data=None):
    return {"kind": "frame", "clip": "c0", "index": i, "pts": i / 25.0, "width": w,
            "height": h, "format": "rgb24", "data": data if data is not None else bytes([i]) * (w * h * 3)}


def good():
    out = [{"kind": "stream", "version": 1, "producer": "mkstream"},
           {"kind": "clip", "id": "c0", "source": "mkstream", "fps": [25, 1], "width": 4, "height": 2,
            "labels": {"x": 1}}]
    out += [frame(i) for i in range(3)]
    out += [{"kind": "note", "text": "unknown kinds pass through", "extra": [1, {"a": None}]}]
    out += [{"kind": "end", "clip": "c0", "frames": 3}]
    return b"".join(msgpack.packb(m, use_bin_type=True) for m in out)


def main():
    kind = sys.argv[1]
    head = good()
    if kind == "good":
        body = b""
    elif kind == "garbage":
        head, body = b"", b"\xc1this is not msgpack at all"
    elif kind == "cut":
        body = msgpack.packb(frame(3), use_bin_type=True)[:-5]
    elif kind == "badlen":
        body = msgpack.packb(frame(3, data=b"\0" * 7), use_bin_type=True)
    elif kind == "huge":
        # a map whose "data" bin32 header claims 4 GiB - 1 bytes, followed by a few bytes
        body = b"\x82\xa4kind\xa5frame\xa4data\xc6" + struct.pack(">I", 0xFFFFFFFF) + b"\0" * 16
    elif kind == "notmap":
        body = msgpack.packb([1, 2, 3])
    elif kind == "nokind":
        body = msgpack.packb({"clip": "c0"})
    elif kind == "deep":
        body = b"\x81\xa4kind\xa1x\xa1y" + b"\x91" * 5000 + b"\xc0"
    elif kind == "newer":
        head, body = msgpack.packb({"kind": "stream", "version": 99, "producer": "future"}), b""
    else:
        sys.exit("unknown kind " + kind)
    sys.stdout.buffer.write(head + body)


main()
