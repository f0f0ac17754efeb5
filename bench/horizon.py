#!/usr/bin/python3
"""The coherence horizon of world-model rollouts (make bench-horizon, issue 7).

  bench/horizon.py select --balls N --clips C --context K < SYNTH.wms > T.wms
  bench/horizon.py --truth T.wms --background B.wms --roundtrip R.wms
        --rollout O.wms --context K [--label NAME] [--json FILE]

T: wm-synth's frames (with their ground-truth objects); B: the same clips
drawn with --background-only (same screens, no balls); R: T through
wm-encode-latent | wm-decode-frame (the tokenizer round trip of the true
continuation); O: T through wm-encode-latent | wm-step --rollout N
--context K --drop-rest | wm-decode-frame (K real frames, then N imagined).

select keeps the first C clips of a wm-synth stream whose world holds
exactly N balls (distinct object ids over the clip: wm-synth --balls N
also writes scenes where a ball is never in the world, or one more
appears) and whose every ball shows in at least one of the K context
frames (the model has seen what it must keep).

The horizon of a clip is the number of imagined frames before the first
frame that fails; N when none does.  A frame fails when, for some ball:
  - moved:    the ball is in view (truth: visible, and at least a third of
              its disc shows in the real frame) and the centroid of its
              pixels in the decoded frame is more than its radius r from
              the centroid of its pixels in the real frame (the same point
              as its true centre when it is wholly in view; the same
              detector on both sides when a screen or the frame edge cuts
              it);
  - vanished: the ball is in view and fewer than VANISH of its real pixel
              count show in the decoded frame (this is also how a ball that
              should come out from behind a screen, and does not, fails);
  - appeared: a blob of ball-coloured pixels (at least APPEAR_AREA of the
              smallest ball's disc) where no ball of the truth is (further
              than 2r + 2 from every ball in the world).
Occluded balls (visible false, or too little of them showing) are not
checked for position.

The detector.  A pixel is "of ball b" when it lies more than T_BG levels in
some channel outside the range of the background frame B over the pixel's
3x3 neighbourhood (so a blurred background edge is not taken for a ball:
the real continuation box-blurred 3x3 still reaches N in 39 of 40 clips),
its colour is within
T_COL (RGB distance) of the colour of some pixel of ball b in the real
context frames (all of the clip's real frames if the ball shows too little
in the context) and nearer to that than to the background's colour there,
and nearer to b's colours than to any other ball's.  Ball
b's pixels are looked for within 2r + 2 of its true centre (and, against a
ball of a confusable colour, on b's side of the two).

Scored three ways on the same truth: the model's rollout (O), the detector
ceiling (R from frame K on: the real continuation through the tokenizer;
it should reach N), and the no-change baseline (R's frame K-1 repeated:
what a model that froze the scene would score).
"""
import argparse
import json
import sys

import msgpack
import numpy as np

T_BG = 24          # levels: a pixel differs from the background
T_COL = 40.0       # RGB distance: a pixel has a ball's colour
MIN_PIX_FRAC = 1 / 3  # in view: at least this share of pi r^2 (and MIN_PIX_ABS) shows in the real frame
MIN_PIX_ABS = 6
VANISH = 0.35      # vanished: fewer than this share of the real frame's pixel count
APPEAR_AREA = 0.3  # appeared: a blob of this share of the smallest ball's disc (at least MIN_PIX_ABS)
BG_NEAR = 1        # background range: over the 3x3 neighbourhood
Q = 8              # colour LUT bin width (levels)


def read(path):
    """clip id -> {index: (rgb [H, W, 3] uint8, objects, imagined)}; and the clip order"""
    clips, order = {}, []
    with open(path, "rb") as f:
        for m in msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 30):
            k = m.get("kind")
            if k == "clip":
                if m["id"] not in clips:
                    order.append(m["id"])
                clips.setdefault(m["id"], {})
            elif k == "frame":
                img = np.frombuffer(m["data"], np.uint8).reshape(m["height"], m["width"], 3)
                clips.setdefault(m["clip"], {})[m["index"]] = (img, m.get("objects"), bool(m.get("imagined")))
    return clips, order


