#!/usr/bin/python3
"""A slow identity filter for dispatch tests: passes a wm stream through,
sleeping DELAY seconds at each clip's end (and flushing there), so a test
can kill workers while they hold clips.   slowpass.py DELAY"""
import os
import sys
import time

import msgpack

delay = float(sys.argv[1])
out = sys.stdout.buffer
unpacker = msgpack.Unpacker(raw=False, max_buffer_size=1 << 26)
while True:
    chunk = os.read(0, 65536)   # whatever has arrived: a clip must not wait for the next
    if not chunk:
        break
    unpacker.feed(chunk)
    for m in unpacker:
        out.write(msgpack.packb(m, use_bin_type=True))
        if m.get("kind") == "end":
            time.sleep(delay)
            out.flush()
out.flush()
