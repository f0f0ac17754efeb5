#!/usr/bin/env bash
# wm-step on the CPU, end to end, with a random dynamics model written by
# Python and latent streams made here: a pred after every latent (index + 1,
# positive variance), pass-through of everything else, the state reset at
# each clip, --batch equal to streaming, rollouts (imagined latents after the
# context, teacher mode and a rollout with K = clip length agreeing on the
# context), f16 input, a NaN clip ending with an error while the others go
# on, the device choice, the object prior (shipped model), and refusals
# with one clear line.
source "$(dirname "$0")/lib.sh"
command -v wm-step >/dev/null || skip "wm-step is not built"

/usr/bin/python3 - "$T" <<'EOF'
import os, sys, msgpack, numpy as np
sys.path.insert(0, os.path.join(os.environ["WM_ROOT"], "tests"))
from test_dynamics_torch import random_model
t = sys.argv[1]
rng = np.random.default_rng(5)
random_model(rng, f"{t}/m.safetensors", 8, 8, 2)
def clip(cid, n, h=6, w=7, extra=None, dtype="<f4"):
    out = [{"kind": "clip", "id": cid, "source": "test", "fps": [25, 1], "label": {"x": 1}}]
    z = rng.normal(0, 0.3, (h, w, 8))
    for i in range(n):
        z = z + rng.normal(0, 0.05, z.shape)
        out.append({"kind": "latent", "clip": cid, "index": i, "pts": i / 25, "shape": [h, w, 8],
                    "dtype": "f16" if dtype == "<f2" else "f32", "data": z.astype(dtype).tobytes(), "objects": []})
        if extra and i == 2:
            out.append(extra)
    out.append({"kind": "end", "clip": cid, "frames": n})
    return out
msgs = [{"kind": "stream", "version": 1, "producer": "test"}]
msgs += clip("a", 8, extra={"kind": "unknown", "x": 1})
msgs += clip("b", 5)
msgs += clip("c", 8, h=4, w=5)
msgs += clip("d", 3)
write = lambda name, ms: open(f"{t}/{name}", "wb").write(b"".join(msgpack.packb(m, use_bin_type=True) for m in ms))
write("in.wm", msgs)
# the same clip twice under two names, and alone
a = clip("x", 6)
b = [dict(m, **({"id": "y"} if m["kind"] == "clip" else {"clip": "y"})) for m in a]
write("twice.wm", a + b)
write("second.wm", b)
# f16 copy of clip a
write("f16.wm", [dict(m, dtype="f16", data=np.frombuffer(m["data"], "<f4").astype("<f2").tobytes())
                 if m["kind"] == "latent" else m for m in msgs if m.get("clip", m.get("id")) == "a"])
# clip n has a NaN at latent 3; clip z after it is fine
bad = clip("n", 6)
z = np.frombuffer(bad[4]["data"], "<f4").copy(); z[5] = np.nan; bad[4]["data"] = z.tobytes()
write("nan.wm", bad + clip("z", 4))
# another channel count
write("c4.wm", [{"kind": "latent", "clip": "q", "index": 0, "shape": [2, 2, 4], "dtype": "f32", "data": bytes(64)}])
EOF
export WM_MODEL="$T/m.safetensors"
step() { wm-step -q "$@"; }   # -q: no notice that there is no GPU
check() { /usr/bin/python3 "$WM_ROOT/tests/stepcheck.py" "$@"; }

# --- teacher mode: a pred after each latent; everything else unchanged, in order
step < "$T/in.wm" > "$T/out.wm"
check teacher "$T/in.wm" "$T/out.wm" || fail "teacher mode stream"
ok "teacher mode: a pred (index + 1, shape, positive var) after each of 24 latents; other messages unchanged"

# --- the state resets at each clip: a clip's preds do not depend on what came before
step < "$T/twice.wm" > "$T/twice_out.wm"
step < "$T/second.wm" > "$T/second_out.wm"
check same-preds "$T/twice_out.wm" x y || fail "a clip repeated under another name gets other preds"
check same-preds-across "$T/twice_out.wm" "$T/second_out.wm" y || fail "a clip alone and after another differ"
ok "state resets at clip boundaries (a clip's preds are the same alone and after another clip)"

