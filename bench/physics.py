#!/usr/bin/python3
"""The physics benchmark's tooling (make bench-physics; not the product path).

  physics.py realpairs [--stride N] [--by-id] OUT.wms STREAM...   matched pairs from real footage
  physics.py report --set NAME=SCORES.jsonl... [--frames PAIRS.wms...]
  physics.py relabel PAIRS.wms SCORES.jsonl   labels onto scores of files
  physics.py restamp PAIRS.wms STREAM.wms > OUT.wms   the same onto a stream

realpairs cuts segments of SEG frames (every STRIDE frames, or N) from each clip of
the frame streams (wm-decode output; in stream order, or by clip id with --by-id)
where something moves, and writes each as a possible clip and an
impossible copy glitched at its middle frame m: `drop` (frames m..m+2 are
skipped), `rewind` (back 4 frames at m), `freeze` (frame m held 3 frames,
then a jump of 6), `swap` (frames m and m+1 exchanged, and m+2 and m+3),
`splice` (from m on, another video's segment).  Labels travel as
`glitch: {category, possible, violation_frame, pair, source}`.

report reads the score JSON Lines of each scored set (the same clips
scored by different models) and the frames of the pairs (for the
model-free baselines: the largest mean absolute frame difference, and the
largest error of constant-velocity extrapolation in pixels,
f_t ~ 2 f_{t-1} - f_{t-2}), and prints per category and overall the
pairwise accuracy (share of pairs whose impossible clip is the less
plausible; a tie counts half) and the single-clip AUROC (impossible against
possible clips over the whole set, no pairing).  Without --frames it
leaves the baselines out.

relabel reads the score rows `pipelines/score` made of the pairs written
as files by `wm-mux -o DIR/c_%03d.EXT PAIRS.wms` (the Nth clip of the
stream is file N) and prints them with the stream's labels added, so
report can pair them.  restamp does the same for the stream wm-decode
made of those files (its Nth clip message gets the Nth clip's labels).
"""
import collections
import json
import re
import sys

import msgpack
import numpy as np

SEG = 16
STRIDE = 4
EXTRA = 4    # source frames beyond SEG that a glitched copy may use
GLITCHES = ["drop", "rewind", "freeze", "swap", "splice"]


def read_clips(path):
    """{clip id: (clip message, [frame arrays])} in order."""
    clips = collections.OrderedDict()
    cur = None
    with open(path, "rb") as f:
        for m in msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 30):
            k = m.get("kind")
            if k == "clip":
                cur = (m, [])
                clips[m["id"]] = cur
            elif k == "frame" and cur is not None:
                ch = 3 if m["format"] == "rgb24" else 1
                cur[1].append(np.frombuffer(m["data"], np.uint8).reshape(m["height"], m["width"], ch))
    return clips


def pack_clip(out, cid, source, frames, labels, fps=(25, 1)):
    h, w, _ = frames[0].shape
    out.write(msgpack.packb({"kind": "clip", "id": cid, "source": source, "fps": list(fps),
                             "width": w, "height": h, "glitch": labels}))
    for i, fr in enumerate(frames):
        out.write(msgpack.packb({"kind": "frame", "clip": cid, "index": i, "pts": i / 25.0, "width": w,
                                 "height": h, "format": "rgb24", "data": fr.tobytes()}))
    out.write(msgpack.packb({"kind": "end", "clip": cid, "frames": len(frames)}))


