#!/usr/bin/python3
"""PyTorch as the outside oracle for the tokenizer.

Builds the same network in PyTorch (float64), writes random weights to a
safetensors file with nothing but json + numpy (so the format is the
standard one, not ours), has the C code (build/tests/unit_tokenizer oracle)
encode, decode and take one training step, and compares: encoder and
decoder outputs, the loss, every parameter gradient, and the parameters
after one Adam step from our gradients.  The shipped model, when present, is read the same
way and checked too.  Error measure: max |ours - torch| / max |torch| over
each tensor; the bound is 1e-4.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print(f"SKIP PyTorch or numpy not importable ({e})")
    sys.exit(77)

ROOT = os.environ.get("WM_ROOT", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELPER = os.path.join(ROOT, "build", "tests", "unit_tokenizer")
TOL = 1e-4


def read_safetensors(path):
    """The format, read by hand: u64 header length, JSON header, raw data."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    dt = {"F32": "<f4", "F16": "<f2", "I32": "<i4"}
    tensors = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=dt[info["dtype"]]).reshape(info["shape"])
        tensors[name] = arr.astype(np.float64)
    return tensors, meta


def write_safetensors(path, tensors, meta):
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-(8 + len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def param_names(blocks):
    names = ["enc.in"]
    for side in ("enc", "dec"):
        if side == "dec":
            names.append("dec.in")
        for i in range(blocks):
            names += [f"{side}.block{i}.conv1", f"{side}.block{i}.conv2"]
        names.append(f"{side}.out")
    return names


class Tokenizer(torch.nn.Module):
    """The network of libwm/wm_tokenizer.c, in NCHW."""

    def __init__(self, tensors, meta):
        super().__init__()
        self.blocks = int(meta["tokenizer.blocks"])
        self.w = torch.nn.ParameterDict()
        for n in param_names(self.blocks):
            w = torch.tensor(tensors[f"tokenizer.{n}.weight"]).permute(0, 3, 1, 2)   # [O,K,K,I] -> [O,I,K,K]
            self.w[n.replace(".", "_") + "_w"] = torch.nn.Parameter(w.contiguous())
            self.w[n.replace(".", "_") + "_b"] = torch.nn.Parameter(torch.tensor(tensors[f"tokenizer.{n}.bias"]))

    def conv(self, x, n):
        k = n.replace(".", "_")
        return F.conv2d(x, self.w[k + "_w"], self.w[k + "_b"], padding=1)

    def body(self, h, side):
        for i in range(self.blocks):
            h = h + self.conv(F.silu(self.conv(F.silu(h), f"{side}.block{i}.conv1")), f"{side}.block{i}.conv2")
        return h

    def encode(self, x):
        h = self.conv(F.pixel_unshuffle(x, 4), "enc.in")
        return self.conv(self.body(h, "enc"), "enc.out")

    def decode(self, z):
        h = self.conv(z, "dec.in")
        return F.pixel_shuffle(self.conv(self.body(h, "dec"), "dec.out"), 4)

    def grad_of(self, n, kind):
        g = self.w[n.replace(".", "_") + "_" + kind].grad
        return g.permute(0, 2, 3, 1) if kind == "w" else g

    def value_of(self, n, kind):
        v = self.w[n.replace(".", "_") + "_" + kind].detach()
        return v.permute(0, 2, 3, 1) if kind == "w" else v


def rel_err(ours, ref):
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(np.asarray(ours) - ref)) / max(np.max(np.abs(ref)), 1e-30))


