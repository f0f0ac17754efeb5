#!/usr/bin/env bash
# The hostile-input matrix (issue 10; the table is in docs/benchmarks.md,
# Reliability): payloads that lie, shapes that overflow, zero and negative
# sizes, NaN/Inf latents, unknown dtypes and kinds, 20000x20000 pictures,
# a video that changes size, empty and unterminated clips, a model of
# another architecture, a full disk and a reader that goes away.  Each case
# checks the exit status, the one line on stderr (naming the file and the
# clip, frame or byte offset) and that the complete output before the
# damage is kept.  The model is the fuzz corpus's tiny one (tokenizer and
# dynamics, 4 latent channels).
source "$(dirname "$0")/lib.sh"
MODEL="$WM_ROOT/tests/fuzz/corpus_safetensors/model.st"
export WM_MODEL=$MODEL
PY=/usr/bin/python3

$PY - "$T" <<'EOF'
import struct, sys
import msgpack, numpy as np
t = sys.argv[1]
P = lambda m: msgpack.packb(m, use_bin_type=True)
def clip(cid): return {"kind": "clip", "id": cid, "source": "hostile", "fps": [25, 1], "width": 8, "height": 8}
def frame(cid, i, w=8, h=8, data=None):
    return {"kind": "frame", "clip": cid, "index": i, "pts": i / 25, "width": w, "height": h, "format": "rgb24",
            "data": bytes([40 * i]) * (w * h * 3) if data is None else data}
def latent(cid, i, shape=(2, 2, 4), dtype="f32", data=None, bad=None):
    z = np.full(int(np.prod(shape)) if data is None else 0, 0.1 * i, "<f4")
    if bad is not None: z[3] = bad
    return {"kind": "latent", "clip": cid, "index": i, "pts": i / 25, "shape": list(shape), "dtype": dtype,
            "data": (z.astype("<f2") if dtype == "f16" else z).tobytes() if data is None else data}
def end(cid, n): return {"kind": "end", "clip": cid, "frames": n}
def write(name, *parts): open(f"{t}/{name}", "wb").write(b"".join(parts))
# every damaged stream starts with these complete messages
good = P(clip("g")) + P(frame("g", 0)) + P(frame("g", 1))
write("good.wm", good)
write("lie.wm", good, P(latent("g", 0, data=bytes(12))))
# a bin32 header claiming 1.2 GB of pixels, then the stream ends
big = {"kind": "frame", "clip": "g", "index": 2, "pts": 0.08, "width": 20000, "height": 20000, "format": "rgb24"}
write("frame20k.wm", good, bytes([0x80 | (len(big) + 1)]), *(P(k) + P(v) for k, v in big.items()),
      P("data"), b"\xc6", struct.pack(">I", 20000 * 20000 * 3), bytes(64))
write("overflow.wm", good, P(latent("g", 0, shape=(1 << 30, 1 << 30, 1 << 30), data=b"")))
write("huge_dim.wm", good, P(latent("g", 0, shape=(1 << 62, 2), data=b"")))
write("zero_dim.wm", good, P(latent("g", 0, shape=(0, 2, 4), data=b"")))
write("neg_dim.wm", good, P(latent("g", 0, shape=(-1, 2, 4), data=b"")))
write("zero_width.wm", good, P(frame("g", 2, w=0, data=b"")))
write("neg_width.wm", good, P(frame("g", 2, w=-8, data=b"")))
write("dtype.wm", good, P(latent("g", 0, dtype="f64", data=bytes(128))))
write("kind.wm", good, P({"kind": "mystery", "clip": "g", "x": [1, {"y": None}]}), P(end("g", 2)))
def lclip(cid, n, bad_at=None, bad=np.nan, dtype="f32"):
    return b"".join([P(clip(cid))] + [P(latent(cid, i, dtype=dtype, bad=bad if i == bad_at else None))
                                     for i in range(n)] + [P(end(cid, n))])
write("naninf.wm", lclip("ok1", 3), lclip("nan", 4, 1), lclip("inf", 4, 2, np.inf), lclip("h16", 2, 0, -np.inf, "f16"),
      lclip("ok2", 3))
write("zeroclip.wm", P(clip("z")), P(end("z", 0)), good, P(end("g", 2)))
write("noend.wm", good)
EOF

