#!/usr/bin/python3
"""Checks on wm-step output streams for tests/test_step.sh (exit 1 with a
reason on the first failure).

  stepcheck.py teacher IN OUT                 a pred after every latent, the rest unchanged
  stepcheck.py same-preds OUT CLIP1 CLIP2     the two clips got bit-identical preds
  stepcheck.py same-preds-across A B CLIP     CLIP's preds are bit-identical in A and B
  stepcheck.py close A B TOL [CLIP]           same messages; preds and imagined latents within TOL
  stepcheck.py rollout IN TEACHER OUT N K keep|drop
  stepcheck.py context-agrees TEACHER OUT CLIP
"""
import sys

import msgpack
import numpy as np


def load(path):
    with open(path, "rb") as f:
        return list(msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 30))


def arr(m, key="data"):
    return np.frombuffer(m[key], "<f2" if m.get("dtype") == "f16" else "<f4").astype(np.float64)


def fail(why):
    print("stepcheck:", why)
    sys.exit(1)


def preds(msgs, clip):
    return [m for m in msgs if m["kind"] == "pred" and m["clip"] == clip]


def by_clip(msgs):
    out = {}
    for m in msgs:
        if m["kind"] == "latent" and not m.get("imagined"):
            out.setdefault(m["clip"], []).append(m)
    return out


def check_pred(p, lat):
    if p["kind"] != "pred" or p["clip"] != lat["clip"] or p["index"] != lat["index"] + 1:
        fail(f"after latent {lat['clip']}/{lat['index']} came {p['kind']} {p.get('clip')}/{p.get('index')}")
    if p["shape"] != lat["shape"] or p["dtype"] != "f32" or "var" not in p:
        fail(f"pred {p['clip']}/{p['index']}: shape {p['shape']}, dtype {p['dtype']}, var {'var' in p}")
    d, v = arr(p), arr(p, "var")
    if d.size != np.prod(lat["shape"]) or v.size != d.size:
        fail(f"pred {p['clip']}/{p['index']}: {d.size} values")
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        fail(f"pred {p['clip']}/{p['index']}: non-finite mean or non-positive variance")


def teacher(inp, out):
    a, b = load(inp), load(out)
    rest = [m for m in b if m["kind"] != "pred"]
    if rest != a:
        fail("the stream without preds differs from the input")
    n = 0
    for i, m in enumerate(b):
        if m["kind"] == "latent":
            if i + 1 >= len(b):
                fail("the last latent has no pred")
            check_pred(b[i + 1], m)
            n += 1
    if sum(m["kind"] == "pred" for m in b) != n:
        fail("preds without a latent before them")


def same(pa, pb, what):
    if len(pa) != len(pb) or not pa:
        fail(f"{what}: {len(pa)} and {len(pb)} preds")
    for x, y in zip(pa, pb):
        if x["index"] != y["index"] or x["data"] != y["data"] or x["var"] != y["var"]:
            fail(f"{what}: pred {x['index']} differs")


def rel(x, y):
    return float(np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-30))


def close(pa, pb, tol, clip=None):
    a, b = load(pa), load(pb)
    if clip:
        a = [m for m in a if m["kind"] in ("pred", "latent") and m["clip"] == clip and m["kind"] == "pred"]
        b = [m for m in b if m["kind"] in ("pred", "latent") and m["clip"] == clip and m["kind"] == "pred"]
    if len(a) != len(b):
        fail(f"{len(a)} and {len(b)} messages")
    worst = 0.0
    for x, y in zip(a, b):
        derived = x["kind"] == "pred" or x.get("imagined")
        if not derived:
            if x != y:
                fail(f"message {x['kind']} differs")
            continue
        if {k: v for k, v in x.items() if k not in ("data", "var")} != {k: v for k, v in y.items() if k not in ("data", "var")}:
            fail(f"{x['kind']} {x['clip']}/{x['index']}: keys differ")
        worst = max(worst, rel(arr(x), arr(y)))
        if "var" in x:
            worst = max(worst, rel(arr(x, "var"), arr(y, "var")))
    if worst > tol:
        fail(f"relative difference {worst:.3g} > {tol}")


def rollout(inp, teach, out, N, K, mode):
    src, tout, r = load(inp), load(teach), load(out)
    lat = by_clip(src)
    for clip, ls in lat.items():
        n, Kc = len(ls), min(K, len(ls))
        seq = [m for m in r if m.get("clip") == clip and m["kind"] in ("latent", "pred", "end")]
        want = []
        for i in range(Kc):
            want += [("latent", ls[i]["index"]), ("pred", ls[i]["index"] + 1)]
        if n >= K:
            want += [("imagined", ls[K - 1]["index"] + 1 + j) for j in range(N)]
            if mode == "keep":
                want += [("latent", m["index"]) for m in ls[K:]]
        else:
            want += [("imagined", ls[-1]["index"] + 1 + j) for j in range(N)]
        want.append(("end", None))
        got = [("imagined" if m.get("imagined") else m["kind"], m.get("index")) for m in seq]
        if got != want:
            fail(f"clip {clip}: messages {got}, wanted {want}")
        tp = preds(tout, clip)[:Kc]
        same(preds(seq, clip), tp, f"clip {clip} context preds")
        im = [m for m in seq if m.get("imagined")]
        if im[0]["data"] != tp[-1]["data"]:
            fail(f"clip {clip}: the first imagined latent is not the last pred's mean")
        for j, m in enumerate(im):
            if m["shape"] != ls[0]["shape"] or m["dtype"] != "f32" or not np.all(np.isfinite(arr(m))):
                fail(f"clip {clip}: imagined latent {m['index']} is malformed")
            if abs(m.get("pts", -1) - (ls[Kc - 1]["pts"] + (j + 1) / 25)) > 1e-9:
                fail(f"clip {clip}: imagined latent {m['index']} has pts {m.get('pts')}")
        # the rollout is a function of the context: later imagined latents differ from the first
        if N > 1 and im[1]["data"] == im[0]["data"]:
            fail(f"clip {clip}: the rollout does not move")


def context_agrees(teach, out, clip):
    t, r = load(teach), load(out)
    tp, rp = preds(t, clip), preds(r, clip)
    same(rp, tp, f"clip {clip}")
    im = [m for m in r if m.get("imagined") and m["clip"] == clip]
    if not im or im[0]["data"] != tp[-1]["data"]:
        fail(f"clip {clip}: the first imagined latent is not teacher mode's last pred")


def main():
    a = sys.argv[1:]
    if a[0] == "teacher":
        teacher(a[1], a[2])
    elif a[0] == "same-preds":
        m = load(a[1])
        same(preds(m, a[2]), preds(m, a[3]), f"clips {a[2]} and {a[3]}")
    elif a[0] == "same-preds-across":
        same(preds(load(a[1]), a[3]), preds(load(a[2]), a[3]), f"clip {a[3]}")
    elif a[0] == "close":
        close(a[1], a[2], float(a[3]), a[4] if len(a) > 4 else None)
    elif a[0] == "rollout":
        rollout(a[1], a[2], a[3], int(a[4]), int(a[5]), a[6])
    elif a[0] == "context-agrees":
        context_agrees(a[1], a[2], a[3])
    else:
        fail("unknown check " + a[0])


if __name__ == "__main__":
    main()
