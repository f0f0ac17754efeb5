#!/usr/bin/env bash
# wm-step on CUDA against the CPU reference: the same weights (a random
# model of the default architecture, and the shipped model when it has a
# dynamics part) and the same latents, in teacher mode and in rollouts, one
# clip at a time and in lock-step batches whose clips differ in length and
# grid size.  Bound: max |cuda - cpu| / max |cpu| <= 1e-3 over every pred
# (mean and variance) and imagined latent, in fp32.  Without a GPU it prints
# SKIP and exits 77.
source "$(dirname "$0")/lib.sh"
command -v wm-step >/dev/null || skip "wm-step is not built"

/usr/bin/python3 - "$T" <<'EOF2'
import os, sys, msgpack, numpy as np
sys.path.insert(0, os.path.join(os.environ["WM_ROOT"], "tests"))
from test_dynamics_torch import random_model
t = sys.argv[1]
rng = np.random.default_rng(21)
random_model(rng, f"{t}/m.safetensors", 8, 32, 2)
out = []
for c, (n, h, w) in enumerate([(24, 16, 16), (9, 16, 16), (17, 12, 20), (24, 16, 16), (3, 16, 16)] * 3):
    cid = f"c{c}"
    out.append({"kind": "clip", "id": cid, "source": "test", "fps": [25, 1]})
    z = rng.normal(0, 0.5, (h, w, 8))
    for i in range(n):
        z = 0.9 * z + rng.normal(0, 0.2, z.shape)
        out.append({"kind": "latent", "clip": cid, "index": i, "pts": i / 25, "shape": [h, w, 8], "dtype": "f32",
                    "data": z.astype("<f4").tobytes()})
    out.append({"kind": "end", "clip": cid, "frames": n})
open(f"{t}/in.wm", "wb").write(b"".join(msgpack.packb(m, use_bin_type=True) for m in out))
EOF2
if ! wm-step -q --model "$T/m.safetensors" --device cuda < /dev/null > /dev/null 2> "$T/err"; then
    skip "no CUDA device here ($(head -1 "$T/err" | sed 's/^wm-step: //'))"
fi
models=("$T/m.safetensors")
shipped="$WM_ROOT/models/wm-default.safetensors"
[ -f "$shipped" ] && grep -q '"dynamics.arch"' "$shipped" && models+=("$shipped")
for m in "${models[@]}"; do
    for args in "" "--batch 4" "--batch 15" "--rollout 12 --context 8" "--rollout 12 --context 8 --batch 15"; do
        # shellcheck disable=SC2086
        wm-step -q --model "$m" --device cpu $args < "$T/in.wm" > "$T/cpu.wm"
        # shellcheck disable=SC2086
        wm-step -q --model "$m" --device cuda $args < "$T/in.wm" > "$T/cuda.wm"
        /usr/bin/python3 "$WM_ROOT/tests/stepcheck.py" close "$T/cpu.wm" "$T/cuda.wm" 1e-3 ||
            fail "$(basename "$m") ${args:-streaming}: CUDA and CPU differ"
        ok "$(basename "$m") ${args:-streaming}: CUDA matches the CPU within 1e-3"
    done
done
wm-step -v --device cuda --model "$T/m.safetensors" < "$T/in.wm" 2> "$T/err" > /dev/null
grep -q "device .*sm_" "$T/err" || { cat "$T/err"; fail "-v does not name the GPU"; }
ok "-v names the device: $(grep -o 'device [^;]*' "$T/err")"