def colour_lut(samples):
    """min RGB distance from each colour bin's centre to the samples: [32, 32, 32]"""
    q = np.unique((samples // Q).astype(np.int32), axis=0) * Q + Q / 2.0
    c = (np.arange(256 // Q) * Q + Q / 2.0)
    grid = np.stack(np.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 3)
    best = np.full(len(grid), np.inf)
    for i in range(0, len(q), 64):
        d = np.sqrt(((grid[:, None, :] - q[None, i:i + 64, :]) ** 2).sum(-1)).min(1)
        best = np.minimum(best, d)
    return best.reshape(256 // Q, 256 // Q, 256 // Q)


class Clip:
    def __init__(self, truth, bg, K):
        self.truth, self.bg, self.K = truth, bg, K
        self.T = max(truth) + 1
        img0 = truth[0][0]
        self.H, self.W = img0.shape[:2]
        yy, xx = np.mgrid[0:self.H, 0:self.W]
        self.px, self.py = xx + 0.5, yy + 0.5     # pixel centres
        self.balls = {}                            # id -> r
        for t in range(self.T):
            for o in truth[t][1] or []:
                self.balls[o["id"]] = o["r"]
        self.ids = sorted(self.balls)
        self._bg_range = {}
        self.luts = {}
        for b in self.ids:
            s = self._samples(b, range(K))
            if len(s) < 20:
                s = self._samples(b, range(self.T))
            self.luts[b] = colour_lut(s) if len(s) else np.full((256 // Q,) * 3, np.inf)
        self.confusable = set()
        for b in self.ids:
            s = self._samples(b, range(self.T))
            if not len(s):
                continue
            q = (s // Q).astype(np.int32)
            for c in self.ids:
                if c != b and np.mean(self.luts[c][q[:, 0], q[:, 1], q[:, 2]] < T_COL) >= 0.2:
                    self.confusable.add((b, c))
                    self.confusable.add((c, b))
        self.ref = {t: self.measure(t, truth[t][0]) for t in range(K, self.T)}

    def _objs(self, t):
        return {o["id"]: o for o in (self.truth[t][1] or [])}

    def _samples(self, b, frames):
        out = []
        for t in frames:
            img, _, _ = self.truth[t]
            objs = self._objs(t)
            o = objs.get(b)
            if not o or not o["visible"]:
                continue
            d = np.hypot(self.px - o["x"], self.py - o["y"])
            m = (d <= 0.85 * o["r"]) & (np.abs(img.astype(np.int16) - self.bg[t][0]).max(-1) > T_BG)
            for c, oc in objs.items():
                if c != b:
                    m &= np.hypot(self.px - oc["x"], self.py - oc["y"]) > oc["r"] + 1
            out.append(img[m])
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 3))

    def bg_range(self, t):
        """per pixel and channel, the least and greatest background value over the pixel's neighbourhood
        (BG_NEAR pixels each way): a blurred or slightly shifted background stays inside it"""
        if t not in self._bg_range:
            b = self.bg[t][0].astype(np.float64)
            k = BG_NEAR
            p = np.pad(b, ((k, k), (k, k), (0, 0)), mode="edge")
            win = [p[i:i + self.H, j:j + self.W] for i in range(2 * k + 1) for j in range(2 * k + 1)]
            self._bg_range[t] = (np.min(win, 0), np.max(win, 0))
        return self._bg_range[t]

    def labels(self, t, img):
        """per pixel: index into self.ids of its ball, or -1"""
        q = (img // Q).astype(np.int32)
        d = np.stack([self.luts[b][q[..., 0], q[..., 1], q[..., 2]] for b in self.ids])
        lab = d.argmin(0)
        lo, hi = self.bg_range(t)
        x = img.astype(np.float64)
        diff = x - np.clip(x, lo, hi)
        # of a ball: near its colours, away from the background there, and nearer to the ball than to it
        ok = (d.min(0) < T_COL) & (np.abs(diff).max(-1) > T_BG) & (d.min(0) < np.sqrt((diff ** 2).sum(-1)))
        return np.where(ok, lab, -1)

    def measure(self, t, img):
        """{ball: (pixel count, cx, cy)} for the balls in the world at t, and the stray ball-coloured pixels' worst
        blob (pixel count in a window the size of the smallest ball)"""
        objs = self._objs(t)
        lab = self.labels(t, img)
        out = {}
        near = np.zeros((self.H, self.W), bool)
        for b, o in objs.items():
            d = np.hypot(self.px - o["x"], self.py - o["y"])
            near |= d <= 2 * o["r"] + 2
            win = d <= 2 * o["r"] + 2
            for c, oc in objs.items():
                if (b, c) in self.confusable:
                    win &= d - o["r"] <= np.hypot(self.px - oc["x"], self.py - oc["y"]) - oc["r"]
            m = win & (lab == self.ids.index(b))
            n = int(m.sum())
            out[b] = (n, float(self.px[m].mean()) if n else np.nan, float(self.py[m].mean()) if n else np.nan)
        stray = (lab >= 0) & ~near
        rmin = min(self.balls.values())
        w = max(1, int(round(2 * rmin)) + 1)
        cs = np.pad(stray.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        h, wd = min(w, self.H), min(w, self.W)
        box = cs[h:, wd:] - cs[:-h, wd:] - cs[h:, :-wd] + cs[:-h, :-wd]
        return out, int(box.max()) if box.size else 0

    def check(self, t, img):
        """None when frame t passes, else (reason, ball, detail)"""
        if img is None:
            return ("missing", -1, "no frame")
        ref, _ = self.ref[t]
        got, stray = self.measure(t, img)
        for b, o in self._objs(t).items():
            n_ref, rx, ry = ref[b]
            if not o["visible"] or n_ref < max(MIN_PIX_ABS, MIN_PIX_FRAC * np.pi * o["r"] ** 2):
                continue
            n, cx, cy = got[b]
            if n < VANISH * n_ref:
                return ("vanished", b, f"{n} of {n_ref} pixels")
            e = float(np.hypot(cx - rx, cy - ry))
            if e > o["r"]:
                return ("moved", b, f"off by {e:.1f} px, r {o['r']:.1f}")
        rmin = min(self.balls.values())
        if stray >= max(MIN_PIX_ABS, APPEAR_AREA * np.pi * rmin ** 2):
            return ("appeared", -1, f"{stray} stray pixels")
        return None

    def horizon(self, frames):
        """frames: {t: img} for t >= K; (horizon, first failure or None)"""
        for t in range(self.K, self.T):
            f = self.check(t, frames.get(t))
            if f:
                return t - self.K, (t,) + f
        return self.T - self.K, None


def select(argv):
    ap = argparse.ArgumentParser(prog="horizon.py select")
    ap.add_argument("--balls", type=int, required=True)
    ap.add_argument("--clips", type=int, required=True)
    ap.add_argument("--context", type=int, default=8)
    a = ap.parse_args(argv)
    out = sys.stdout.buffer
    kept, cur = 0, None
    for m in msgpack.Unpacker(sys.stdin.buffer, raw=False, max_buffer_size=1 << 30):
        k = m.get("kind")
        if k == "stream":
            out.write(msgpack.packb(m, use_bin_type=True))
        elif k == "clip":
            cur, ids, seen = [m], set(), set()
        elif cur is not None:
            cur.append(m)
            if k == "frame":
                for o in m.get("objects") or []:
                    ids.add(o["id"])
                    if o["visible"] and m["index"] < a.context:
                        seen.add(o["id"])
            elif k == "end":
                if len(ids) == a.balls and seen == ids and kept < a.clips:
                    out.write(b"".join(msgpack.packb(x, use_bin_type=True) for x in cur))
                    kept += 1
                cur = None
    if kept < a.clips:
        print(f"horizon.py select: only {kept} clips with {a.balls} balls", file=sys.stderr)
        return 2
    return 0


def main():
    if sys.argv[1:2] == ["select"]:
        return select(sys.argv[2:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--truth", required=True)
    ap.add_argument("--background", required=True)
    ap.add_argument("--roundtrip", required=True)
    ap.add_argument("--rollout", required=True)
    ap.add_argument("--context", type=int, default=8)
    ap.add_argument("--label", default="")
    ap.add_argument("--json", help="per-clip results (JSON Lines)")
    a = ap.parse_args()
    truth, order = read(a.truth)
    bg, _ = read(a.background)
    rt, _ = read(a.roundtrip)
    ro, _ = read(a.rollout)
    K = a.context
    res = {"model": [], "ceiling": [], "baseline": []}
    reasons = {"model": {}, "ceiling": {}, "baseline": {}}
    centre_err = []
    jl = open(a.json, "w") if a.json else None
    for cid in order:
        tr = truth[cid]
        c = Clip(tr, bg[cid], K)
        # the detector on the real frames: its centroid against the true centre, for balls inside the frame with at
        # least half their disc showing (a screen may still cut them)
        for t in range(K, c.T):
            for o in tr[t][1] or []:
                if o["visible"] and o["r"] + 1 <= o["x"] <= c.W - o["r"] - 1 and o["r"] + 1 <= o["y"] <= c.H - o["r"] - 1:
                    n, cx, cy = c.ref[t][0][o["id"]]
                    if n >= 0.5 * np.pi * o["r"] ** 2:
                        centre_err.append(np.hypot(cx - o["x"], cy - o["y"]))
        imagined = {t: f[0] for t, f in ro.get(cid, {}).items() if f[2]}
        real_rt = {t: f[0] for t, f in rt.get(cid, {}).items() if t >= K}
        last = rt.get(cid, {}).get(K - 1)
        frozen = {t: last[0] for t in range(K, c.T)} if last else {}
        row = {"clip": cid, "balls": len(c.ids), "frames": c.T - K}
        for name, frames in (("model", imagined), ("ceiling", real_rt), ("baseline", frozen)):
            h, fail = c.horizon(frames)
            res[name].append(h)
            why = fail[1] if fail else "none"
            reasons[name][why] = reasons[name].get(why, 0) + 1
            row[name] = {"horizon": h, "failure": None if not fail else
                         {"frame": fail[0], "reason": fail[1], "ball": fail[2], "detail": fail[3]}}
        if jl:
            jl.write(json.dumps(row) + "\n")
    if jl:
        jl.close()
    N = max((max(truth[c]) + 1 - K for c in order), default=0)
    ce = np.array(centre_err)
    summary = {"label": a.label, "clips": len(order), "rollout": N, "context": K}
    for name in res:
        v = np.array(res[name])
        summary[name] = {"median": float(np.median(v)), "mean": float(v.mean()), "q25": float(np.percentile(v, 25)),
                         "q75": float(np.percentile(v, 75)), "full": int((v == N).sum()),
                         "failures": dict(sorted(reasons[name].items()))}
    summary["detector_centre_error_px"] = {"mean": float(ce.mean()) if ce.size else None,
                                           "p99": float(np.percentile(ce, 99)) if ce.size else None,
                                           "balls": int(ce.size)}
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
