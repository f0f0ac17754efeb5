#!/usr/bin/python3
"""wm-score-coherence against an independent numpy implementation of the
definitions in docs/scoring.md: surprise per frame, its aggregates, the peak
and where it is, plausibility, flicker, smoothness and consistency, on a
stream with frames, latents and predictions (the pass-through output keeps
all of them next to the score).  The predictions come from a hand-made
stream, so the test needs no trained model: one clip with a planted outlier
cell, one with f16 data, one without variance, one with NaN, one without
predictions, one whose predictions carry the object prior (its surprise
added with weight 0.5 under the clip-adaptive variance), and one whose
prior_var is not [C]."""
import json
import math
import os
import subprocess
import sys

import msgpack
import numpy as np

ROOT = os.environ.get("WM_ROOT", os.path.join(os.path.dirname(__file__), ".."))
SCORE = os.path.join(ROOT, "bin", "wm-score-coherence")
rng = np.random.default_rng(5)


def clip_stream(cid, T=12, h=8, w=8, C=4, frames=True, f16=False, var=True, nan_at=None, preds=True, outlier=None,
                prior=False, prior_var_len=None, var_scale=1.0):
    out = [msgpack.packb({"kind": "clip", "id": cid, "source": f"src/{cid}.mp4", "fps": [25, 1],
                          "width": 4 * w, "height": 4 * h, "synth": {"category": "test", "possible": True}})]
    dt = np.float16 if f16 else np.float32
    z = rng.normal(size=(T, h, w, C)).astype(dt)
    for t in range(T):
        if frames:
            px = rng.integers(0, 256, size=(4 * h, 4 * w, 3), dtype=np.uint8)
            out.append(msgpack.packb({"kind": "frame", "clip": cid, "index": t, "pts": t / 25, "width": 4 * w,
                                      "height": 4 * h, "format": "rgb24", "data": px.tobytes()}))
        zt = z[t].copy()
        if outlier and t == outlier[0]:
            zt[outlier[1], outlier[2], :] += 9
        if nan_at == t:
            zt[0, 0, 0] = np.nan
        out.append(msgpack.packb({"kind": "latent", "clip": cid, "index": t, "pts": t / 25, "shape": [h, w, C],
                                  "dtype": "f16" if f16 else "f32", "data": zt.tobytes()}))
        if preds:
            mu = (zt * 0.5 + rng.normal(size=zt.shape) * 0.1).astype(dt)
            v = (rng.uniform(0.3, 2.0, size=zt.shape) * var_scale).astype(dt)
            p = {"kind": "pred", "clip": cid, "index": t + 1, "shape": [h, w, C], "dtype": "f16" if f16 else "f32",
                 "data": mu.tobytes()}
            if var:
                p["var"] = v.tobytes()
            if prior:
                p["prior"] = (zt * 0.8 + rng.normal(size=zt.shape) * 0.3).astype(dt).tobytes()
                p["prior_var"] = rng.uniform(0.05, 0.5, size=prior_var_len or C).astype(dt).tobytes()
            out.append(msgpack.packb(p))
    out.append(msgpack.packb({"kind": "end", "clip": cid, "frames": T}))
    return b"".join(out)