# pass_kept OUT: OUT is exactly the complete messages before the damage
pass_kept() { cmp -s "$1" "$T/good.wm" || fail "the complete messages before the damage were not passed through"; }
# hostile NAME PATTERN: wm-cat --pass exits 2 with one line naming the file and offset, keeps good.wm
hostile() {
    expect_exit 2 wm-cat --pass "$T/$1.wm"
    expect_err "^wm-cat: $T/$1\.wm: byte offset [0-9]+ \(message 3\): $2"
    pass_kept "$T/out"
}

# --- payloads that lie, overflowing and degenerate shapes, unknown dtypes
hostile lie 'latent: "data" is 12 bytes, shape and dtype need 64'
ok "payload size that lies (12 bytes for a 2x2x4 f32 latent): exit 2, complete messages kept"
hostile frame20k 'message larger than the size cap'
expect_exit 2 wm-cat --pass --max-message 2G "$T/frame20k.wm"
expect_err "$T/frame20k\.wm: truncated stream.*byte offset"
pass_kept "$T/out"
ok "a 20000x20000 frame message: refused by the cap before allocating (and truncated under a 2G cap)"
hostile overflow 'latent: shape product overflows'
hostile huge_dim 'latent: shape\[0\] must be an integer in \[1, 1073741824\]'
ok "shapes whose product overflows int64: exit 2"
hostile zero_dim 'latent: shape\[0\] must be an integer'
hostile neg_dim 'latent: shape\[0\] must be an integer'
hostile zero_width 'frame: "width" must be an integer in \[1, 65536\]'
hostile neg_width 'frame: "width" must be an integer in \[1, 65536\]'
ok "zero and negative dimensions (latent shape, frame width): exit 2"
hostile dtype 'latent: "dtype" must be "f32" or "f16"'
# the same damage reaches the model filters as bad input too
expect_exit 2 wm-step -q "$T/dtype.wm"
expect_err "^wm-step: $T/dtype\.wm: byte offset [0-9]+ \(message 3\)"
ok "unknown dtype: exit 2 (wm-cat, wm-step)"
for f in "wm-cat --pass" "wm-encode-latent" "wm-step -q"; do
    $f "$T/kind.wm" | wm-cat --kind mystery > "$T/kind.json" || fail "$f: unknown kind"
    grep -qx '{"kind":"mystery","clip":"g","x":\[1,{"y":null}\]}' "$T/kind.json" || fail "$f: unknown kind changed"
done
ok "unknown kinds pass through wm-cat, wm-encode-latent and wm-step unchanged"

# --- NaN and Inf: the clip ends with an error, the next clips go on, exit 0
for b in 1 3; do
    expect_exit 0 wm-step -q --batch $b "$T/naninf.wm"
    [ ! -s "$T/err" ] || fail "NaN: stderr is not empty"
    wm-cat "$T/out" | jq -e -s '
        ([.[] | select(.kind == "end" and .error) | [.clip, .error]] ==
         [["nan", "wm-step: latent 1 has NaN or Inf values"], ["inf", "wm-step: latent 2 has NaN or Inf values"],
          ["h16", "wm-step: latent 0 has NaN or Inf values"]]) and
        ([.[] | select(.kind == "pred" and .clip == "ok2")] | length == 3) and
        ([.[] | select(.kind == "pred" and .clip == "nan")] | length == 1) and
        ([.[] | select(.kind == "latent")] | length == 16)' > /dev/null || fail "NaN/Inf clips (--batch $b)"
done
ok "NaN and Inf latents (f32, f16): the clip ends with an error naming the latent, the next clip is predicted, exit 0"

