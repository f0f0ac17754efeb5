#!/usr/bin/env bash
# wm-train tokenizer, wm-encode-latent and wm-decode-frame end to end on a
# tiny model trained here in about a second: the loss falls by a factor of
# 3 or more, runs are deterministic, an interrupted run resumes to the same
# model, streams keep their shape, order and pass-through messages, and bad
# frames, latents and model files are refused with one clear line.
source "$(dirname "$0")/lib.sh"
command -v wm-synth >/dev/null || skip "wm-synth is not built"

wm-synth --clips 2 --frames 8 --seed 3 > "$T/train.wm"
tiny=(--steps 60 --batch 4 --hidden 16 --blocks 1 --crop 32x32 --seed 5)

# --- from random weights, training lowers the loss by 3x or more (first
# step against the mean of the last 10); the default start, the data's PCA
# code, begins far lower still
losses() { awk '/ step /{ for (i = 1; i <= NF; i++) if ($i == "loss") print $(i + 1) }' "$1"; }
wm-train tokenizer --model "$T/rand.safetensors" "${tiny[@]}" --random-init --log-every 0 "$T/train.wm" 2> "$T/rlog0"
losses "$T/rlog0" | awk '{ l[++n] = $1 } END { for (i = n - 9; i <= n; i++) s += l[i]; last = s / 10
    printf "loss %.4f -> %.4f (x%.1f)\n", l[1], last, l[1] / last; exit !(n == 60 && l[1] >= 3 * last) }' \
    > "$T/factor" || { cat "$T/factor" "$T/rlog0"; fail "60 steps did not lower the loss 3x"; }
ok "training from random weights lowers the loss: $(cat "$T/factor")"
wm-train tokenizer --model "$T/m.safetensors" "${tiny[@]}" --log-every 0 "$T/train.wm" 2> "$T/log"
grep -q "wrote $T/m.safetensors" "$T/log" || { cat "$T/log"; fail "no model written"; }
[ ! -e "$T/m.safetensors.ckpt" ] || fail "the checkpoint was not removed after a finished run"
r1=$(losses "$T/rlog0" | head -1); p1=$(losses "$T/log" | head -1)
awk -v r="$r1" -v p="$p1" 'BEGIN { exit !(p * 3 <= r) }' || fail "the PCA start ($p1) is not 3x below the random start ($r1)"
ok "the PCA start begins at loss $p1 (random: $r1)"

# --- deterministic for a seed; another seed differs
wm-train tokenizer -q --model "$T/m2.safetensors" "${tiny[@]}" "$T/train.wm"
cmp -s "$T/m.safetensors" "$T/m2.safetensors" || fail "two runs with one seed differ"
wm-train tokenizer -q --model "$T/m3.safetensors" "${tiny[@]}" --seed 6 "$T/train.wm"
! cmp -s "$T/m.safetensors" "$T/m3.safetensors" || fail "another seed gave the same model"
ok "deterministic for a seed"

# --- interrupted, then resumed: the same model as an uninterrupted run
long=(--steps 400 --batch 4 --hidden 16 --blocks 1 --crop 32x32 --seed 5)
wm-train tokenizer -q --model "$T/full.safetensors" "${long[@]}" "$T/train.wm"
expect_resume tokenizer "step 20/" 200 "" "${long[@]}" "$T/train.wm"
expect_exit 1 wm-train tokenizer -q --model "$T/r.safetensors" "${long[@]}" --resume "$T/train.wm"
expect_err "--resume: no checkpoint"
# a checkpoint from another run is refused, naming what differs
wm-train tokenizer --model "$T/x.safetensors" "${long[@]}" --log-every 0 "$T/train.wm" 2> "$T/xlog" &
pid=$!
for _ in $(seq 200); do grep -q "step 20/" "$T/xlog" 2>/dev/null && break; sleep 0.02; done
kill -INT $pid 2>/dev/null || true
set +e; wait $pid; rc=$?; set -e
if [ $rc -eq 130 ]; then
    expect_exit 1 wm-train tokenizer -q --model "$T/x.safetensors" "${long[@]}" --lr 0.0005 --resume "$T/train.wm"
    expect_err "another run .*lr="
    ok "a checkpoint of another run is refused: $(cat "$T/err")"
fi

