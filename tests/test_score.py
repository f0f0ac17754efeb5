#!/usr/bin/python3
"""wm-score-coherence with the shipped model on wm-synth pairs: scores are
deterministic; a planted teleport gets its peak within 2 frames of the
violation, and the peak (and the --heatmap overlay) within one latent cell
of the ball; plausibility stays in [0, 1], also for a randomly initialised
model; the stream passes through with a score right before each end."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import msgpack
import numpy as np

ROOT = os.environ.get("WM_ROOT", os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "bin")


def run(cmd, **kw):
    r = subprocess.run(cmd, shell=True, capture_output=True, env=dict(os.environ, PATH=BIN + ":" + os.environ["PATH"]),
                       **kw)
    if r.returncode != 0:
        raise SystemExit(f"FAIL `{cmd}` exit {r.returncode}: {r.stderr.decode()[-500:]}")
    return r.stdout


def fail(msg):
    raise SystemExit("FAIL " + msg)


def has_dynamics():
    r = subprocess.run([os.path.join(BIN, "wm-step")], input=b"", capture_output=True)
    return r.returncode == 0


def main():
    if not has_dynamics():
        fail("the model has no dynamics part (the shipped one must have it)")
    tmp = tempfile.mkdtemp()
    try:
        pairs = os.path.join(tmp, "pairs.wms")
        run(f"wm-synth -q --pairs 3 --seed 4242 --category continuity > {pairs}")
        chain = f"wm-encode-latent -q --keep-frames {pairs} | wm-step -q"
        a = run(chain + " | wm-score-coherence --json")
        b = run(chain + " | wm-score-coherence --json")
        if a != b:
            fail("two runs gave different scores")
        rows = [json.loads(x) for x in a.decode().splitlines()]
        if len(rows) != 6:
            fail(f"{len(rows)} rows for 6 clips")
        print("ok deterministic: two runs, the same bytes")

        # ground truth: the ball's position in each clip's frames
        truth = {}
        cur = None
        for m in msgpack.Unpacker(open(pairs, "rb"), raw=False, max_buffer_size=1 << 30):
            if m["kind"] == "clip":
                cur = truth.setdefault(m["id"], {})
            elif m["kind"] == "frame":
                cur[m["index"]] = {o["id"]: o for o in m.get("objects", [])}
        for r in rows:
            if not 0 <= r["plausibility"] <= 1:
                fail(f"{r['clip']}: plausibility {r['plausibility']} outside [0, 1]")
            s = r["synth"]
            if s["possible"]:
                continue
            v = s["violation_frame"]
            if abs(r["peak_frame"] - v) > 2:
                fail(f"{r['clip']}: peak at frame {r['peak_frame']}, the teleport at {v}")
            twin = r["clip"].replace("impossible", "possible")
            cell = 64 / r["latent"][1]
            near = []
            for clip in (r["clip"], twin):   # where the ball is, and where it should have been
                o = truth[clip][r["peak_frame"]].get(s["ball"])
                if o:
                    near.append(max(abs(o["x"] - r["peak_xy"][0]), abs(o["y"] - r["peak_xy"][1])))
            if not near or min(near) > cell + 0.5 * cell:
                fail(f"{r['clip']}: peak at {r['peak_xy']}, the ball {near} px away (one cell is {cell} px)")
            print(f"ok {r['clip']}: peak frame {r['peak_frame']} (teleport at {v}), "
                  f"{min(near):.1f} px from the ball")
        imp = [r for r in rows if not r["synth"]["possible"]]
        pos = [r for r in rows if r["synth"]["possible"]]
        if not all(i["plausibility"] < p["plausibility"] for i, p in zip(imp, pos)):
            fail("a teleport clip is not less plausible than its twin")
        print("ok every teleport clip is less plausible than its possible twin")

        # --heatmap: overlays replace the frames, hottest at the ball
        hm = run(chain + " | wm-score-coherence --heatmap")
        frames, scores, kinds = {}, 0, []
        up = msgpack.Unpacker(raw=False, max_buffer_size=1 << 30)
        up.feed(hm)
        for m in up:
            kinds.append(m["kind"])
            if m["kind"] == "frame":
                if not m.get("heatmap"):
                    fail("a frame without heatmap: true in --heatmap output")
                frames[(m["clip"], m["index"])] = np.frombuffer(m["data"], np.uint8).reshape(m["height"], m["width"], 3)
            scores += m["kind"] == "score"
        if scores != 6 or len(frames) != 6 * 32:
            fail(f"--heatmap: {scores} scores, {len(frames)} overlay frames (want 6 and 192)")
        orig = {}
        for m in msgpack.Unpacker(open(pairs, "rb"), raw=False, max_buffer_size=1 << 30):
            if m["kind"] == "frame":
                orig[(m["clip"], m["index"])] = np.frombuffer(m["data"], np.uint8).reshape(64, 64, 3)
        for r in imp:
            k = (r["clip"], r["peak_frame"])
            cx, cy = r["peak_xy"]
            diff = np.abs(frames[k].astype(int) - orig[k]).sum(-1)
            at_peak = diff[cy - 2:cy + 2, cx - 2:cx + 2].mean()
            if at_peak < 100 or diff.mean() >= at_peak:
                fail(f"{r['clip']}: the overlay changes the peak cell by {at_peak:.0f} levels "
                     f"(the frame by {diff.mean():.0f} on average)")
        print("ok --heatmap: one overlay per frame, the peak cell lit up")

        # the stream passes through, a score right before each end
        st = run(chain + " | wm-score-coherence")
        up = msgpack.Unpacker(raw=False, max_buffer_size=1 << 30)
        up.feed(st)
        ms = list(up)
        for i, m in enumerate(ms):
            if m["kind"] == "end" and ms[i - 1]["kind"] != "score":
                fail("an end without its score right before it")
        if sum(m["kind"] == "latent" for m in ms) != 192 or sum(m["kind"] == "pred" for m in ms) != 192:
            fail("latents and predictions did not pass through")
        print("ok pass-through: latents, preds and frames kept, a score before each end")

        # a randomly initialised model of the same architecture: still in [0, 1]
        model = os.path.join(ROOT, "models", "wm-default.safetensors")
        rnd = os.path.join(tmp, "random.safetensors")
        shutil.copy(model, rnd)
        run(f"wm-synth -q --clips 2 --seed 1 | wm-encode-latent -q > {tmp}/n.wms && "
            f"wm-train dynamics -q --model {rnd} --checkpoint {tmp}/r.ckpt --steps 0 --seed 3 {tmp}/n.wms")
        rr = run(f"wm-encode-latent -q --model {rnd} {pairs} | wm-step -q --model {rnd} | wm-score-coherence --json")
        for line in rr.decode().splitlines():
            p = json.loads(line)["plausibility"]
            if not 0 <= p <= 1:
                fail(f"random model: plausibility {p}")
        print("ok plausibility in [0, 1] with a random model too")
    finally:
        shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