def check(label, model_path, x, lr, tmp):
    tensors, meta = read_safetensors(model_path)
    inp, out = os.path.join(tmp, "in.safetensors"), os.path.join(tmp, "out.safetensors")
    write_safetensors(inp, {"x": x}, {"lr": repr(lr)})
    subprocess.run([HELPER, "oracle", model_path, inp, out], check=True)
    ours, _ = read_safetensors(out)

    torch.set_default_dtype(torch.float64)
    net = Tokenizer(tensors, meta)
    xt = torch.tensor(x.astype(np.float64)).permute(0, 3, 1, 2)
    z = net.encode(xt)
    y = net.decode(z)
    loss = F.mse_loss(y, xt)
    loss.backward()
    worst, failed = {}, []

    def cmp(name, a, b):
        e = rel_err(a, b)
        worst[name] = e
        if e > TOL:
            failed.append(f"{name}: {e:.3g}")

    cmp("encoder output z", ours["z"], z.detach().permute(0, 2, 3, 1).numpy())
    # the decoder is checked on our z, so its error is the decoder's alone
    y_of_ours = net.decode(torch.tensor(ours["z"]).permute(0, 3, 1, 2)).detach().permute(0, 2, 3, 1).numpy()
    cmp("decoder output y", ours["y"], y_of_ours)
    cmp("loss", ours["loss"], loss.item())
    for n in param_names(net.blocks):
        cmp(f"grad {n}.weight", ours[f"grad.{n}.weight"], net.grad_of(n, "w").numpy())
        cmp(f"grad {n}.bias", ours[f"grad.{n}.bias"], net.grad_of(n, "b").numpy())
    # Adam on OUR gradients: Adam's first step is about lr * sign(g), so a
    # gradient near zero would turn float noise into a full-size step
    for n in param_names(net.blocks):
        k = n.replace(".", "_")
        net.w[k + "_w"].grad = torch.tensor(ours[f"grad.{n}.weight"]).permute(0, 3, 1, 2).contiguous()
        net.w[k + "_b"].grad = torch.tensor(ours[f"grad.{n}.bias"])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    opt.step()
    for n in param_names(net.blocks):
        cmp(f"Adam step {n}.weight", ours[f"updated.{n}.weight"], net.value_of(n, "w").numpy())
    grads = [v for k, v in worst.items() if k.startswith("grad")]
    steps = [v for k, v in worst.items() if k.startswith("Adam")]
    print(f"{label}: encoder {worst['encoder output z']:.2g}, decoder {worst['decoder output y']:.2g}, "
          f"loss {worst['loss']:.2g}, gradients (worst of {len(grads)}) {max(grads):.2g}, "
          f"Adam step (worst of {len(steps)}) {max(steps):.2g}")
    return failed


def main():
    if not os.access(HELPER, os.X_OK):
        print(f"FAIL: {HELPER} is not built (run make)")
        return 1
    rng = np.random.default_rng(11)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        # a small random network written by this script
        C, hidden, blocks = 8, 16, 2
        tensors = {}
        shapes = {"enc.in": (hidden, 48), "enc.out": (C, hidden), "dec.in": (hidden, C), "dec.out": (48, hidden)}
        for n in param_names(blocks):
            o, i = shapes.get(n, (hidden, hidden))
            bound = 1 / np.sqrt(9 * i)
            tensors[f"tokenizer.{n}.weight"] = rng.uniform(-bound, bound, (o, 3, 3, i))
            tensors[f"tokenizer.{n}.bias"] = rng.uniform(-bound, bound, (o,))
        meta = {"tokenizer.arch": "conv-ae-s2d4-v1", "tokenizer.latent_channels": str(C),
                "tokenizer.hidden": str(hidden), "tokenizer.blocks": str(blocks)}
        model = os.path.join(tmp, "random.safetensors")
        write_safetensors(model, tensors, meta)
        x = rng.uniform(-1, 1, (2, 16, 24, 3)).astype(np.float32)
        failed += check("random C=8 hidden=16 blocks=2, 2x24x16", model, x, 1e-3, tmp)

        shipped = os.path.join(ROOT, "models", "wm-default.safetensors")
        if os.path.exists(shipped):
            x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
            failed += check("shipped models/wm-default.safetensors, 2x32x32", shipped, x, 1e-4, tmp)
        else:
            print("note: models/wm-default.safetensors absent, only the random network was checked")
    if failed:
        print("FAIL: over the 1e-4 bound: " + "; ".join(failed))
        return 1
    print("ok - C tokenizer matches PyTorch (outputs, loss, gradients, one Adam step) within 1e-4")
    return 0


if __name__ == "__main__":
    sys.exit(main())
