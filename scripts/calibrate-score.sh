#!/usr/bin/env bash
# The plausibility calibration of wm-score-coherence for a model
# (docs/scoring.md): scores matched wm-synth pairs of seed 4242 (not the
# benchmark's 31337, not a training seed) with the model and prints
#   center: the surprise_clip threshold that best separates possible from
#           impossible clips (balanced accuracy; midway between neighbours)
#   scale:  half the standard deviation of the possible clips' surprise_clip
# as the --center and --scale to use (the shipped defaults are in
# libwm/wm_score.h).
#   MODEL  the model (default models/wm-default.safetensors)
#   PAIRS  pairs per category (default 10)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$ROOT/bin:$PATH"
MODEL=${MODEL:-$ROOT/models/wm-default.safetensors}
PAIRS=${PAIRS:-10}
wm-synth -q --pairs "$PAIRS" --seed 4242 | wm-encode-latent -q --batch 16 --model "$MODEL" |
    wm-step -q --model "$MODEL" | wm-score-coherence -q --json |
    /usr/bin/python3 -c '
import json, sys
import numpy as np
rows = [json.loads(l) for l in sys.stdin]
pos = np.array([r["surprise_clip"] for r in rows if "error" not in r and r["synth"]["possible"]])
imp = np.array([r["surprise_clip"] for r in rows if "error" not in r and not r["synth"]["possible"]])
vals = np.unique(np.concatenate([pos, imp]))
cands = (vals[1:] + vals[:-1]) / 2 if len(vals) > 1 else vals
best = max(cands, key=lambda t: ((pos <= t).mean() + (imp > t).mean()) / 2)
bacc = ((pos <= best).mean() + (imp > best).mean()) / 2
print(f"center {best:.4f}\nscale {max(pos.std() / 2, 1e-3):.4f}")
print(f"# {len(pos)} possible, {len(imp)} impossible clips; balanced accuracy at the center {bacc:.3f}", file=sys.stderr)
'
