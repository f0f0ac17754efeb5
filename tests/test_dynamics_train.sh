#!/usr/bin/env bash
# wm-train dynamics end to end on a tiny tokenizer and a tiny dynamics model
# trained here in seconds: the NLL falls, runs are deterministic, an
# interrupted run resumes to the same model, frames and their latents train
# the same model, the tokenizer stays in the file, the trained model drives
# wm-step, and bad input is refused with one clear line.
source "$(dirname "$0")/lib.sh"
command -v wm-synth >/dev/null && command -v wm-step >/dev/null || skip "wm-synth or wm-step is not built"

wm-synth --clips 12 --frames 12 --seed 3 > "$T/frames.wm"
wm-train tokenizer -q --model "$T/m.safetensors" --steps 40 --batch 4 --hidden 16 --blocks 1 --crop 32x32 --seed 5 \
    "$T/frames.wm"
cp "$T/m.safetensors" "$T/tok.safetensors"
wm-encode-latent --model "$T/m.safetensors" --batch 12 < "$T/frames.wm" > "$T/lat.wm"
tiny=(--steps 40 --batch 4 --seq 11 --tbptt 6 --hidden 8 --seed 7 --lr 5e-3)

# --- training lowers the NLL (mean of the first 3 reports against the last 3)
wm-train dynamics --model "$T/m.safetensors" "${tiny[@]}" --log-every 0 "$T/lat.wm" 2> "$T/log"
grep -q "wrote $T/m.safetensors" "$T/log" || { cat "$T/log"; fail "no model written"; }
[ ! -e "$T/m.safetensors.dynamics.ckpt" ] || fail "the checkpoint was not removed after a finished run"
awk '/ step /{ for (i = 1; i <= NF; i++) if ($i == "nll") l[++n] = $(i + 1) }
     END { a = (l[1] + l[2] + l[3]) / 3; b = (l[n] + l[n-1] + l[n-2]) / 3
           printf "nll %.3f -> %.3f\n", a, b; exit !(n == 40 && b < a - 0.3) }' "$T/log" > "$T/drop" ||
    { cat "$T/drop" "$T/log"; fail "40 steps did not lower the NLL by 0.3"; }
ok "training lowers the NLL: $(cat "$T/drop")"

# --- the tokenizer is still there, and wm-step runs the new model
/usr/bin/python3 - "$T/m.safetensors" "$T/tok.safetensors" <<'EOF' || fail "the tokenizer part changed"
import sys, os
sys.path.insert(0, os.path.join(os.environ["WM_ROOT"], "tests"))
from test_tokenizer_torch import read_safetensors
a, ma = read_safetensors(sys.argv[1]); b, mb = read_safetensors(sys.argv[2])
assert all((a[k] == b[k]).all() for k in b), "tensors"
assert all(ma[k] == mb[k] for k in mb), "metadata"
assert "dynamics.gru0.x.weight" in a and ma["dynamics.arch"].startswith("convgru2-gauss") and "dynamics.tokenizer" in ma
EOF
wm-step -q --model "$T/m.safetensors" < "$T/lat.wm" | wm-cat | jq -e -s '[.[] | select(.kind == "pred")] | length == 144' \
    > /dev/null || fail "wm-step does not run the trained model"
ok "the model file keeps its tokenizer and gains dynamics.*; wm-step predicts with it"

# --- deterministic for a seed; another seed differs; frames train the same model as their latents
cp "$T/tok.safetensors" "$T/m2.safetensors"
wm-train dynamics -q --model "$T/m2.safetensors" "${tiny[@]}" "$T/lat.wm"
cmp -s "$T/m.safetensors" "$T/m2.safetensors" || fail "two runs with one seed differ"
cp "$T/tok.safetensors" "$T/m3.safetensors"
wm-train dynamics -q --model "$T/m3.safetensors" "${tiny[@]}" --seed 8 "$T/lat.wm"
! cmp -s "$T/m.safetensors" "$T/m3.safetensors" || fail "another seed gave the same model"
cp "$T/tok.safetensors" "$T/m4.safetensors"
wm-train dynamics -q --model "$T/m4.safetensors" "${tiny[@]}" "$T/frames.wm"
cmp -s "$T/m.safetensors" "$T/m4.safetensors" || fail "frames and their latents trained different models"
ok "deterministic for a seed; frames encoded on the way train the same model as their latents"