# --- --batch: clips in lock-step give what streaming gives, in the same order
for b in 2 3 16; do
    step --batch $b < "$T/in.wm" > "$T/out_b$b.wm"
    check close "$T/out.wm" "$T/out_b$b.wm" 1e-5 || fail "--batch $b differs from streaming"
done
ok "--batch 2, 3 and 16 (lanes of two grid sizes, clips of 3 to 8 latents) match streaming within 1e-5"

# --- --threads: the lanes split between threads, each lane computed as before
step --batch 16 --threads 3 < "$T/in.wm" > "$T/out_b16_t3.wm"
cmp -s "$T/out_b16.wm" "$T/out_b16_t3.wm" || fail "--threads 3 changes the bytes of --batch 16"
ok "--batch 16 --threads 3 gives the same bytes as one thread"

# --- rollouts
step --rollout 5 --context 4 < "$T/in.wm" > "$T/roll.wm"
check rollout "$T/in.wm" "$T/out.wm" "$T/roll.wm" 5 4 keep || fail "--rollout 5 --context 4"
step --rollout 5 --context 4 --drop-rest < "$T/in.wm" > "$T/roll_drop.wm"
check rollout "$T/in.wm" "$T/out.wm" "$T/roll_drop.wm" 5 4 drop || fail "--drop-rest"
for b in 3 16; do
    step --rollout 5 --context 4 --batch $b < "$T/in.wm" > "$T/roll_b.wm"
    check close "$T/roll.wm" "$T/roll_b.wm" 1e-5 || fail "--rollout with --batch $b differs from streaming"
done
ok "--rollout 5 --context 4: teacher preds on the context, 5 imagined latents after it (indices, pts, imagined: true), a short clip dreams before its end; --drop-rest; --batch 3 and 16 the same"
step --rollout 3 --context 8 < "$T/in.wm" > "$T/roll_k8.wm"
check context-agrees "$T/out.wm" "$T/roll_k8.wm" a || fail "teacher mode and a rollout with K = clip length disagree"
ok "teacher mode and a rollout with K = clip length agree on the context; the first imagined latent is the last pred"

# --- f16 latents give the same preds as f32 within f16's rounding
step < "$T/f16.wm" > "$T/f16_out.wm"
check close "$T/out.wm" "$T/f16_out.wm" 2e-2 a || fail "f16 latents"
ok "f16 latents are read"

# --- a NaN ends its clip with an error; the stream goes on
step < "$T/nan.wm" > "$T/nan_out.wm"
wm-cat "$T/nan_out.wm" | jq -e -s '
    ([.[] | select(.kind == "pred" and .clip == "n")] | length == 3) and
    ([.[] | select(.kind == "end" and .clip == "n")][0].error | test("latent 3 has NaN")) and
    ([.[] | select(.kind == "pred" and .clip == "z")] | length == 4) and
    ([.[] | select(.kind == "end" and .clip == "z")][0] | has("error") | not) and
    ([.[] | select(.kind == "latent")] | length == 10)' > /dev/null || fail "a NaN latent"
step --batch 4 < "$T/nan.wm" | wm-cat | jq -c 'select(.kind == "end")' | grep -q '"error"' || fail "NaN with --batch"
ok "a latent with NaN ends its clip with an error (3 preds before it), the next clip is predicted"

# --- devices
wm-step --device cpu -v < "$T/second.wm" 2> "$T/err" > /dev/null
grep -q "device cpu" "$T/err" || { cat "$T/err"; fail "-v does not say the device"; }
if ! wm-step --device cuda < /dev/null > /dev/null 2> "$T/cuda_err"; then
    expect_exit 3 wm-step --device cuda < /dev/null
    expect_err "^wm-step: --device cuda: no CUDA device"
    wm-step --device auto < "$T/second.wm" 2> "$T/err" > "$T/auto.wm"
    expect_err "^wm-step: no CUDA device .*running on the CPU"
    cmp -s "$T/auto.wm" "$T/second_out.wm" || fail "--device auto on the CPU differs from the default"
    ok "no GPU here: --device cuda exits 3 with one line, --device auto falls back to the CPU with a notice"
else
    ok "a GPU is present: --device cuda ran (tests/test_cuda_parity.sh compares it with the CPU)"
