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
  - rollouts: from K real latents, the squared error of the imagined
    latents against the real ones at horizons 1, 4, 8, 16, against
    repeating the last context latent.
With --pairs (wm-synth --pairs | wm-encode-latent), the share of matched
pairs whose impossible clip has the higher mean NLL from the violation on,
per category: a first look at surprise; the benchmark proper is issue 7's.
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
        nll = [gauss_nll((z[t] - preds[t][0]) ** 2, preds[t][1]).mean() for t in range(max(v, 1), len(z))]
        key = (lab["category"], lab["pair"])
        by_pair.setdefault(key, {})[lab["possible"]] = float(np.mean(nll))
    cats = {}
    for (cat, _), d in by_pair.items():
        if True in d and False in d:
            cats.setdefault(cat, []).append(d[False] > d[True])
    rows = [f"| {c} | {len(v)} | {np.mean(v):.0%} |" for c, v in sorted(cats.items())]
    allv = [x for v in cats.values() for x in v]
    if allv:
        rows.append(f"| **all** | {len(allv)} | **{np.mean(allv):.0%}** |")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rollout-context", type=int, default=8)
    ap.add_argument("--pairs")
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
    if a.pairs:
        rows = pairs_report(clips_of(run_step(a.model, a.pairs, a.threads)))
        print("\nMatched wm-synth pairs: share where the impossible clip has the higher mean NLL from the "
              "divergence on (a first look; issue 7 has the benchmark):\n")
        print("| category | pairs | pairwise |")
        print("|---|---:|---:|")
        print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
