#!/usr/bin/env bash
# wm-train detector end to end on a tiny tokenizer trained here in seconds:
# the loss falls, the detector lands in the model file beside the other
# parts, runs are deterministic, frames and their latents train the same
# detector, --test measures it on labelled balls, and a stream without
# labels is refused with one clear line.
source "$(dirname "$0")/lib.sh"
command -v wm-synth >/dev/null && command -v wm-train >/dev/null || skip "wm-synth or wm-train is not built"

wm-synth --clips 12 --frames 8 --seed 3 > "$T/frames.wm"
wm-train tokenizer -q --model "$T/m.safetensors" --steps 40 --batch 4 --hidden 16 --blocks 1 --crop 32x32 --seed 5 \
    "$T/frames.wm"
cp "$T/m.safetensors" "$T/tok.safetensors"
wm-encode-latent --model "$T/m.safetensors" --batch 8 < "$T/frames.wm" > "$T/lat.wm"
tiny=(--steps 60 --batch 8 --hidden 8 --seed 7 --lr 5e-3)

# --- training lowers the loss; the model file keeps its tokenizer and gains detector.*
wm-train detector --model "$T/m.safetensors" "${tiny[@]}" --log-every 0 "$T/lat.wm" 2> "$T/log"
grep -q "12 clips (96 latents; 12 with ball labels)" "$T/log" || { cat "$T/log"; fail "the labelled clips were not counted"; }
grep -q "wrote $T/m.safetensors" "$T/log" || { cat "$T/log"; fail "no model written"; }
awk '/ step /{ for (i = 1; i <= NF; i++) if ($i == "loss") l[++n] = $(i + 1) }
     END { a = (l[1] + l[2] + l[3]) / 3; b = (l[n] + l[n-1] + l[n-2]) / 3
           printf "loss %.3f -> %.3f\n", a, b; exit !(n == 60 && b < 0.7 * a) }' "$T/log" > "$T/drop" ||
    { cat "$T/drop" "$T/log"; fail "60 steps did not lower the loss by 30%"; }
/usr/bin/python3 - "$T/m.safetensors" "$T/tok.safetensors" <<'EOF' || fail "the model file is not as it should be"
import sys, os
sys.path.insert(0, os.path.join(os.environ["WM_ROOT"], "tests"))
from test_tokenizer_torch import read_safetensors
a, ma = read_safetensors(sys.argv[1]); b, mb = read_safetensors(sys.argv[2])
assert all((a[k] == b[k]).all() for k in b), "tensors"
assert all(ma[k] == mb[k] for k in mb), "metadata"
assert "detector.l0.weight" in a and "detector.norm.std" in a and ma["detector.arch"] == "balls-conv4-v1"
assert ma["detector.train.steps"] == "60" and len(ma["detector.tokenizer"]) == 16
EOF
ok "training lowers the loss ($(cat "$T/drop")); the file keeps its tokenizer and gains detector.*"

# --- deterministic; frames train the same detector as their latents; a second training replaces the first
cp "$T/tok.safetensors" "$T/m2.safetensors"
wm-train detector -q --model "$T/m2.safetensors" "${tiny[@]}" "$T/frames.wm"
cmp -s "$T/m.safetensors" "$T/m2.safetensors" || fail "frames and their latents (or two runs) trained different detectors"
wm-train detector -q --model "$T/m2.safetensors" "${tiny[@]}" --seed 8 "$T/lat.wm"
! cmp -s "$T/m.safetensors" "$T/m2.safetensors" || fail "another seed gave the same detector"
ok "deterministic for a seed; frames encoded on the way train the same detector as their latents"

# --- footage without labels as negatives, drawn by stream weight, changes what is learnt; deterministic still
cp "$T/tok.safetensors" "$T/n1.safetensors"
cp "$T/tok.safetensors" "$T/n2.safetensors"
wm-synth --clips 2 --frames 8 --seed 11 | wm-encode-latent --model "$T/m.safetensors" | /usr/bin/python3 -c '
import sys, msgpack
p = msgpack.Packer(use_bin_type=True)
for m in msgpack.Unpacker(sys.stdin.buffer, raw=False):
    m.pop("objects", None)
    sys.stdout.buffer.write(p.pack(m))' > "$T/neg.wm"
wm-train detector -q --model "$T/n1.safetensors" "${tiny[@]}" --negatives --weights 3,1 "$T/lat.wm" "$T/neg.wm"
wm-train detector -q --model "$T/n2.safetensors" "${tiny[@]}" --negatives --weights 3,1 "$T/lat.wm" "$T/neg.wm"
cmp -s "$T/n1.safetensors" "$T/n2.safetensors" || fail "two runs with negatives differ"
! cmp -s "$T/n1.safetensors" "$T/m.safetensors" || fail "the negatives changed nothing"
expect_exit 1 wm-train detector -q --model "$T/n2.safetensors" "${tiny[@]}" --weights 3,1,1 "$T/lat.wm" "$T/neg.wm"
ok "--negatives with --weights: deterministic, and not the detector without them; a weight per stream or exit 1"

# --- --test measures it on labelled balls
wm-synth --clips 4 --frames 8 --seed 9 | wm-encode-latent --model "$T/m.safetensors" > "$T/test.wm"
wm-train detector -q --model "$T/m2.safetensors" "${tiny[@]}" --test "$T/test.wm" "$T/lat.wm" > "$T/eval"
grep -Eq "^wm-train detector: .*/test.wm: [0-9]+ labelled balls, [0-9]+ found \([0-9.]+%\), [0-9]+ extra detections" \
    "$T/eval" || { cat "$T/eval"; fail "--test did not report"; }
ok "--test reports: $(cut -d: -f3- "$T/eval" | cut -c1-80)"
cp "$T/m2.safetensors" "$T/m3.safetensors"
wm-train detector -q --model "$T/m3.safetensors" --steps 0 --test "$T/test.wm" > "$T/eval0"
cmp -s "$T/eval" "$T/eval0" || { cat "$T/eval" "$T/eval0"; fail "--steps 0 measured another detector"; }
cmp -s "$T/m2.safetensors" "$T/m3.safetensors" || fail "--steps 0 changed the model file"
expect_exit 1 wm-train detector -q --model "$T/m3.safetensors" --steps 0 "$T/lat.wm"
expect_err "--steps 0 measures the detector"
ok "--steps 0 measures the detector in the model, the same figures, and writes nothing"

# --- a stream without ball labels is refused with one line saying what is needed
wm-synth --clips 2 --frames 4 | wm-encode-latent --model "$T/m.safetensors" | /usr/bin/python3 -c '
import sys, msgpack
p = msgpack.Packer(use_bin_type=True)
for m in msgpack.Unpacker(sys.stdin.buffer, raw=False):
    m.pop("objects", None)
    sys.stdout.buffer.write(p.pack(m))' > "$T/nolabels.wm"
expect_exit 2 wm-train detector -q --model "$T/m2.safetensors" "${tiny[@]}" "$T/nolabels.wm"
expect_err "no clip carries ball labels"
expect_exit 2 wm-train detector -q --model "$T/m2.safetensors" "${tiny[@]}" --negatives "$T/nolabels.wm"
expect_err "no clip carries ball labels"
expect_exit 1 wm-train detector -q "$T/lat.wm"
expect_err "--model PATH is required"
ok "refused: a stream without ball labels (exit 2), no --model (exit 1)"
