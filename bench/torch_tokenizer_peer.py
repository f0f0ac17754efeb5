#!/usr/bin/python3
"""The PyTorch peer of bench/bench-tokenizer.sh: the same tokenizer, the
same weights (read from the same safetensors file), on the CPU with a
given number of threads, encoding and decoding 64x64 frames at a given
batch size.  It starts from uint8 frames in memory and ends with uint8
frames, as the filters do, but does no stream I/O (which favours it).

  bench/torch_tokenizer_peer.py MODEL FRAMES.wm THREADS BATCH [channels_last]

Prints one line: frames, seconds, frames/s (best of 3 passes).
"""
import os
import sys
import time

import msgpack
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from test_tokenizer_torch import Tokenizer, read_safetensors  # noqa: E402  the oracle's network


def main():
    model, frames_path, threads, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    channels_last = len(sys.argv) > 5 and sys.argv[5] == "channels_last"
    torch.set_num_threads(threads)
    tensors, meta = read_safetensors(model)
    torch.set_default_dtype(torch.float32)
    net = Tokenizer({k: v.astype(np.float32) for k, v in tensors.items()}, meta).float().eval()
    with open(frames_path, "rb") as f:
        frames = [np.frombuffer(m["data"], np.uint8).reshape(m["height"], m["width"], 3)
                  for m in msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 31) if m.get("kind") == "frame"]
    x_all = torch.from_numpy(np.stack(frames))
    n = len(frames)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    best = None
    with torch.inference_mode():
        for _ in range(3):
            t0 = time.perf_counter()
            for i in range(0, n, batch):
                x = x_all[i:i + batch].permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous(memory_format=fmt)
                y = net.decode(net.encode(x))
                out = y.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
    del out
    print(f"{n} {best:.4f} {n / best:.1f}")


if __name__ == "__main__":
    main()