# --- the objects head: wm-synth's ball labels (on frames, and passed on with their latents) train it
cp "$T/tok.safetensors" "$T/o1.safetensors"
wm-train dynamics --model "$T/o1.safetensors" "${tiny[@]}" --objects 1 --log-every 0 "$T/frames.wm" 2> "$T/log"
grep -q "objects head: 12 of the clips carry ball labels" "$T/log" || { cat "$T/log"; fail "no labelled clips"; }
grep -q "step 40/40 .* objects 0\.[0-9]" "$T/log" || { cat "$T/log"; fail "no objects loss reported"; }
cp "$T/tok.safetensors" "$T/o2.safetensors"
wm-train dynamics -q --model "$T/o2.safetensors" "${tiny[@]}" --objects 1 "$T/lat.wm"
cmp -s "$T/o1.safetensors" "$T/o2.safetensors" || fail "frames and their latents trained different objects heads"
/usr/bin/python3 - "$T/o1.safetensors" <<'EOF' || fail "the file lacks the objects head"
import sys, os
sys.path.insert(0, os.path.join(os.environ["WM_ROOT"], "tests"))
from test_tokenizer_torch import read_safetensors
t, m = read_safetensors(sys.argv[1])
assert m["dynamics.objects"] == "2" and t["dynamics.objects.weight"].shape == (2, 3, 3, 8), m
EOF
wm-step -q --model "$T/o1.safetensors" < "$T/lat.wm" | wm-cat | jq -e -s '[.[] | select(.kind == "pred")] | length == 144' \
    > /dev/null || fail "wm-step does not run a model with an objects head"
cp "$T/tok.safetensors" "$T/o3.safetensors"
expect_exit 1 wm-train dynamics -q --model "$T/o3.safetensors" --init "$T/m.safetensors" "${tiny[@]}" --objects 1 "$T/lat.wm"
expect_err "objects head"
ok "--objects: labels from frames or latents train the same head, the file keeps it, wm-step runs it, --init without one is refused"

# --- interrupted, then resumed: the same model as an uninterrupted run
long=(--steps 300 --batch 4 --seq 11 --tbptt 4 --hidden 8 --seed 7)
cp "$T/tok.safetensors" "$T/full.safetensors"
wm-train dynamics -q --model "$T/full.safetensors" "${long[@]}" "$T/lat.wm"
cp "$T/tok.safetensors" "$T/r.safetensors"
expect_resume dynamics "step 2[0-9]/" 300 " (mid-window: state carried in the checkpoint)" "${long[@]}" "$T/lat.wm"
expect_exit 1 wm-train dynamics -q --model "$T/r.safetensors" "${long[@]}" --resume "$T/lat.wm"
expect_err "--resume: no checkpoint"

# --- refusals
expect_exit 1 wm-train dynamics "${tiny[@]}" "$T/lat.wm"
expect_err "--model PATH is required"
/usr/bin/python3 - "$T/empty.safetensors" <<'EOF'
import sys, os
sys.path.insert(0, os.path.join(os.environ["WM_ROOT"], "tests"))
from test_tokenizer_torch import write_safetensors
import numpy as np
write_safetensors(sys.argv[1], {"x": np.zeros(1)}, {})
EOF
expect_exit 1 wm-train dynamics -q --model "$T/empty.safetensors" "${tiny[@]}" "$T/lat.wm"
expect_err "train the tokenizer into it first"
expect_exit 2 wm-train dynamics -q --model "$T/m.safetensors" "${tiny[@]}" --seq 40 "$T/lat.wm"
expect_err "no clip has 41 latents"
/usr/bin/python3 - "$T/c4.wm" <<'EOF'
import sys, msgpack
open(sys.argv[1], "wb").write(msgpack.packb({"kind": "latent", "clip": "q", "index": 0, "shape": [2, 2, 4],
                                             "dtype": "f32", "data": bytes(64)}, use_bin_type=True))
EOF
expect_exit 2 wm-train dynamics -q --model "$T/m.safetensors" "${tiny[@]}" "$T/c4.wm"
expect_err "c4.wm: clip q latent 0: shape must be \[h, w, 8\]"
expect_exit 1 wm-train dynamics -q --model "$T/m.safetensors" "${tiny[@]}" --hidden 10 "$T/lat.wm"
expect_err "multiple of 4"
ok "refused: no --model, a file without a tokenizer, clips too short, latents of another model, a bad width"