fi

# --- the object prior: with the shipped model (it has one), each pred also
# carries the prior of the next latent and the model's prior.var; the
# dynamics' fields are unchanged, --prior none leaves the prior out, lanes in
# lock-step give the streaming priors (up to the 8-bit rounding of a drawn
# pixel); rollouts imagine with the prior (the first imagined latent is the
# last context pred's prior), or with the dynamics (--imagine dynamics, the
# same as --prior none)
SHIPPED="$WM_ROOT/models/wm-default.safetensors"
wm-synth -q --clips 3 --seed 11 --frames 10 | wm-encode-latent -q --model "$SHIPPED" > "$T/syn.wm"
step --model "$SHIPPED" < "$T/syn.wm" > "$T/syn_prior.wm"
step --model "$SHIPPED" --prior none < "$T/syn.wm" > "$T/syn_none.wm"
step --model "$SHIPPED" --batch 3 < "$T/syn.wm" > "$T/syn_b3.wm"
step --model "$SHIPPED" --rollout 4 --context 5 < "$T/syn.wm" > "$T/syn_roll.wm"
step --model "$SHIPPED" --rollout 4 --context 5 --batch 3 < "$T/syn.wm" > "$T/syn_roll_b3.wm"
step --model "$SHIPPED" --imagine dynamics --rollout 4 --context 5 --drop-rest < "$T/syn.wm" > "$T/syn_roll_dyn.wm"
step --model "$SHIPPED" --prior none --rollout 4 --context 5 --drop-rest < "$T/syn.wm" > "$T/syn_roll_none.wm"
/usr/bin/python3 - "$T" "$SHIPPED" <<'EOF' || fail "the object prior in wm-step's preds"
import json, struct, sys, msgpack, numpy as np
t, model = sys.argv[1], sys.argv[2]
raw = open(model, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; hdr = json.loads(raw[8:8 + n])
a, b = hdr["prior.var"]["data_offsets"]; pvar = np.frombuffer(raw[8 + n + a:8 + n + b], "<f4")
def load(name):
    return [m for m in msgpack.Unpacker(open(f"{t}/{name}", "rb"), raw=False, max_buffer_size=1 << 30)]
def preds(name):
    return [m for m in load(name) if m["kind"] == "pred"]
P, N, B = preds("syn_prior.wm"), preds("syn_none.wm"), preds("syn_b3.wm")
assert len(P) == len(N) == len(B) == 30, (len(P), len(N), len(B))
worst = 0.0
for p, q, r in zip(P, N, B):
    h, w, C = p["shape"]
    assert np.frombuffer(p["prior"], "<f4").size == h * w * C and np.isfinite(np.frombuffer(p["prior"], "<f4")).all()
    assert np.array_equal(np.frombuffer(p["prior_var"], "<f4"), pvar), "prior_var is not the model's prior.var"
    assert p["data"] == q["data"] and p["var"] == q["var"], "the prior changed the dynamics' prediction"
    assert "prior" not in q and "prior_var" not in q, "--prior none still sends a prior"
    d = np.abs(np.frombuffer(p["prior"], "<f4") - np.frombuffer(r["prior"], "<f4"))
    worst = max(worst, float(d.mean()))
assert worst < 1e-3, f"--batch 3 priors differ from streaming by {worst} on average"
im = lambda name: [m["data"] for m in load(name) if m["kind"] == "latent" and m.get("imagined")]
assert len(im("syn_roll_dyn.wm")) == 12 and im("syn_roll_dyn.wm") == im("syn_roll_none.wm"), "--imagine dynamics"
R = load("syn_roll.wm")
for clip in ("synth-11-0", "synth-11-1", "synth-11-2"):
    last = [m for m in R if m["kind"] == "pred" and m["clip"] == clip and m["index"] == 5][0]
    first = [m for m in R if m["kind"] == "latent" and m.get("imagined") and m["clip"] == clip and m["index"] == 5][0]
    assert first["data"] == last["prior"], "the first imagined latent is not the last context pred's prior"
Ri, Bi = im("syn_roll.wm"), im("syn_roll_b3.wm")
assert len(Ri) == len(Bi) == 12 and Ri != im("syn_roll_none.wm")
d = max(float(np.abs(np.frombuffer(x, "<f4") - np.frombuffer(y, "<f4")).mean()) for x, y in zip(Ri, Bi))
assert d < 1e-3, f"--batch 3 imagines other latents (mean difference {d})"
EOF
ok "object prior: preds carry prior [h, w, C] and the model's prior_var; the dynamics' fields unchanged; --prior none leaves it out; --batch 3 agrees; rollouts imagine with the prior (--batch 3 the same), or the dynamics with --imagine dynamics"
# more clips than the prior runs together (16): the lanes go in chunks, each clip's priors as before
wm-synth -q --clips 18 --seed 12 --frames 5 | wm-encode-latent -q --model "$SHIPPED" > "$T/syn18.wm"
step --model "$SHIPPED" --batch 18 < "$T/syn18.wm" > "$T/syn18_b18.wm"
step --model "$SHIPPED" --batch 2 < "$T/syn18.wm" > "$T/syn18_b2.wm"
/usr/bin/python3 - "$T" <<'EOF' || fail "--batch 18 priors (two chunks of lanes) differ from --batch 2"
import sys, msgpack, numpy as np
P = lambda f: [np.frombuffer(m["prior"], "<f4") for m in msgpack.Unpacker(open(f"{sys.argv[1]}/{f}", "rb"), raw=False)
               if m["kind"] == "pred"]
a, b = P("syn18_b18.wm"), P("syn18_b2.wm")
assert len(a) == len(b) == 90 and max(float(np.abs(x - y).mean()) for x, y in zip(a, b)) < 1e-3
EOF
ok "--batch 18: the prior's lanes run in chunks of 16; each clip's priors agree with --batch 2"
expect_exit 1 wm-step -q --prior on < /dev/null
expect_err "^wm-step: --prior on: .*m.safetensors: holds no tokenizer"
/usr/bin/python3 - "$T/noprior.safetensors" "$SHIPPED" <<'EOF'
import sys, os
sys.path.insert(0, os.path.join(os.environ["WM_ROOT"], "tests"))
from test_tokenizer_torch import read_safetensors, write_safetensors
t, m = read_safetensors(sys.argv[2])
write_safetensors(sys.argv[1], {k: v for k, v in t.items() if not k.startswith("prior.")},
                  {k: v for k, v in m.items() if not k.startswith("prior.")})
EOF
expect_exit 1 wm-step -q --prior on --model "$T/noprior.safetensors" < /dev/null
expect_err "holds no object prior .*wm-train prior"
wm-step -v --device cpu < "$T/second.wm" 2> "$T/err" > "$T/auto_prior.wm"
grep -q "no object prior" "$T/err" || fail "-v does not say the model has no object prior"
cmp -s "$T/auto_prior.wm" "$T/second_out.wm" || fail "--prior auto without a prior differs from the dynamics alone"
expect_exit 1 wm-step -q --imagine prior --prior none < /dev/null
expect_err "needs the object prior"
ok "--prior on needs the model's prior (one line, exit 1); auto without one runs the dynamics alone (-v says so); --imagine prior needs it"

# --- refusals
expect_exit 2 wm-step -q < "$T/c4.wm"
expect_err "clip q latent 0: shape must be \[h, w, 8\]"
/usr/bin/python3 - "$T/tok_only.safetensors" <<'EOF'
import sys, os
sys.path.insert(0, os.path.join(os.environ["WM_ROOT"], "tests"))
from test_tokenizer_torch import write_safetensors
import numpy as np
write_safetensors(sys.argv[1], {"tokenizer.w": np.zeros(3)}, {"tokenizer.arch": "x"})
EOF
expect_exit 1 wm-step -q --model "$T/tok_only.safetensors" < /dev/null
expect_err "holds no dynamics model"
expect_exit 1 wm-step -q --model "$T/nonexistent.safetensors" < /dev/null
expect_err "nonexistent.safetensors"
expect_exit 1 wm-step -q --rollout -1 < /dev/null
expect_err "--rollout"
expect_exit 1 wm-step -q --device tpu < /dev/null
expect_err "--device"
ok "refused: latents of another model, a file without a dynamics part, a missing model, bad options"
