#!/usr/bin/python3
"""How good the dynamics model of a model file is, on held-out latent clips
(make model writes build/model/dynamics-quality.md with it).

  bench/dynamics_quality.py --model M [--threads N] [--rollout-context K]
        [--pairs PAIRS.wm] NAME=LATENTS.wm ...

For each held-out set (latent streams, wm-encode-latent's output), wm-step
runs in teacher mode and in rollouts, and this reports:
  - nll: the mean Gaussian NLL per latent value under wm-step's predicted
    mean and variance (nats, latent units), against two baselines: "no
    change" (z_{t+1} = z_t) with the per-channel variance that fits best on
    the same data, and "constant velocity" (z_{t+1} = 2 z_t - z_{t-1}) fitted
    likewise: a model that beats them has learned dynamics and uncertainty;
  - mse: squared error of the mean, all values and on the 2% of values
    that change most between frames (where the objects are), against the
    same baselines;
  - calibration: mean of err^2 / var (1 when the variance is calibrated) and
    the share of values within 1 and 2 predicted standard deviations
    (68% and 95% for a Gaussian);
  - memory (--occlusion): where a ball shows again after k frames wholly
    hidden, the pred's error around it with the clip's past against with
    only the last hidden latent as context;
  - rollouts: from K real latents, the squared error of the imagined
    latents against the real ones at horizons 1, 4, 8, 16, against
    repeating the last context latent.
With --pairs (wm-synth --pairs | wm-encode-latent), the share of matched
pairs whose impossible clip is the more surprising from the divergence on
(by the mean and by the peak of the per-frame NLL), per category: a first
look at surprise; the benchmark proper is issue 7's.
"""
import argparse
import os
import subprocess
import sys

import msgpack
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEP = os.path.join(ROOT, "bin", "wm-step")
LOG2PI = np.log(2 * np.pi)


def run_step(model, path, threads, extra=()):
    out = subprocess.run([STEP, "-q", "--device", "cpu", "--model", model, "--threads", str(threads), "--batch", "16",
                          *extra, path], check=True, stdout=subprocess.PIPE).stdout
    return list(_unpack(out))


def _unpack(data):
    u = msgpack.Unpacker(raw=False, max_buffer_size=1 << 31)
    u.feed(data)
    return u


def arr(m, key="data"):
    return np.frombuffer(m[key], "<f2" if m.get("dtype") == "f16" else "<f4").astype(np.float64).reshape(m["shape"])


def clips_of(msgs):
    """clip id -> (latents [T, h, w, C], preds {index: (mean, var)}, imagined [...], clip label)"""
    out, labels = {}, {}
    for m in msgs:
        k = m.get("kind")
        if k == "clip":
            labels[m["id"]] = m.get("synth")
        elif k == "latent" and not m.get("imagined"):
            out.setdefault(m["clip"], ([], {}, []))[0].append(arr(m))
        elif k == "latent":
            out.setdefault(m["clip"], ([], {}, []))[2].append(arr(m))
        elif k == "pred":
            out.setdefault(m["clip"], ([], {}, []))[1][m["index"]] = (arr(m), arr(m, "var"))
    return {c: (np.stack(v[0]), v[1], v[2], labels.get(c)) for c, v in out.items() if v[0]}


def gauss_nll(err2, var):
    return 0.5 * (np.log(var) + err2 / var + LOG2PI)


def teacher_report(name, clips):
    err2, var, cp2, cv2, chg = [], [], [], [], []
    for z, preds, _, _ in clips.values():
        T = len(z)
        for t in range(2, T):   # t >= 2 so the constant-velocity baseline has its two frames
            mean, v = preds[t]
            err2.append((z[t] - mean) ** 2)
            var.append(v)
            cp2.append((z[t] - z[t - 1]) ** 2)
            cv2.append((z[t] - 2 * z[t - 1] + z[t - 2]) ** 2)
            chg.append(np.abs(z[t] - z[t - 1]))
    err2, var, cp2, cv2, chg = (np.stack(a) for a in (err2, var, cp2, cv2, chg))
    nll = gauss_nll(err2, var).mean()
    # baselines: the best per-channel constant variance for each (its MSE per channel)
    ch = tuple(range(err2.ndim - 1))
    nll_cp = gauss_nll(cp2, cp2.mean(ch)).mean()
    nll_cv = gauss_nll(cv2, cv2.mean(ch)).mean()
    moving = chg >= np.quantile(chg, 0.98)
    z2 = err2 / var
    rows = [
        f"| {name} | {len(clips)} | **{nll:.3f}** | {nll_cp:.3f} | {nll_cv:.3f} | {err2.mean():.5f} | {cp2.mean():.5f} | "
        f"{cv2.mean():.5f} | **{err2[moving].mean():.4f}** | {cp2[moving].mean():.4f} | {cv2[moving].mean():.4f} | "
        f"{z2.mean():.2f} | {np.mean(z2 <= 1):.0%} / {np.mean(z2 <= 4):.0%} |"]
    return rows


