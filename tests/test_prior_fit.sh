#!/usr/bin/env bash
# wm-train prior end to end on the shipped model's tokenizer and detector:
# the per-channel variance lands in the model file (prior.var, positive,
# its metadata) and every other part is kept byte for byte; the fit is
# deterministic and agrees with an independent numpy measure over wm-step's
# own priors; a model without a detector and clips too short are refused
# with one clear line.
source "$(dirname "$0")/lib.sh"
command -v wm-synth >/dev/null && command -v wm-train >/dev/null || skip "wm-synth or wm-train is not built"
SHIPPED="$WM_ROOT/models/wm-default.safetensors"

wm-synth -q --clips 6 --frames 10 --seed 21 > "$T/frames.wm"
wm-encode-latent -q --model "$SHIPPED" --batch 16 < "$T/frames.wm" > "$T/lat.wm"   # as the clip set encodes frames
cp "$SHIPPED" "$T/m.safetensors"
wm-train prior --model "$T/m.safetensors" "$T/lat.wm" 2> "$T/log" || { cat "$T/log"; fail "wm-train prior"; }
grep -q "6 clips (60 latents)" "$T/log" && grep -q "42 latents in" "$T/log" || { cat "$T/log"; fail "clips or latents not counted"; }

# the fit against numpy over the priors wm-step sends for the same latents
wm-step -q --model "$T/m.safetensors" < "$T/lat.wm" > "$T/step.wm"
/usr/bin/python3 - "$T/m.safetensors" "$SHIPPED" "$T/step.wm" <<'PY' || fail "the prior's variance in the model file"
import sys, os, msgpack, numpy as np
sys.path.insert(0, os.path.join(os.environ["WM_ROOT"], "tests"))
from test_tokenizer_torch import read_safetensors
a, ma = read_safetensors(sys.argv[1]); b, mb = read_safetensors(sys.argv[2])
assert all((a[k] == b[k]).all() for k in b if not k.startswith("prior.")), "another part changed"
assert all(ma[k] == mb[k] for k in mb if not k.startswith("prior.")), "other metadata changed"
assert ma["prior.arch"] == "objects-v1" and ma["prior.fit.latents"] == "42" and len(ma["prior.tokenizer"]) == 16
var = a["prior.var"].astype(np.float64)
assert var.shape == (16,) and (var > 0).all()
z, p = {}, {}
for m in msgpack.Unpacker(open(sys.argv[3], "rb"), raw=False, max_buffer_size=1 << 30):
    if m["kind"] == "latent":
        z[m["clip"], m["index"]] = np.frombuffer(m["data"], "<f4").reshape(-1, 16)
    elif m["kind"] == "pred":
        p[m["clip"], m["index"]] = np.frombuffer(m["prior"], "<f4").reshape(-1, 16)
r = [((z[k] - p[k]).astype(np.float64) ** 2).mean(0) for k in p if k in z and k[1] >= 3]
assert len(r) == 42, len(r)
want = np.mean(r, axis=0)
err = np.abs(var - want) / want
assert err.max() < 1e-3, f"prior.var differs from numpy by {err.max():.2e} (relative)"
print(f"prior.var matches numpy within {err.max():.1e}")
PY
ok "prior.var (16 positive values) is numpy's mean squared residual of latents 3.. about wm-step's priors; every other part kept"

cp "$SHIPPED" "$T/m2.safetensors"
wm-train prior -q --model "$T/m2.safetensors" "$T/frames.wm"
cmp -s "$T/m.safetensors" "$T/m2.safetensors" || fail "frames and their latents (or two runs) fit different priors"
ok "deterministic: frames and their latents fit the same bytes"

# --- refusals
/usr/bin/python3 - "$T/nodet.safetensors" "$SHIPPED" <<'PY'
import sys, os
sys.path.insert(0, os.path.join(os.environ["WM_ROOT"], "tests"))
from test_tokenizer_torch import read_safetensors, write_safetensors
t, m = read_safetensors(sys.argv[2])
write_safetensors(sys.argv[1], {k: v for k, v in t.items() if not k.startswith(("detector.", "prior."))},
                  {k: v for k, v in m.items() if not k.startswith(("detector.", "prior."))})
PY
expect_exit 1 wm-train prior -q --model "$T/nodet.safetensors" "$T/lat.wm"
expect_err "train the detector into it first"
wm-synth -q --clips 2 --frames 3 --seed 4 > "$T/short.wm"
expect_exit 2 wm-train prior -q --model "$T/m2.safetensors" "$T/short.wm"
expect_err "no clip has 4 latents or more"
expect_exit 1 wm-train prior -q "$T/lat.wm"
expect_err "--model PATH is required"
ok "refused with one line: a model without a detector, clips shorter than 4 latents, no --model"
