#!/usr/bin/python3
"""The PyTorch peer of bench/bench-step.sh: the dynamics model with the same
weights (read from the same safetensors file) on the CPU with a given number
of threads, in teacher mode over the latents of a stream: B clips in
lock-step, each step normalise -> [z, z - z_prev] -> two ConvGRU layers -> head -> mean and
variance in latent units, as wm-step computes them.  It starts from float32
latents in memory and ends with the means and variances in memory: no stream
I/O (which favours it).

  bench/torch_step_peer.py MODEL LATENTS.wm THREADS BATCH [channels_last] [cuda]

With cuda (the GPU benchmark, bench/bench-step-gpu.sh) the network runs on
the GPU in eager mode with TF32 off (wm-step computes in plain fp32 too),
latents copied in and results copied out each step as wm-step does.
Prints one line: latents, seconds, latents/s (best of 3 passes).
"""
import os
import sys
import time

import msgpack
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from test_dynamics_torch import Dynamics  # noqa: E402  the oracle's network
from test_tokenizer_torch import read_safetensors  # noqa: E402


def main():
    model, lat_path, threads, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    channels_last = "channels_last" in sys.argv[5:]
    dev = torch.device("cuda" if "cuda" in sys.argv[5:] else "cpu")
    if dev.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    torch.set_num_threads(threads)
    tensors, meta = read_safetensors(model)
    torch.set_default_dtype(torch.float32)
    net = Dynamics({k: v.astype(np.float32) for k, v in tensors.items() if k.startswith("dynamics.")}, meta).float()
    net = net.to(dev).eval()
    clips = {}
    with open(lat_path, "rb") as f:
        for m in msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 31):
            if m.get("kind") == "latent" and not m.get("imagined"):
                clips.setdefault(m["clip"], []).append(np.frombuffer(m["data"], "<f4").reshape(m["shape"]))
    seqs = [torch.from_numpy(np.stack(v)) for v in clips.values()]   # [T, H, W, C] each, one size
    n = sum(len(s) for s in seqs)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    Ch = net.hidden
    best = None
    with torch.inference_mode():
        for _ in range(3):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for i in range(0, len(seqs), batch):
                group = seqs[i:i + batch]
                T = max(len(s) for s in group)
                x_all = torch.stack(group, 1)     # [T, B, H, W, C] (the bench's clips share one length)
                B, H, W = x_all.shape[1], x_all.shape[2], x_all.shape[3]
                state = [torch.zeros(B, Ch, H, W, device=dev).contiguous(memory_format=fmt) for _ in range(2)]
                prev = None
                for t in range(T):
                    x = x_all[t].to(dev, non_blocking=True).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
                    xn = net.normalize(x)
                    mean, logvar, state = net.step(xn, state, prev)
                    prev = xn
                    out_m = (mean * net.std + net.mean).permute(0, 2, 3, 1).contiguous().cpu()
                    out_v = (torch.exp(logvar) * net.std ** 2).permute(0, 2, 3, 1).contiguous().cpu()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
    del out_m, out_v
    print(f"{n} {best:.4f} {n / best:.1f}")


if __name__ == "__main__":
    main()