# --- real pictures of 20000x20000 and 16000x16000 (8-bit gray PNG, made
# row by row: a few MB on disk, bounded memory here)
$PY - "$T" <<'EOF'
import struct, sys, zlib
def png(path, side):
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    z = zlib.compressobj(6)
    row = b"\0" + bytes(range(256)) * (side // 256) + bytes(side % 256)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                           + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
png(sys.argv[1] + "/20k.png", 20000)
png(sys.argv[1] + "/16k.png", 16000)
EOF
rss() { [ "$(tail -n 1 "$T/rss")" -lt 1000000 ] || fail "$1: $(tail -n 1 "$T/rss") KB resident"; }
expect_exit 2 /usr/bin/time -f %M -o "$T/rss" wm-decode --size 64x64 "$T/20k.png"
expect_err "^wm-decode: $T/20k\.png: the video size is unknown"
rss 20k.png
wm-cat "$T/out" | jq -e -s '[.[].kind] == ["stream", "clip", "end"] and (.[2].error | test("20k.png"))' > /dev/null ||
    fail "20k.png: the clip does not end with the error"
expect_exit 0 /usr/bin/time -f %M -o "$T/rss" wm-decode --size 64x64 "$T/16k.png"
rss 16k.png
[ "$(wm-cat --stats "$T/out" | jq -c '[.frames, .width, .height]')" = "[1,64,64]" ] || fail "16k.png --size 64x64"
expect_exit 2 wm-decode "$T/16k.png"
expect_err "^wm-decode: $T/16k\.png: 16000x16000 rgb24 frames of 768000000 bytes do not fit a message"
ok "a 20000x20000 PNG: exit 2, one line (FFmpeg refuses it); 16000x16000 scales to 64x64 under 1 GB, or is refused whole"

# --- a video whose frame size changes mid-stream: every frame at the first size
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
ff -f lavfi -i testsrc2=size=64x48:rate=25 -frames:v 10 -c:v libx264 -pix_fmt yuv420p "$T/a.ts"
ff -f lavfi -i testsrc2=size=96x80:rate=25 -frames:v 10 -c:v libx264 -pix_fmt yuv420p "$T/b.ts"
ff -i "concat:$T/a.ts|$T/b.ts" -c copy "$T/resize.ts"
expect_exit 0 wm-decode "$T/resize.ts"
[ "$(wm-cat --kind frame "$T/out" | jq -c '[.width, .height]' | sort | uniq -c | tr -s ' ')" = " 20 [64,48]" ] ||
    fail "size change: frames are not all 64x48"
ok "a video changing from 64x48 to 96x80 mid-stream: 20 frames, all scaled to the clip's 64x48, exit 0"

# --- a video cut short whose index comes first (MP4 faststart): FFmpeg's
# demuxer ends quietly at the cut; the frames before it come out, then exit 2
ff -f lavfi -i testsrc2=size=160x120:rate=25 -frames:v 30 -g 10 -c:v libx264 -pix_fmt yuv420p -movflags +faststart "$T/fs.mp4"
head -c $(( $(stat -c %s "$T/fs.mp4") * 2 / 3 )) "$T/fs.mp4" > "$T/fs_cut.mp4"
expect_exit 2 wm-decode "$T/fs_cut.mp4"
expect_err "^wm-decode: $T/fs_cut\.mp4: truncated: the index lists frame data up to byte [0-9]+, the file ends at [0-9]+$"
n=$(wm-cat --stats "$T/out" | jq '.frames')
[ "$n" -gt 5 ] && [ "$n" -lt 30 ] || fail "cut MP4: $n frames before the cut"
wm-cat --kind end "$T/out" | jq -e '.error | test("truncated")' > /dev/null || fail "cut MP4: the end has no error"
ok "an MP4 cut short (index first): the $n frames before the cut, the clip's end and exit 2 say truncated"

# --- a clip with zero frames, and a stream that ends without end
expect_exit 0 wm-encode-latent "$T/zeroclip.wm"
mv "$T/out" "$T/zeroclip_lat.wm"
expect_exit 0 wm-step -q "$T/zeroclip_lat.wm"
[ "$(wm-cat --stats "$T/out" | jq -c '[.clip, .complete, .latents, .preds]' | tr '\n' ' ')" = \
  '["z",true,0,0] ["g",true,2,2] ' ] || fail "zero-frame clip through the model filters"
mkdir "$T/mux"
expect_exit 0 wm-mux -o "$T/mux/c_%03d.mkv" "$T/zeroclip.wm"
[ "$(ls "$T/mux")" = "c_001.mkv" ] || fail "zero-frame clip: wm-mux wrote $(ls "$T/mux")"
ok "a clip with zero frames passes wm-encode-latent and wm-step (exit 0); wm-mux writes no file for it"
expect_exit 0 wm-step -q <(wm-encode-latent "$T/noend.wm")
[ "$(wm-cat --stats "$T/out" | jq -c '[.complete, .latents, .preds]')" = "[false,2,2]" ] || fail "noend: wm-step"
expect_exit 0 wm-mux -o "$T/noend.mkv" "$T/noend.wm"
[ "$(ffprobe -v error -count_frames -show_entries stream=nb_read_frames -of csv=p=0 "$T/noend.mkv")" = 2 ] ||
    fail "noend: the muxed file does not have its 2 frames"
ok "a stream that ends without end: its messages are processed and the file finalised, exit 0"
# a stream cut inside a message: the complete latents are predicted first
wm-encode-latent "$T/good.wm" > "$T/lat.wm"
head -c $(( $(stat -c %s "$T/lat.wm") - 10 )) "$T/lat.wm" > "$T/cut.wm"
expect_exit 2 wm-step -q "$T/cut.wm"
expect_err "^wm-step: $T/cut\.wm: truncated stream.*byte offset [0-9]+"
[ "$(wm-cat --stats "$T/out" | jq -c '[.latents, .preds]')" = "[1,1]" ] || fail "cut: the complete latent was not kept"
ok "a stream cut inside a latent: exit 2 with the offset, the complete latent and its pred kept"

# --- a model file of another architecture: exit 1 (a usage error), one line naming the file and tensor
$PY - "$MODEL" "$T" <<'EOF'
import json, struct, sys
src, t = sys.argv[1:3]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
def save(name, h, data):
    hb = json.dumps(h).encode()
    open(f"{t}/{name}", "wb").write(struct.pack("<Q", len(hb)) + hb + data)
h, data = json.loads(b[8:8 + n]), b[8 + n:]
for name in ("tokenizer.enc.in.weight", "dynamics.gru0.x.weight"):   # same bytes, transposed layout
    s = h[name]["shape"]; h[name]["shape"] = [s[3], s[1], s[2], s[0]]
save("shape.st", h, data)
h, data = json.loads(b[8:8 + n]), b[8 + n:]
for name in ("tokenizer.enc.out.bias", "dynamics.head.bias"):        # gone, with its bytes
    lo, hi = h.pop(name)["data_offsets"]
    data = data[:lo] + data[hi:]
    for v in h.values():
        if "data_offsets" in v and v["data_offsets"][0] >= hi:
            v["data_offsets"] = [o - (hi - lo) for o in v["data_offsets"]]
save("missing.st", h, data)
EOF
for f in wm-encode-latent wm-step; do
    p=tokenizer; [ $f = wm-step ] && p=dynamics
    expect_exit 1 $f -q --model "$T/shape.st" "$T/good.wm"
    expect_err "^$f: $T/shape\.st: tensor \"$p\.[a-z0-9.]+weight\" is [0-9x]+, the architecture needs [0-9x]+$"
    expect_exit 1 $f -q --model "$T/missing.st" "$T/good.wm"
    expect_err "^$f: $T/missing\.st: no tensor \"$p\.[a-z.]+bias\"$"
    expect_exit 1 $f -q --model /etc/passwd "$T/good.wm"
    expect_err "^$f: /etc/passwd: header length [0-9]+ is over"
done
ok "a model of another architecture (wrong shape, missing tensor, not safetensors): exit 1 naming file and tensor"

# --- a full disk: exit 3, one line with the reason; a reader that goes away: exit 0, silent
wm-encode-latent "$T/good.wm" > "$T/lat.wm"
for f in "wm-cat --pass $T/good.wm" "wm-cat $T/good.wm" "wm-cat --stats $T/good.wm" "wm-decode $T/resize.ts" \
         "wm-synth --clips 1" "wm-encode-latent $T/good.wm" "wm-step -q $T/lat.wm" "wm-decode-frame $T/lat.wm"; do
    set +e; $f > /dev/full 2> "$T/err"; rc=$?; set -e
    [ $rc -eq 3 ] || fail "$f > /dev/full: exit $rc"
    expect_err "^${f%% *}: stdout: write failed: No space left on device$"
done
ok "writing to /dev/full: exit 3 and 'stdout: write failed: No space left on device' (8 filter modes)"
wm-synth --clips 2 --frames 32 > "$T/s.wm"
wm-encode-latent "$T/s.wm" > "$T/s_lat.wm"
for f in "wm-cat --pass $T/s.wm" "wm-cat --data $T/s.wm" "wm-decode $T/resize.ts" "wm-synth --clips 2" \
         "wm-encode-latent $T/s.wm" "wm-step -q $T/s_lat.wm" "wm-decode-frame $T/s_lat.wm"; do
    set +e; $f 2> "$T/err" | head -c 1 > /dev/null; rc=${PIPESTATUS[0]}; set -e
    [ "$rc" -eq 0 ] && [ ! -s "$T/err" ] || fail "$f | head -c 1: exit $rc, stderr: $(cat "$T/err")"
done
ok "a reader that goes away (EPIPE): exit 0 and nothing on stderr (7 filter modes)"
