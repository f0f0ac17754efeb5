#!/usr/bin/python3
"""An independent client of the wm protocol: reads wm-decode streams with
Debian's python3-msgpack (no libwm code), checks the message sequence and
every key and type docs/protocol.md lists for stream, clip, frame and end,
rebuilds the frames as numpy arrays and compares them with the ffmpeg CLI's
rawvideo of the same input."""
import os
import subprocess
import sys

try:
    import msgpack
    import numpy as np
except ImportError as e:
    print(f"SKIP Debian python3-msgpack / python3-numpy missing ({e.name})")
    sys.exit(77)

ROOT = os.environ.get("WM_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WM_DECODE = os.path.join(ROOT, "bin", "wm-decode")
CHANNELS = {"rgb24": 3, "gray8": 1}
FRAME_KEYS = {"kind", "clip", "index", "pts", "width", "height", "format", "data"}


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def media(name):
    subprocess.run(["bash", os.path.join(ROOT, "tests", "media.sh"), name], check=True)
    return os.path.join(ROOT, "build", "media", name)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def decode(args, want_rc=0):
    p = subprocess.run([WM_DECODE, "-q", *args], capture_output=True)
    if p.returncode != want_rc:
        fail(f"wm-decode {' '.join(args)}: exit {p.returncode}, wanted {want_rc}: {p.stderr.decode()}")
    u = msgpack.Unpacker(raw=False, max_buffer_size=1 << 30)
    u.feed(p.stdout)
    return list(u)


def read_clips(msgs):
    """Checks the sequence stream, (clip, frame..., end)... and every key;
    returns {clip id: (clip message, [frame arrays], [pts], end message)}."""
    if not msgs or msgs[0].get("kind") != "stream":
        fail("the stream does not begin with a stream message")
    s = msgs[0]
    if not (is_int(s.get("version")) and s["version"] >= 1 and isinstance(s.get("producer"), str)):
        fail(f"stream message: {s}")
    if not s["producer"].startswith("wm-decode "):
        fail(f"producer is {s['producer']!r}")
    clips, cur = {}, None
    for m in msgs[1:]:
        if not isinstance(m, dict) or not isinstance(m.get("kind"), str):
            fail(f"not a map with a string kind: {m!r:.80}")
        kind = m["kind"]
        if kind == "clip":
            if cur is not None:
                fail(f"clip {m.get('id')} begins inside clip {cur}")
            if not isinstance(m.get("id"), str) or not isinstance(m.get("source"), str) or m["id"] in clips:
                fail(f"clip id/source: {m}")
            if "error" in m:
                if not isinstance(m["error"], str) or "width" in m:
                    fail(f"failed clip: {m}")
            else:
                fps = m.get("fps")
                if not (isinstance(fps, list) and len(fps) == 2 and all(is_int(x) and x >= 0 for x in fps)):
                    fail(f"clip fps: {fps!r}")
                for k in ("width", "height"):
                    if not (is_int(m.get(k)) and 1 <= m[k] <= 65536):
                        fail(f"clip {k}: {m.get(k)!r}")
            cur = m["id"]
            clips[cur] = (m, [], [], None)
        elif kind == "frame":
            if set(m) != FRAME_KEYS:
                fail(f"frame keys {sorted(m)}, wanted {sorted(FRAME_KEYS)}")
            clip, frames, pts, _ = clips.get(m["clip"], (None, None, None, None))
            if cur is None or m["clip"] != cur:
                fail(f"frame of clip {m['clip']!r} outside it (current {cur!r})")
            if not (is_int(m["index"]) and m["index"] == len(frames)):
                fail(f"frame index {m['index']!r}, wanted {len(frames)}")
            if not isinstance(m["pts"], float):
                fail(f"pts {m['pts']!r} is not a float")
            if m["format"] not in CHANNELS:
                fail(f"format {m['format']!r}")
            w, h, ch = m["width"], m["height"], CHANNELS[m["format"]]
            if (w, h) != (clip["width"], clip["height"]):
                fail(f"frame {w}x{h} in a {clip['width']}x{clip['height']} clip")
            if not isinstance(m["data"], bytes) or len(m["data"]) != w * h * ch:
                fail(f"data is {len(m['data'])} bytes, {w}x{h} {m['format']} needs {w * h * ch}")
            frames.append(np.frombuffer(m["data"], np.uint8).reshape(h, w, ch))
            pts.append(m["pts"])
        elif kind == "end":
            if m.get("clip") != cur or not is_int(m.get("frames")):
                fail(f"end: {m}")
            clip, frames, pts, _ = clips[cur]
            if m["frames"] != len(frames):
                fail(f"end says {m['frames']} frames, the clip had {len(frames)}")
            if ("error" in m) != ("error" in clip):
                fail(f"clip and end disagree about the error: {clip} / {m}")
            clips[cur] = (clip, frames, pts, m)
            cur = None
        else:
            fail(f"unexpected kind {kind!r} from wm-decode")
    if cur is not None:
        fail(f"clip {cur} has no end")
    return clips


def ffmpeg_frames(path, w, h, pix, channels):
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-vf", f"scale={w}:{h}:flags=bicubic",
                          "-f", "rawvideo", "-pix_fmt", pix, "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, channels)


def main():
    if not os.access(WM_DECODE, os.X_OK):
        fail(f"{WM_DECODE} is not built")
    h264, motion, odd, bad = media("h264.mp4"), media("motion.mov"), media("odd.mp4"), media("audio_only.m4a")

    # three inputs, the second bad: the sequence holds, the good clips are whole
    clips = read_clips(decode(["--size", "64x48", "--fit", "stretch", h264, bad, odd], want_rc=2))
    if list(clips) != ["0", "1", "2"]:
        fail(f"clip ids {list(clips)}")
    if clips["1"][0]["source"] != bad or "no video stream" not in clips["1"][0]["error"]:
        fail(f"bad clip: {clips['1'][0]}")
    for cid, path, n in (("0", h264, 60), ("2", odd, 25)):
        clip, frames, pts, end = clips[cid]
        if clip["source"] != path or len(frames) != n:
            fail(f"clip {cid}: {clip['source']} with {len(frames)} frames")
        if any(b <= a for a, b in zip(pts, pts[1:])):
            fail(f"clip {cid}: pts not increasing")
        want = ffmpeg_frames(path, 64, 48, "rgb24", 3)
        if want.shape != np.stack(frames).shape or not np.array_equal(np.stack(frames), want):
            fail(f"clip {cid}: frames differ from the ffmpeg CLI's {want.shape}")
    print("ok - 3 inputs: stream, clip/frame.../end per input, the bad one with error; frames = ffmpeg's")

    # native size (BT.709 real footage) and gray
    clips = read_clips(decode(["--frames", "30", motion]))
    clip, frames, pts, end = clips["0"]
    if (clip["width"], clip["height"], clip["fps"]) != (568, 320, [30, 1]) or len(frames) != 30:
        fail(f"motion.mov clip: {clip}, {len(frames)} frames")
    want = ffmpeg_frames(motion, 568, 320, "rgb24", 3)[:30]
    if not np.array_equal(np.stack(frames), want):
        fail("motion.mov: frames differ from the ffmpeg CLI's")
    if abs(pts[1] - pts[0] - 1 / 30) > 1e-6:
        fail(f"motion.mov pts step {pts[1] - pts[0]}")
    clips = read_clips(decode(["--gray", "--size", "40x30", "--fit", "stretch", h264]))
    frames = np.stack(clips["0"][1])
    if frames.shape != (60, 30, 40, 1) or not np.array_equal(frames, ffmpeg_frames(h264, 40, 30, "gray", 1)):
        fail(f"gray frames {frames.shape} differ from the ffmpeg CLI's")
    print("ok - native-size rgb24 and gray8 frames rebuilt with numpy equal ffmpeg's")


if __name__ == "__main__":
    main()