def rollout_report(name, clips, K, horizons):
    errs = {h: [] for h in horizons}
    base = {h: [] for h in horizons}
    for z, _, imag, _ in clips.values():
        if len(z) < K + max(horizons) or len(imag) < max(horizons):
            continue
        for h in horizons:
            errs[h].append(((imag[h - 1] - z[K - 1 + h]) ** 2).mean())
            base[h].append(((z[K - 1] - z[K - 1 + h]) ** 2).mean())
    if not errs[horizons[0]]:
        return []
    cells = " | ".join(f"{np.mean(errs[h]):.4f} ({np.mean(base[h]):.4f})" for h in horizons)
    return [f"| {name} | {len(errs[horizons[0]])} | {cells} |"]


def pairs_report(clips):
    by_pair = {}
    for cid, (z, preds, _, lab) in clips.items():
        if not lab or lab.get("pair", -1) < 0:
            continue
        v = lab["diverge_frame"]
        # per frame: the NLL summed over the grid, relative to the clip's frames before the divergence
        nll = np.array([gauss_nll((z[t] - preds[t][0]) ** 2, preds[t][1]).sum() for t in range(1, len(z))])
        after = nll[max(v, 1) - 1:]
        key = (lab["category"], lab["pair"])
        by_pair.setdefault(key, {})[lab["possible"]] = (float(after.mean()), float(after.max()))
    cats = {}
    for (cat, _), d in by_pair.items():
        if True in d and False in d:
            cats.setdefault(cat, []).append((d[False][0] > d[True][0], d[False][1] > d[True][1]))
    rows = [f"| {c} | {len(v)} | {np.mean([a for a, _ in v]):.0%} | {np.mean([b for _, b in v]):.0%} |"
            for c, v in sorted(cats.items())]
    allv = [x for v in cats.values() for x in v]
    if allv:
        rows.append(f"| **all** | {len(allv)} | **{np.mean([a for a, _ in allv]):.0%}** | "
                    f"**{np.mean([b for _, b in allv]):.0%}** |")
    return rows


