#!/usr/bin/python3
"""PyTorch as the outside oracle for the dynamics model (wm-step's predictor).

Builds the same recurrent network in PyTorch (float64): the input and its
change since the last step, two ConvGRU layers in nn.GRU's gate form, the
second dilated, a Gaussian head with a residual mean and a floored log
variance, the beta-NLL loss.  Writes random weights to a
safetensors file with json + numpy only, has the C code
(build/tests/unit_dynamics oracle) run one training window with a carried-in
state, and compares: predicted means and log variances at every step, the
NLL, the state after the window, every parameter gradient (backpropagated
through time), the parameters after one Adam step from our gradients, and
the inference path (wm-step's, Winograd) against the same forward pass.
The shipped model, when it has a dynamics part, is checked the same way.
Error measure: max |ours - torch| / max |torch| over each tensor; the
bound is 1e-4.
"""
import math
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
HELPER = os.path.join(ROOT, "build", "tests", "unit_dynamics")
TOL = 1e-4
CONVS = ["gru0.x", "gru0.h", "gru1.x", "gru1.h", "head"]


class Dynamics(torch.nn.Module):
    """The network of libwm/wm_dynamics.c, in NCHW."""

    def __init__(self, tensors, meta):
        super().__init__()
        self.C = int(meta["dynamics.latent_channels"])
        self.hidden = int(meta["dynamics.hidden"])
        self.dil = int(meta["dynamics.dilation"])
        self.lv_min = float(meta["dynamics.logvar_min"])
        self.w = torch.nn.ParameterDict()
        for n in CONVS:
            w = torch.tensor(tensors[f"dynamics.{n}.weight"]).permute(0, 3, 1, 2)   # [O,K,K,I] -> [O,I,K,K]
            self.w[n.replace(".", "_") + "_w"] = torch.nn.Parameter(w.contiguous())
            self.w[n.replace(".", "_") + "_b"] = torch.nn.Parameter(torch.tensor(tensors[f"dynamics.{n}.bias"]))
        self.register_buffer("mean", torch.tensor(tensors["dynamics.norm.mean"]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(tensors["dynamics.norm.std"]).view(1, -1, 1, 1))

    def conv(self, x, n, dil=1):
        k = n.replace(".", "_")
        return F.conv2d(x, self.w[k + "_w"], self.w[k + "_b"], padding=dil, dilation=dil)

    def cell(self, x, h, layer):
        d = self.dil if layer else 1
        gx, gh = self.conv(x, f"gru{layer}.x", d), self.conv(h, f"gru{layer}.h", d)
        Ch = self.hidden
        r = torch.sigmoid(gx[:, :Ch] + gh[:, :Ch])
        z = torch.sigmoid(gx[:, Ch:2 * Ch] + gh[:, Ch:2 * Ch])
        n = torch.tanh(gx[:, 2 * Ch:] + r * gh[:, 2 * Ch:])
        return (1 - z) * n + z * h

    def step(self, xn, state, prev=None):
        """xn: normalised latent [B, C, H, W]; state: [h0, h1]; prev: the normalised latent before (None: a
        clip's first) -> mean, logvar (normalised), new state"""
        x = torch.cat([xn, xn - (xn if prev is None else prev)], 1)
        h0 = self.cell(x, state[0], 0)
        h1 = self.cell(h0, state[1], 1)
        y = self.conv(h1, "head")
        mean = xn + y[:, :self.C]
        logvar = self.lv_min + F.softplus(y[:, self.C:] - self.lv_min)
        return mean, logvar, [h0, h1]

    def normalize(self, z):
        return (z - self.mean) / self.std

    def grad_of(self, n, kind):
        g = self.w[n.replace(".", "_") + "_" + kind].grad
        return g.permute(0, 2, 3, 1) if kind == "w" else g

    def value_of(self, n, kind):
        v = self.w[n.replace(".", "_") + "_" + kind].detach()
        return v.permute(0, 2, 3, 1) if kind == "w" else v


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).numpy()