def realpairs(out_path, streams, stride=STRIDE, by_id=False):
    clips = [(cid, msg, frames) for p in streams for cid, (msg, frames) in read_clips(p).items()]
    if by_id:
        clips.sort(key=lambda c: c[0])
    videos = [(msg.get("source", cid), [f.astype(np.uint8) for f in frames])
              for cid, msg, frames in clips if len(frames) >= SEG + EXTRA]
    # segments with motion (a static shot makes a freeze invisible), SEG + EXTRA
    # source frames each so a glitched copy still has SEG frames
    segs = []
    for vi, (src, frames) in enumerate(videos):
        for s in range(0, len(frames) - (SEG + EXTRA) + 1, stride):
            seg = frames[s:s + SEG + EXTRA]
            motion = np.mean([np.abs(seg[i].astype(np.int16) - seg[i - 1]).mean() for i in range(1, len(seg))])
            if motion > 0.5:
                segs.append((vi, src, s, seg))
    m = SEG // 2
    n = 0
    with open(out_path, "wb") as out:
        out.write(msgpack.packb({"kind": "stream", "version": 1, "producer": "bench/physics.py realpairs"}))
        for k, (vi, src, s, seg) in enumerate(segs):
            g = GLITCHES[k % len(GLITCHES)]
            good = seg[:SEG]
            if g == "drop":
                bad = seg[:m] + seg[m + 3:m + 3 + SEG - m]
            elif g == "rewind":
                bad = seg[:m] + seg[m - 4:m - 4 + SEG - m]
            elif g == "freeze":
                bad = seg[:m] + [seg[m]] * 3 + seg[m + 6:m + 6 + SEG - m - 3]
            elif g == "swap":
                bad = list(seg[:SEG])
                bad[m], bad[m + 1], bad[m + 2], bad[m + 3] = seg[m + 1], seg[m], seg[m + 3], seg[m + 2]
            else:   # splice: another video's segment from m on
                other = next((o for o in segs[k + 1:] + segs[:k] if o[0] != vi), None)
                if other is None:
                    continue
                bad = seg[:m] + other[3][m:SEG]
            bad = bad[:SEG]
            if len(bad) < SEG:
                continue
            lab = {"category": g, "pair": k, "source": src, "start": s}
            pack_clip(out, f"real-{k}-possible", src, good, dict(lab, possible=True, violation_frame=-1))
            pack_clip(out, f"real-{k}-impossible", src, bad, dict(lab, possible=False, violation_frame=m))
            n += 1
    print(f"physics.py: {n} real pairs from {len(videos)} videos ({len(segs)} moving segments)", file=sys.stderr)


def labels_of(row):
    return row.get("synth") or row.get("glitch")


def baselines(frame_paths):
    """{clip id: (max frame difference, max constant-velocity error)}"""
    out = {}
    for p in frame_paths:
        for cid, (msg, frames) in read_clips(p).items():
            f = [x.astype(np.float32) for x in frames]
            fd = max((np.abs(f[i] - f[i - 1]).mean() for i in range(1, len(f))), default=0.0)
            cv = max((np.abs(f[i] - (2 * f[i - 1] - f[i - 2])).mean() for i in range(2, len(f))), default=0.0)
            out[cid] = (fd, cv)
    return out


def auroc(imp, pos):
    """P(implausibility of an impossible clip > that of a possible one), ties half."""
    imp = np.asarray(imp)[:, None]
    pos = np.asarray(pos)[None, :]
    return float((imp > pos).mean() + 0.5 * (imp == pos).mean()) if imp.size and pos.size else float("nan")


def measures(pairs, key):
    """pairs: {(set, category, pair): {possible: value}} of implausibility (higher = less plausible)."""
    res = {}
    cats = sorted({k[1] for k in pairs})
    for cat in cats + ["overall"]:
        ps = [v for k, v in pairs.items() if (cat == "overall" or k[1] == cat) and True in v and False in v]
        if not ps:
            continue
        acc = np.mean([1.0 if p[False] > p[True] else 0.5 if p[False] == p[True] else 0.0 for p in ps])
        res[cat] = (acc, auroc([p[False] for p in ps], [p[True] for p in ps]), len(ps))
    return res


def load_pairs(path):
    """The scores of a JSON Lines file as ({(seed, category, pair): {possible:
    surprise_clip, ("id", possible): clip id}}, clips scored with an error)."""
    pairs = collections.defaultdict(dict)
    errors = 0
    for line in open(path):
        row = json.loads(line)
        lab = labels_of(row)
        if not lab:
            continue
        if "error" in row:
            errors += 1
            continue
        key = (lab.get("seed", "real"), lab["category"], lab["pair"])
        # plausibility is a decreasing function of surprise_clip (of
        # surprise_mean before it was added); ranking by it keeps the order
        # where the logistic saturates in floats
        pairs[key][lab["possible"]] = row.get("surprise_clip", row["surprise_mean"])
        pairs[key][("id", lab["possible"])] = row["clip"]
    return pairs, errors