def occlusion_report(model, path, threads):
    """Memory: for every ball that is wholly hidden for k frames and then shows again at frame r, the squared error
    of the pred for latent r in the 3x3 cells around where the ball shows, with the clip's past (memory) and with
    only the last hidden latent as context (the state lost)."""
    msgs = list(_unpack(open(path, "rb").read()))
    clips, order = {}, []
    for m in msgs:
        if m.get("kind") == "latent" and not m.get("imagined"):
            if m["clip"] not in clips:
                order.append(m["clip"])
            clips.setdefault(m["clip"], []).append(m)
    events = []   # (clip, r, k, cy, cx)
    for cid in order:
        ls = clips[cid]
        seen = {}
        for i, m in enumerate(ls):
            for o in m.get("objects", []):
                run = seen.get(o["id"], None)
                if not o["visible"]:
                    seen[o["id"]] = (run or 0) + 1 if run is not None else None if i == 0 else 1
                    continue
                if run and i > run:
                    h, w = m["shape"][0], m["shape"][1]
                    events.append((cid, i, run, min(max(int(o["y"] / 4), 1), h - 2), min(max(int(o["x"] / 4), 1), w - 2)))
                seen[o["id"]] = 0
    if not events:
        return []
    full = clips_of(run_step(model, path, threads))
    # the amnesic runs: each event's clip from the last hidden latent on, as a clip of its own
    buf = bytearray()
    for n, (cid, r, k, cy, cx) in enumerate(events):
        name = f"amnesic-{n}"
        buf += msgpack.packb({"kind": "clip", "id": name, "source": "occlusion"}, use_bin_type=True)
        for m in clips[cid][r - 1:r]:
            buf += msgpack.packb(dict(m, clip=name, index=r - 1), use_bin_type=True)
        buf += msgpack.packb({"kind": "end", "clip": name, "frames": 1}, use_bin_type=True)
    tmp = path + ".amnesic.tmp"
    with open(tmp, "wb") as f:
        f.write(buf)
    try:
        amn = clips_of(run_step(model, tmp, threads))
    finally:
        os.unlink(tmp)
    buckets = {}
    for n, (cid, r, k, cy, cx) in enumerate(events):
        z = full[cid][0][r][cy - 1:cy + 2, cx - 1:cx + 2]
        e_mem = ((full[cid][1][r][0][cy - 1:cy + 2, cx - 1:cx + 2] - z) ** 2).mean()
        e_amn = ((amn[f"amnesic-{n}"][1][r][0][cy - 1:cy + 2, cx - 1:cx + 2] - z) ** 2).mean()
        b = "1-2" if k <= 2 else "3-5" if k <= 5 else "6-11" if k <= 11 else "12+"
        buckets.setdefault(b, []).append((e_mem, e_amn))
    rows = []
    for b in ["1-2", "3-5", "6-11", "12+"]:
        if b in buckets:
            v = np.array(buckets[b])
            rows.append(f"| {b} | {len(v)} | {v[:, 0].mean():.4f} | {v[:, 1].mean():.4f} | "
                        f"**{v[:, 0].mean() / v[:, 1].mean():.2f}** | {np.mean(v[:, 0] < v[:, 1]):.0%} |")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rollout-context", type=int, default=8)
    ap.add_argument("--pairs")
    ap.add_argument("--occlusion", help="latents with wm-synth's objects, for the memory measurement")
    ap.add_argument("sets", nargs="+")
    a = ap.parse_args()
    horizons = [1, 4, 8, 16]
    teach, roll = [], []
    for spec in a.sets:
        name, path = spec.split("=", 1)
        clips = clips_of(run_step(a.model, path, a.threads))
        teach += teacher_report(name, clips)
        rclips = clips_of(run_step(a.model, path, a.threads, ["--rollout", str(max(horizons)), "--context",
                                                              str(a.rollout_context)]))
        roll += rollout_report(name, rclips, a.rollout_context, horizons)
    print("Teacher mode (next-latent prediction), latent units; baselines with their best per-channel variance:\n")
    print("| set | clips | NLL | NLL no-change | NLL const-velocity | MSE | MSE no-change | MSE const-vel | "
          "MSE moving 2% | no-change | const-vel | mean err²/var | within 1σ / 2σ |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(teach))
    if roll:
        print(f"\nRollouts from {a.rollout_context} real latents: mean squared error of the imagined latent at "
              f"horizon h (in parentheses: repeating the last context latent):\n")
        print("| set | clips | " + " | ".join(f"h={h}" for h in horizons) + " |")
        print("|---|---:|" + "---:|" * len(horizons))
        print("\n".join(roll))
    if a.occlusion:
        rows = occlusion_report(a.model, a.occlusion, a.threads)
        print("\nMemory: where a ball shows again after k frames wholly hidden, the squared error of the pred for "
              "that latent in the 3x3 cells around it, with the clip's past and with only the last hidden latent "
              "as context (state lost):\n")
        print("| hidden frames | events | with memory | without | ratio | memory better |")
        print("|---|---:|---:|---:|---:|---:|")
        print("\n".join(rows) if rows else "| (no ball hidden and shown again in these clips) | | | | | |")
    if a.pairs:
        rows = pairs_report(clips_of(run_step(a.model, a.pairs, a.threads)))
        print("\nMatched wm-synth pairs: share of pairs where the impossible clip is the more surprising, by the "
              "mean and by the peak over the frames from the divergence on of the per-frame NLL (summed over the "
              "grid); a first look, issue 7 has the benchmark:\n")
        print("| category | pairs | by the mean | by the peak |")
        print("|---|---:|---:|---:|")
        print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