def check(label, model_path, seq, state, beta, lr, tmp, prev=None, inputs=None, fed_from=None):
    tensors, meta = read_safetensors(model_path)
    inp, out = os.path.join(tmp, "in.safetensors"), os.path.join(tmp, "out.safetensors")
    given = {"seq": seq, "state": state}
    if prev is not None:
        given["prev"] = prev
    if inputs is not None:
        given["inputs"] = inputs
    write_safetensors(inp, given, {"beta": repr(beta), "lr": repr(lr)})
    if fed_from is not None:   # an I32 tensor: append it by hand to what write_safetensors wrote
        add_i32(inp, "fed_from", fed_from)
    subprocess.run([HELPER, "oracle", model_path, inp, out], check=True)
    ours, _ = read_safetensors(out)

    torch.set_default_dtype(torch.float64)
    net = Dynamics(tensors, meta)
    T = seq.shape[0] - 1
    z = [torch.tensor(seq[t].astype(np.float64)).permute(0, 3, 1, 2) for t in range(T + 1)]
    xn = [net.normalize(v) for v in z]
    fed = xn if inputs is None else [net.normalize(torch.tensor(inputs[t].astype(np.float64)).permute(0, 3, 1, 2))
                                     for t in range(T)]
    st = [torch.tensor(state[l].astype(np.float64)).permute(0, 3, 1, 2) for l in range(2)]
    means, logvars, weighted, plain = [], [], [], []
    before = None if prev is None else net.normalize(torch.tensor(prev.astype(np.float64)).permute(0, 3, 1, 2))
    for t in range(T):
        m, lv, st = net.step(fed[t], st, fed[t - 1] if t else before)
        if fed_from is not None:   # lanes fed their own predictions: the variance does not learn there
            mask = torch.tensor([t >= f for f in fed_from]).view(-1, 1, 1, 1)
            lv_used = torch.where(mask, lv.detach(), lv)
        else:
            lv_used = lv
        nll = 0.5 * (lv_used + (xn[t + 1] - m) ** 2 * torch.exp(-lv_used) + math.log(2 * math.pi))
        if fed_from is None:
            plain.append(nll)
        else:   # the reported NLL counts the predictions made from the clip's own latents
            plain += [nll[b] for b in range(nll.shape[0]) if t < fed_from[b]]
        weighted.append(torch.exp(beta * lv).detach() * nll)
        means.append(m)
        logvars.append(lv)
    loss = torch.stack(weighted).mean()
    loss.backward()
    worst, failed = {}, []

    def cmp(name, a, b):
        e = rel_err(a, b)
        worst[name] = e
        if e > TOL:
            failed.append(f"{name}: {e:.3g}")

    cmp("means", ours["mean"], np.stack([nhwc(m) for m in means]))
    cmp("log variances", ours["logvar"], np.stack([nhwc(v) for v in logvars]))
    cmp("nll", ours["nll"], torch.cat([p.reshape(-1) for p in plain]).mean().item())
    cmp("state after the window", ours["state"], np.stack([nhwc(h) for h in st]))
    # the inference path from a zero state on the clip itself, in latent units
    with torch.no_grad():
        s0 = [torch.zeros_like(st[0]), torch.zeros_like(st[1])]
        sm, sv = [], []
        for t in range(T):
            m, lv, s0 = net.step(xn[t], s0, xn[t - 1] if t else None)
            sm.append(nhwc(m * net.std + net.mean))
            sv.append(nhwc(torch.exp(lv) * net.std ** 2))
    cmp("inference mean", ours["step.mean"], np.stack(sm))
    cmp("inference var", ours["step.var"], np.stack(sv))
    for n in CONVS:
        cmp(f"grad {n}.weight", ours[f"grad.{n}.weight"], net.grad_of(n, "w").numpy())
        cmp(f"grad {n}.bias", ours[f"grad.{n}.bias"], net.grad_of(n, "b").numpy())
    # Adam on OUR gradients (its first step is about lr * sign(g), so a
    # gradient near zero would turn float noise into a full-size step)
    for n in CONVS:
        k = n.replace(".", "_")
        net.w[k + "_w"].grad = torch.tensor(ours[f"grad.{n}.weight"]).permute(0, 3, 1, 2).contiguous()
        net.w[k + "_b"].grad = torch.tensor(ours[f"grad.{n}.bias"])
    torch.optim.Adam(net.parameters(), lr=lr).step()
    for n in CONVS:
        cmp(f"Adam step {n}.weight", ours[f"updated.{n}.weight"], net.value_of(n, "w").numpy())
    grads = [v for k, v in worst.items() if k.startswith("grad")]
    steps = [v for k, v in worst.items() if k.startswith("Adam")]
    print(f"{label}: means {worst['means']:.2g}, log variances {worst['log variances']:.2g}, "
          f"nll {worst['nll']:.2g}, state {worst['state after the window']:.2g}, inference path "
          f"{max(worst['inference mean'], worst['inference var']):.2g}, gradients through {T} steps "
          f"(worst of {len(grads)}) {max(grads):.2g}, Adam step (worst of {len(steps)}) {max(steps):.2g}")
    return failed