def report(sets, frame_paths):
    base = baselines(frame_paths)
    columns = []
    for name, path in sets:
        pairs, errors = load_pairs(path)
        columns.append((name, measures(pairs, name), errors))
        if name == sets[0][0] and frame_paths:
            for bi, bname in enumerate(["max frame difference", "max constant-velocity error"]):
                bp = collections.defaultdict(dict)
                for k, v in pairs.items():
                    for poss in (True, False):
                        cid = v.get(("id", poss))
                        if cid in base:
                            bp[k][poss] = base[cid][bi]
                columns.append((bname, measures(bp, bname), 0))
    cats = sorted({c for _, m, _ in columns for c in m if c != "overall"}) + ["overall"]
    print("| category | pairs | " + " | ".join(f"{n}: pairwise / AUROC" for n, _, _ in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for c in cats:
        n = next((m[c][2] for _, m, _ in columns if c in m), 0)
        cells = [f"{m[c][0] * 100:.1f}% / {m[c][1]:.3f}" if c in m else "-" for _, m, _ in columns]
        name = f"**{c}**" if c == "overall" else c
        print(f"| {name} | {n} | " + " | ".join(cells) + " |")
    errs = [f"{n}: {e}" for n, _, e in columns if e]
    if errs:
        print("\nclips scored with an error (left out): " + ", ".join(errs))


def clip_labels(stream):
    """The labels of each clip of a stream, in order."""
    return [{k: m[k] for k in ("synth", "glitch") if k in m}
            for m in msgpack.Unpacker(open(stream, "rb"), raw=False, max_buffer_size=1 << 30)
            if m.get("kind") == "clip"]


def relabel(stream, scores):
    labels = clip_labels(stream)
    for line in open(scores):
        row = json.loads(line)
        m = re.search(r"c_(\d+)\.[^/]*$", row.get("source", ""))
        if not m or int(m.group(1)) >= len(labels):
            raise SystemExit(f"physics.py: {row.get('source')!r} is not one of the {len(labels)} clips of {stream}")
        row.update(labels[int(m.group(1))])
        print(json.dumps(row))


def restamp(stream, decoded):
    labels = clip_labels(stream)
    out, n = sys.stdout.buffer, 0
    for msg in msgpack.Unpacker(open(decoded, "rb"), raw=False, max_buffer_size=1 << 30):
        if msg.get("kind") == "clip":
            if n >= len(labels):
                raise SystemExit(f"physics.py: {decoded} has more clips than the {len(labels)} of {stream}")
            msg.update(labels[n])
            n += 1
        out.write(msgpack.packb(msg, use_bin_type=True))


def main(argv):
    if len(argv) == 4 and argv[1] == "restamp":
        restamp(argv[2], argv[3])
        return 0
    if len(argv) == 4 and argv[1] == "relabel":
        relabel(argv[2], argv[3])
        return 0
    if len(argv) >= 3 and argv[1] == "realpairs":
        stride, by_id, i = STRIDE, False, 2
        while i < len(argv) and argv[i] in ("--stride", "--by-id"):
            if argv[i] == "--stride":
                stride, i = int(argv[i + 1]), i + 2
            else:
                by_id, i = True, i + 1
        if len(argv) - i >= 2:
            realpairs(argv[i], argv[i + 1:], stride, by_id)
            return 0
    if len(argv) >= 2 and argv[1] == "report":
        sets, frames, i = [], [], 2
        while i < len(argv):
            if argv[i] == "--set":
                n, p = argv[i + 1].split("=", 1)
                sets.append((n, p))
                i += 2
            elif argv[i] == "--frames":
                frames.append(argv[i + 1])
                i += 2
            else:
                raise SystemExit(f"physics.py: unknown argument {argv[i]}")
        report(sets, frames)
        return 0
    print(__doc__, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