def expected(msgs, warmup=3, center=3.58, scale=0.83, prior_weight=0.4, frame_cap=75.0, dyn_adapt=0.5):
    """{clip: score fields} from the stream, by the definitions."""
    res = {}
    cur = None
    for m in msgs:
        k = m["kind"]
        if k == "clip":
            cur = {"id": m["id"], "z": [], "pred": {}, "f": [], "w": m.get("width"), "h": m.get("height")}
        elif k == "frame":
            cur["f"].append(np.frombuffer(m["data"], np.uint8).reshape(m["height"], m["width"], 3).astype(np.float64))
        elif k == "latent":
            dt = np.float16 if m["dtype"] == "f16" else np.float32
            cur["z"].append((m["index"], np.frombuffer(m["data"], dt).reshape(m["shape"]).astype(np.float64)))
        elif k == "pred":
            dt = np.float16 if m["dtype"] == "f16" else np.float32
            mu = np.frombuffer(m["data"], dt).reshape(m["shape"]).astype(np.float64)
            v = np.frombuffer(m["var"], dt).reshape(m["shape"]).astype(np.float64) if "var" in m else np.ones_like(mu)
            pr = pv = None
            if "prior" in m:
                pr = np.frombuffer(m["prior"], dt).reshape(m["shape"]).astype(np.float64)
                pv = np.frombuffer(m["prior_var"], dt).astype(np.float64)
                if pv.size != m["shape"][2]:
                    cur["bad"] = True
            cur["pred"][m["index"]] = (mu, v, pr, pv)
        elif k == "end":
            c = cur
            if any(not np.isfinite(z).all() for _, z in c["z"]):
                res[c["id"]] = {"error": True}
                continue
            if not c["pred"] or c.get("bad"):
                res[c["id"]] = {"error": True}
                continue
            h, w, C = c["z"][0][1].shape
            k_top = max(1, (h * w + 16) // 32)
            S, peaks = [None], [None]
            run, n_run = np.zeros(C), 0   # the prior's variance: max(prior_var, mean residual^2 of latents 2.. before)
            drun, n_drun = np.zeros(C), 0   # the dynamics': var * max(1, a * mean (z - mu)^2 / var of latents 2.. before)
            for pos, (idx, z) in enumerate(c["z"][1:], start=1):
                mu, v, pr, pv = c["pred"][idx]
                widen = np.maximum(1.0, dyn_adapt * drun / n_drun) if n_drun and dyn_adapt > 0 else np.ones(C)
                cells = (0.5 * ((z - mu) ** 2 / (v * widen) - 1)).mean(-1).ravel()
                if pos >= 2 and dyn_adapt > 0:
                    drun += ((z - mu) ** 2 / v).reshape(-1, C).mean(0)
                    n_drun += 1
                if pr is not None:
                    veff = np.maximum(pv, run / n_run) if n_run else pv
                    cells = cells + prior_weight * (0.5 * ((z - pr) ** 2 / veff - 1)).mean(-1).ravel()
                    if pos >= 2:
                        run += ((z - pr) ** 2).reshape(-1, C).mean(0)
                        n_run += 1
                S.append(max(0.0, np.sort(cells)[::-1][:k_top].mean()))
                peaks.append(int(np.argmax(cells)))
            T = len(S)
            frm = warmup + 1 if T - 1 > warmup else 1
            agg = S[frm:]
            mean, mx = float(np.mean(agg)), float(np.max(agg))
            clip_s = float(np.mean([frame_cap * math.log1p(x / frame_cap) for x in agg])) if frame_cap > 0 else mean
            p = frm + int(np.argmax(agg))
            ci, cj = divmod(peaks[p], w)
            W, H = c["f"][0].shape[1], c["f"][0].shape[0]
            f = c["f"]
            flick = np.mean([np.abs(f[t] - f[t - 1]).mean() / 255 for t in range(1, len(f))])
            smooth = np.mean([np.abs((f[t - 2] + f[t]) / 2 - f[t - 1]).mean() / 255 for t in range(2, len(f))])
            zs = [z.ravel() for _, z in c["z"]]
            ref = np.mean(zs[:4], axis=0)
            cons = np.mean([z @ ref / math.sqrt((z @ z) * (ref @ ref)) for z in zs])
            res[c["id"]] = {"surprise": S, "surprise_mean": mean, "surprise_max": mx, "surprise_clip": clip_s,
                            "peak_frame": c["z"][p][0],
                            "peak_xy": [int((cj + 0.5) * W / w), int((ci + 0.5) * H / h)],
                            "plausibility": 1 / (1 + math.exp((clip_s - center) / scale)),
                            "flicker": flick, "smoothness": smooth, "consistency": cons}
    return res


def close(a, b, tol, what):
    if abs(a - b) > tol:
        raise SystemExit(f"FAIL {what}: wm-score-coherence {a} vs numpy {b}")


def main():
    stream = (clip_stream("plain", outlier=(7, 2, 5)) + clip_stream("half", f16=True) +
              clip_stream("novar", var=False, h=16, w=16) + clip_stream("nan", nan_at=5) +
              clip_stream("nopred", preds=False) + clip_stream("prior", prior=True) +
              clip_stream("badprior", prior=True, prior_var_len=3))
    names = ["plain", "half", "novar", "nan", "nopred", "prior", "badprior"]
    r = subprocess.run([SCORE], input=stream, capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"FAIL wm-score-coherence exit {r.returncode}: {r.stderr.decode()}")
    up = msgpack.Unpacker(raw=False, max_buffer_size=1 << 30)
    up.feed(r.stdout)
    out = list(up)
    want = expected(out)
    scores = [m for m in out if m["kind"] == "score"]
    if [s["clip"] for s in scores] != names:
        raise SystemExit(f"FAIL one score per clip in order: {[s['clip'] for s in scores]}")
    # each score sits right before its clip's end
    for i, m in enumerate(out):
        if m["kind"] == "score" and out[i + 1] != {"kind": "end", "clip": m["clip"], "frames": 12}:
            raise SystemExit(f"FAIL score of {m['clip']} is not right before its end")
    for s in scores:
        e = want[s["clip"]]
        if e.get("error"):
            if "error" not in s:
                raise SystemExit(f"FAIL clip {s['clip']}: an error was expected, got {s}")
            print(f"ok {s['clip']}: error field: {s['error']}")
            continue
        if "error" in s:
            raise SystemExit(f"FAIL clip {s['clip']}: unexpected error {s['error']}")
        if s["surprise"][0] is not None or len(s["surprise"]) != 12:
            raise SystemExit("FAIL surprise[0] must be null and the array one per frame")
        for a, b in zip(s["surprise"][1:], e["surprise"][1:]):
            close(a, b, 1e-4 + 1e-5 * abs(b), f"{s['clip']} surprise")
        for k in ("surprise_mean", "surprise_max", "surprise_clip", "flicker", "smoothness", "consistency"):
            close(s[k], e[k], 1e-4 + 1e-5 * abs(e[k]), f"{s['clip']} {k}")
        close(s["plausibility"], e["plausibility"], 1e-5, f"{s['clip']} plausibility")
        if s["peak_frame"] != e["peak_frame"] or s["peak_xy"] != e["peak_xy"]:
            raise SystemExit(f"FAIL {s['clip']} peak {s['peak_frame']} {s['peak_xy']} vs {e['peak_frame']} {e['peak_xy']}")
        if s["source"] != f"src/{s['clip']}.mp4" or s["synth"] != {"category": "test", "possible": True}:
            raise SystemExit(f"FAIL {s['clip']}: source or labels not carried: {s['source']} {s.get('synth')}")
        if not 0 <= s["plausibility"] <= 1:
            raise SystemExit("FAIL plausibility outside [0, 1]")
        print(f"ok {s['clip']}: surprise, aggregates, peak, sub-scores match numpy")
    p = [s for s in scores if s["clip"] == "plain"][0]
    if p["peak_frame"] != 7 or p["peak_xy"] != [22, 10]:
        raise SystemExit(f"FAIL the planted outlier (frame 7, cell 2,5 -> pixel 22,10) is not the peak: {p}")
    print("ok the planted outlier is the peak, at its pixel position")
    # the same through --json: the same values
    j = subprocess.run([SCORE, "--json"], input=stream, capture_output=True)
    rows = [json.loads(line) for line in j.stdout.decode().splitlines()]
    if len(rows) != len(names) or rows[0]["surprise_mean"] != p["surprise_mean"] or "kind" in rows[0]:
        raise SystemExit("FAIL --json rows differ from the score messages")
    print("ok --json: one object per clip, the same values")
    # --prior-weight 0: the prior is ignored, the clip scores as it does without one
    with_prior = clip_stream("p0", prior=True)
    up = msgpack.Unpacker(raw=False)
    up.feed(with_prior)
    without = b"".join(msgpack.packb({k: v for k, v in m.items() if k not in ("prior", "prior_var")}) for m in up)
    r0 = subprocess.run([SCORE, "--json", "--prior-weight", "0"], input=with_prior, capture_output=True)
    r1 = subprocess.run([SCORE, "--json"], input=without, capture_output=True)
    if r0.returncode or r0.stdout != r1.stdout:
        raise SystemExit("FAIL --prior-weight 0 does not score the clip as its dynamics alone")
    print("ok --prior-weight 0 scores a clip as if its preds had no prior")
    # --frame-cap: a small cap makes the log visible (the outlier frame of
    # "plain" counts far less than itself); 0 is the plain mean
    for cap in (0.5, 0.0):
        r = subprocess.run([SCORE, "--json", "--frame-cap", str(cap)], input=stream, capture_output=True)
        got = [json.loads(line) for line in r.stdout.decode().splitlines()][0]
        up = msgpack.Unpacker(raw=False, max_buffer_size=1 << 30)
        up.feed(stream)
        e = expected(list(up), frame_cap=cap)["plain"]
        close(got["surprise_clip"], e["surprise_clip"], 1e-4 + 1e-5 * abs(e["surprise_clip"]), f"--frame-cap {cap}")
        close(got["plausibility"], e["plausibility"], 1e-5, f"--frame-cap {cap} plausibility")
        if cap == 0 and got["surprise_clip"] != got["surprise_mean"]:
            raise SystemExit("FAIL --frame-cap 0: surprise_clip is not surprise_mean")
        if cap > 0 and not got["surprise_clip"] < 0.9 * got["surprise_mean"]:
            raise SystemExit(f"FAIL --frame-cap {cap} does not damp the outlier frame: {got}")
    print("ok surprise_clip: the capped mean by --frame-cap (0: the plain mean)")
    # --dyn-adapt: a clip whose dynamics is overconfident (its variance a
    # tenth of its errors) is widened from latent 3 on; 0 leaves it as predicted
    over = clip_stream("over", var_scale=0.1)
    up = msgpack.Unpacker(raw=False, max_buffer_size=1 << 30)
    up.feed(over)
    msgs = list(up)
    for a in (0.5, 2.0, 0.0):
        r = subprocess.run([SCORE, "--json", "--dyn-adapt", str(a)], input=over, capture_output=True)
        got = json.loads(r.stdout.decode().splitlines()[0])
        e = expected(msgs, dyn_adapt=a)["over"]
        for x, y in zip(got["surprise"][1:], e["surprise"][1:]):
            close(x, y, 1e-4 + 1e-5 * abs(y), f"--dyn-adapt {a} surprise")
        close(got["surprise_clip"], e["surprise_clip"], 1e-4 + 1e-5 * abs(e["surprise_clip"]), f"--dyn-adapt {a}")
        if a == 0.5:
            widened = got["surprise_clip"]
        elif a == 0:
            plain = got["surprise_clip"]
    if not widened < plain:
        raise SystemExit(f"FAIL --dyn-adapt 0.5 does not widen an overconfident clip: {widened} vs {plain}")
    print("ok --dyn-adapt: the dynamics' variance widened by the clip's own earlier residuals, as numpy has it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