def add_i32(path, name, values):
    """Rewrites the safetensors file at path with one more tensor, I32 [len(values)]."""
    import json
    import struct
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    raw = np.asarray(values, "<i4").tobytes()
    header[name] = {"dtype": "I32", "shape": [len(values)], "data_offsets": [len(data), len(data) + len(raw)]}
    h = json.dumps(header).encode()
    h += b" " * (-(8 + len(h)) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data + raw)


def random_model(rng, path, C, hidden, dil):
    tensors = {}
    shapes = {"gru0.x": (3 * hidden, 2 * C), "gru0.h": (3 * hidden, hidden), "gru1.x": (3 * hidden, hidden),
              "gru1.h": (3 * hidden, hidden), "head": (2 * C, hidden)}
    for n, (o, i) in shapes.items():
        bound = 1.5 / np.sqrt(9 * i)
        tensors[f"dynamics.{n}.weight"] = rng.uniform(-bound, bound, (o, 3, 3, i))
        tensors[f"dynamics.{n}.bias"] = rng.uniform(-bound, bound, (o,))
    tensors["dynamics.norm.mean"] = rng.uniform(-0.2, 0.2, (C,))
    tensors["dynamics.norm.std"] = rng.uniform(0.2, 0.5, (C,))
    meta = {"dynamics.arch": "convgru2-gauss-v2", "dynamics.latent_channels": str(C),
            "dynamics.hidden": str(hidden), "dynamics.dilation": str(dil), "dynamics.logvar_min": "-10"}
    write_safetensors(path, tensors, meta)


def main():
    if not os.access(HELPER, os.X_OK):
        print(f"FAIL: {HELPER} is not built (run make)")
        return 1
    rng = np.random.default_rng(13)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        C, hidden, T, B, H, W = 8, 16, 5, 2, 9, 10   # odd sizes: the dilated layer's padding
        model = os.path.join(tmp, "random.safetensors")
        random_model(rng, model, C, hidden, 2)
        seq = rng.normal(0, 0.3, (T + 1, B, H, W, C)).astype(np.float32)
        state = rng.normal(0, 0.3, (2, B, H, W, hidden)).astype(np.float32)
        prev = rng.normal(0, 0.3, (B, H, W, C)).astype(np.float32)
        failed += check(f"random C={C} hidden={hidden} dilation 2, {T} steps x {B} lanes of {W}x{H} continuing a clip, "
                        "beta 0.5", model, seq, state, 0.5, 1e-3, tmp, prev)
        random_model(rng, model, 4, 8, 3)
        seq = rng.normal(0, 0.3, (4, 1, 7, 8, 4)).astype(np.float32)
        state = np.zeros((2, 1, 7, 8, 8), np.float32)
        failed += check("random C=4 hidden=8 dilation 3, a clip's start, plain NLL", model, seq, state, 0.0, 1e-3, tmp)
        fed = rng.normal(0, 0.3, (3, 1, 7, 8, 4)).astype(np.float32)
        failed += check("the same fed other inputs than its targets from step 1 (training on its own predictions)",
                        model, seq, state, 1.0, 1e-3, tmp, None, fed, [1])

        shipped = os.path.join(ROOT, "models", "wm-default.safetensors")
        _, meta = read_safetensors(shipped) if os.path.exists(shipped) else ({}, {})
        if "dynamics.arch" in meta:
            C, hidden = int(meta["dynamics.latent_channels"]), int(meta["dynamics.hidden"])
            seq = rng.normal(0, 0.3, (4, 2, 16, 16, C)).astype(np.float32)
            state = rng.normal(0, 0.3, (2, 2, 16, 16, hidden)).astype(np.float32)
            failed += check("shipped models/wm-default.safetensors, 3 steps x 2 lanes of 16x16", shipped, seq,
                            state, 0.5, 1e-4, tmp)
        else:
            failed.append("the shipped model has no dynamics part")
    if failed:
        print("FAIL: over the 1e-4 bound: " + "; ".join(failed))
        return 1
    print("ok - C dynamics model matches PyTorch (outputs, state, NLL, BPTT gradients, one Adam step, the "
          "inference path) within 1e-4")
    return 0


if __name__ == "__main__":
    sys.exit(main())