# --- encode: frame -> latent [H/4, W/4, C] with clip, index, pts and extras; the rest passes
export WM_MODEL="$T/m.safetensors"
{ cat "$T/train.wm"; printf '\x82\xa4kind\xa7unknown\xa1x\x01'; } > "$T/in.wm"
wm-encode-latent < "$T/in.wm" > "$T/lat.wm"
wm-cat "$T/in.wm" | jq -c 'select(.kind != "frame")' > "$T/others_in"
wm-cat "$T/lat.wm" | jq -c 'select(.kind != "latent")' > "$T/others_out"
cmp -s "$T/others_in" "$T/others_out" || { diff "$T/others_in" "$T/others_out" | head; fail "other messages changed"; }
wm-cat "$T/lat.wm" | jq -e -s '[.[] | select(.kind == "latent")] | length == 16 and
    all(.shape == [16, 16, 8] and .dtype == "f32" and (.objects | type) == "array" and .pts >= 0)' > /dev/null ||
    fail "latents lack shape [16,16,8], dtype, pts or the frame's extra keys"
wm-cat "$T/in.wm" | jq -c 'select(.kind == "frame") | [.clip, .index, .pts]' > "$T/ids_in"
wm-cat "$T/lat.wm" | jq -c 'select(.kind == "latent") | [.clip, .index, .pts]' > "$T/ids_out"
cmp -s "$T/ids_in" "$T/ids_out" || fail "latents do not keep clip, index and pts in order"
ok "encode: 16 frames -> 16 latents [16,16,8]; stream, clip, end and unknown kinds pass unchanged"

# --keep-frames: each frame, then its latent; batching does not change the bytes
wm-encode-latent --keep-frames < "$T/in.wm" > "$T/both.wm"
wm-cat "$T/both.wm" | jq -r 'select(.kind == "frame" or .kind == "latent") | .kind' | paste -sd' ' |
    grep -qx "$(for _ in $(seq 16); do printf 'frame latent '; done | sed 's/ $//')" || fail "--keep-frames order"
# batching changes how GEMM rows are blocked, so only the last bits may differ
wm-encode-latent --batch 5 < "$T/in.wm" > "$T/lat5.wm"
/usr/bin/python3 - "$T/lat.wm" "$T/lat5.wm" <<'EOF' || fail "--batch 5 changes the latents"
import sys, msgpack, numpy as np
a, b = ([m for m in msgpack.Unpacker(open(p, "rb"), raw=False)] for p in sys.argv[1:])
assert len(a) == len(b)
for x, y in zip(a, b):
    if x["kind"] != "latent":
        assert x == y
        continue
    u, v = np.frombuffer(x["data"], "<f4"), np.frombuffer(y["data"], "<f4")
    assert {k: x[k] for k in x if k != "data"} == {k: y[k] for k in y if k != "data"}
    assert np.max(np.abs(u - v)) <= 1e-5 * np.max(np.abs(u)), np.max(np.abs(u - v))
EOF
ok "--keep-frames interleaves frame and latent; --batch 5 gives the same latents"

# --- decode: latent -> 64x64 rgb24 frame, extras (imagined) kept; --keep-latents
wm-decode-frame < "$T/lat.wm" > "$T/dec.wm"
wm-cat "$T/dec.wm" | jq -e -s '[.[] | select(.kind == "frame")] | length == 16 and
    all(.width == 64 and .height == 64 and .format == "rgb24")' > /dev/null || fail "decoded frames are not 64x64 rgb24"
[ "$(wm-cat "$T/dec.wm" | jq -c 'select(.kind == "latent")' | wc -l)" -eq 0 ] || fail "latents leaked without --keep-latents"
wm-cat "$T/dec.wm" | jq -c 'select(.kind == "frame") | [.clip, .index, .pts]' | cmp -s - "$T/ids_in" ||
    fail "decoded frames do not keep clip, index and pts"
wm-decode-frame --keep-latents --batch 3 < "$T/lat.wm" > "$T/dec2.wm"
[ "$(wm-cat "$T/dec2.wm" | jq -c 'select(.kind == "latent")' | wc -l)" -eq 16 ] || fail "--keep-latents"
# an imagined latent in f16 decodes to a frame that says it was imagined
/usr/bin/python3 - "$T/lat.wm" "$T/imag.wm" <<'EOF'
import sys, msgpack, numpy as np
out = open(sys.argv[2], "wb")
for m in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False):
    if m["kind"] == "latent":
        m = {"kind": "latent", "clip": m["clip"], "index": m["index"] + 100, "shape": m["shape"], "dtype": "f16",
             "imagined": True, "data": np.frombuffer(m["data"], "<f4").astype("<f2").tobytes()}
    out.write(msgpack.packb(m, use_bin_type=True))
EOF
wm-decode-frame < "$T/imag.wm" | wm-cat | jq -e -s '[.[] | select(.kind == "frame")] |
    length == 16 and all(.imagined == true and .index >= 100 and .width == 64)' > /dev/null ||
    fail "imagined f16 latents do not decode to frames marked imagined"
