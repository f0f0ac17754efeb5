#!/usr/bin/python3
"""PyTorch as the outside oracle for the ball detector (libwm/wm_detect.c).

Builds the same network in PyTorch (float64): the normalised latent, three
3x3 convolutions with ReLU (the third dilated 2), a 1x1 head of four maps;
and the same loss: binary cross-entropy with logits and pos_weight on the
centre map (mean over cells), L1 on the sigmoid offsets and on the radius
at the labelled cells (mean over them).  Writes random weights to a
safetensors file with json + numpy only, has the C code
(build/tests/unit_detect oracle) run the forward pass and the loss's
gradients, and compares the maps, the loss terms and every parameter
gradient.  Error measure: max |ours - torch| / max |torch| over each
tensor; the bound is 1e-4.  The shipped model's detector, when it has one,
is checked the same way.
"""
import os
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_tokenizer_torch import read_safetensors, rel_err, write_safetensors  # noqa: E402  the format by hand

ROOT = os.environ.get("WM_ROOT", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELPER = os.path.join(ROOT, "build", "tests", "unit_detect")
TOL = 1e-4
CONVS = [("l0", 1), ("l1", 1), ("l2", 2), ("head", 0)]


def random_model(rng, path, C, hidden):
    t = {}
    for name, dil in CONVS:
        cin = C if name == "l0" else hidden
        cout = 4 if name == "head" else hidden
        k = 1 if name == "head" else 3
        bound = 1 / np.sqrt(k * k * cin)
        t[f"detector.{name}.weight"] = rng.uniform(-bound, bound, (cout, k, k, cin))
        t[f"detector.{name}.bias"] = rng.uniform(-bound, bound, (cout,))
    t["detector.norm.mean"] = rng.normal(0, 0.5, (C,))
    t["detector.norm.std"] = rng.uniform(0.5, 2.0, (C,))
    write_safetensors(path, t, {"detector.arch": "balls-conv4-v1", "detector.latent_channels": str(C),
                                "detector.hidden": str(hidden)})


def torch_pass(tensors, z, labels, pos_weight):
    """maps (NHWC), the loss terms and the gradients (named as in the file, [out, kh, kw, in])"""
    torch.set_default_dtype(torch.float64)
    w = {}
    for name, _ in CONVS:
        w[name + ".weight"] = torch.tensor(tensors[f"detector.{name}.weight"]).permute(0, 3, 1, 2).contiguous().requires_grad_()
        w[name + ".bias"] = torch.tensor(tensors[f"detector.{name}.bias"]).requires_grad_()
    mean = torch.tensor(tensors["detector.norm.mean"]).view(1, -1, 1, 1)
    std = torch.tensor(tensors["detector.norm.std"]).view(1, -1, 1, 1)
    x = (torch.tensor(z.astype(np.float64)).permute(0, 3, 1, 2) - mean) / std
    for name, dil in CONVS:
        x = F.conv2d(x, w[name + ".weight"], w[name + ".bias"], padding=dil, dilation=max(dil, 1))
        if name != "head":
            x = torch.relu(x)
    lab = torch.tensor(labels.astype(np.float64)).permute(0, 3, 1, 2)
    t = lab[:, 0]
    centre = F.binary_cross_entropy_with_logits(x[:, 0], t, pos_weight=torch.tensor(float(pos_weight)))
    npos = max(float(t.sum()), 1.0)
    offset = ((torch.sigmoid(x[:, 1:3]) - lab[:, 1:3]).abs().sum(1) * t).sum() / npos
    radius = ((x[:, 3] - lab[:, 3]).abs() * t).sum() / npos
    total = centre + offset + radius
    total.backward()
    grads = {k: (v.grad.permute(0, 2, 3, 1) if v.grad.dim() == 4 else v.grad).numpy() for k, v in w.items()}
    return x.detach().permute(0, 2, 3, 1).numpy(), [float(total), float(centre), float(offset), float(radius)], grads


def labels_for(rng, B, H, W, n):
    lab = np.zeros((B, H, W, 4), np.float32)
    for b in range(B):
        for _ in range(n):
            i, j = rng.integers(0, H), rng.integers(0, W)
            lab[b, i, j] = [1, rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.6, 2.0)]
    return lab


def check(label, model, z, labels, pos_weight, tmp):
    tensors, _ = read_safetensors(model)
    inp, out = os.path.join(tmp, "in.safetensors"), os.path.join(tmp, "out.safetensors")
    write_safetensors(inp, {"z": z, "labels": labels}, {"pos_weight": repr(pos_weight)})
    subprocess.run([HELPER, "oracle", model, inp, out], check=True)
    ours, _ = read_safetensors(out)
    maps, loss, grads = torch_pass(tensors, z, labels, pos_weight)
    errs = {"maps": rel_err(ours["maps"], maps), "loss": rel_err(ours["loss"], loss)}
    for k, g in grads.items():
        errs["grad." + k] = rel_err(ours["grad." + k], g)
    worst = max(errs, key=errs.get)
    print(f"{label}: maps {errs['maps']:.1e}, loss {errs['loss']:.1e} (total {loss[0]:.4f}), worst gradient "
          f"{max(v for k, v in errs.items() if k.startswith('grad.')):.1e}")
    return [f"{label}: {worst} {errs[worst]:.2e}"] if errs[worst] > TOL else []


def main():
    if not os.path.exists(HELPER):
        print(f"FAIL {HELPER} is not built (make)")
        return 1
    rng = np.random.default_rng(5)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model.safetensors")
        random_model(rng, model, 6, 8)
        z = rng.normal(0, 1, (3, 7, 9, 6)).astype(np.float32)
        failed += check("random C=6 hidden=8, 3 latents of 9x7, 2 balls each, pos_weight 10", model, z,
                        labels_for(rng, 3, 7, 9, 2), 10.0, tmp)
        failed += check("the same with no ball at all, pos_weight 1", model, z, np.zeros((3, 7, 9, 4), np.float32),
                        1.0, tmp)
        shipped = os.path.join(ROOT, "models", "wm-default.safetensors")
        _, meta = read_safetensors(shipped) if os.path.exists(shipped) else ({}, {})
        if "detector.arch" in meta:
            C = int(meta["detector.latent_channels"])
            z = rng.normal(0, 1, (2, 16, 16, C)).astype(np.float32)
            failed += check("shipped models/wm-default.safetensors, 2 latents of 16x16", shipped, z,
                            labels_for(rng, 2, 16, 16, 3), 10.0, tmp)
        else:
            print("the shipped model has no detector yet: checked the random ones only")
    if failed:
        print("FAIL: over the 1e-4 bound: " + "; ".join(failed))
        return 1
    print("ok - C ball detector matches PyTorch (maps, loss terms, every gradient) within 1e-4")
    return 0


if __name__ == "__main__":
    sys.exit(main())