ok "decode: 16 latents -> 64x64 rgb24 frames; --keep-latents; imagined f16 latents"

# round trip: the decoded frames resemble the inputs (a 60-step model: a loose bound)
psnr=$(wm-encode-latent --keep-frames < "$T/train.wm" | wm-decode-frame | /usr/bin/python3 -c '
import sys, msgpack, numpy as np
f = [np.frombuffer(m["data"], np.uint8).astype(float) for m in msgpack.Unpacker(sys.stdin.buffer, raw=False) if m["kind"] == "frame"]
mse = np.mean([(a - b) ** 2 for a, b in zip(f[0::2], f[1::2])])
print("%.1f" % (10 * np.log10(255 ** 2 / mse)))')
awk -v p="$psnr" 'BEGIN { exit !(p > 15) }' || fail "round trip PSNR $psnr dB"
ok "encode -> decode round trip: $psnr dB after 60 steps"

# --- refusals: one line, the right exit code
wm-synth --clips 1 --frames 2 --size 30x30 > "$T/odd.wm"
expect_exit 2 wm-encode-latent < "$T/odd.wm"
expect_err "clip .* frame 0 is 30x30.*multiples of 4"
/usr/bin/python3 - "$T/badc.wm" <<'EOF'
import sys, msgpack
open(sys.argv[1], "wb").write(msgpack.packb({"kind": "latent", "clip": "c", "index": 4, "shape": [2, 2, 5],
                                             "dtype": "f32", "data": bytes(80)}, use_bin_type=True))
EOF
expect_exit 2 wm-decode-frame < "$T/badc.wm"
expect_err "clip c latent 4: shape must be \[h, w, 8\]"
expect_exit 1 wm-encode-latent --model "$T/nonexistent.safetensors" < /dev/null
expect_err "nonexistent.safetensors"
head -c 100 "$T/m.safetensors" > "$T/cut.safetensors"
expect_exit 1 wm-decode-frame --model "$T/cut.safetensors" < /dev/null
expect_err "cut.safetensors: header length .* runs past the end"
expect_exit 1 wm-train tokenizer "${tiny[@]}" "$T/train.wm"
expect_err "--model PATH is required"
expect_exit 2 wm-train tokenizer --model "$T/n.safetensors" "${tiny[@]}" --crop 64x64 "$T/odd.wm"
expect_err "30x30, smaller than the 64x64 training crop"
expect_exit 1 wm-train frobnicate
ok "refused: odd frame sizes, foreign latents, missing and truncated models, bad training input"

# --- one model file: training the tokenizer keeps the other parts
/usr/bin/python3 - "$T/m.safetensors" "$T/shared.safetensors" <<'EOF'
import sys, json, struct
blob = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
h = json.loads(blob[8:8 + n]); data = blob[8 + n:]
h["dynamics.w"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
h["__metadata__"]["dynamics.arch"] = "test"
hb = json.dumps(h).encode(); hb += b" " * (-len(hb) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(hb)) + hb + data + struct.pack("<f", 1.5))
EOF
wm-train tokenizer -q --model "$T/shared.safetensors" "${tiny[@]}" "$T/train.wm"
/usr/bin/python3 - "$T/shared.safetensors" <<'EOF' || fail "the dynamics tensors were not kept"
import sys, json, struct
blob = open(sys.argv[1], "rb").read()
h = json.loads(blob[8:8 + struct.unpack("<Q", blob[:8])[0]])
assert "dynamics.w" in h and h["__metadata__"]["dynamics.arch"] == "test" and "tokenizer.enc.in.weight" in h
EOF
ok "retraining the tokenizer keeps the dynamics tensors of the model file"

# --- the shipped model is found without --model: bin/../models/, then $WM_MODEL first
if [ -f "$WM_ROOT/models/wm-default.safetensors" ]; then
    unset WM_MODEL
    wm-encode-latent < "$T/train.wm" | wm-cat | jq -e -s '[.[] | select(.kind == "latent")] | length == 16 and
        all(.shape[0:2] == [16, 16])' > /dev/null || fail "the shipped model was not used by default"
    WM_MODEL="$T/m.safetensors" wm-encode-latent < "$T/train.wm" | wm-cat |
        jq -e -s 'all(.[] | select(.kind == "latent"); .shape == [16, 16, 8])' > /dev/null || fail "\$WM_MODEL is not honoured"
    ok "the shipped model is the default; \$WM_MODEL overrides it"
fi
