#!/usr/bin/env bash
# The detector part of `make model` (after scripts/model-tokenizer.sh): trains
# the ball detector of models/wm-default.safetensors from scratch on the
# wm-synth training clips of scripts/model-data.sh (their frames carry the
# ball labels and are encoded with the model's tokenizer as they are read),
# with a fixed seed, writes it into the model file beside the other parts,
# and measures it on held-out clips of another seed
# (build/model/detector-quality.txt).
#   DETECTOR_STEPS  optimizer steps (default 3000: about 4 minutes on one core)
#   THREADS         threads (default 2; the detector depends on it: keep it)
#   MODEL           the model file (default models/wm-default.safetensors)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$ROOT/bin:$PATH"
D="$ROOT/build/model"
MODEL=${MODEL:-$ROOT/models/wm-default.safetensors}
STEPS=${DETECTOR_STEPS:-3000}
THREADS=${THREADS:-2}

"$ROOT/scripts/model-data.sh"
mkdir -p "$D/heldout-latents"
wm-synth -q --clips 100 --seed 998 | wm-encode-latent -q --model "$MODEL" --batch 32 --threads "$THREADS" \
    > "$D/heldout-latents/balls.wm"
wm-train detector --model "$MODEL" --steps "$STEPS" --batch 64 --lr 2e-3 --pos-weight 10 --seed 1 \
    --threads "$THREADS" --log-every 60 --test "$D/heldout-latents/balls.wm" "$D/synth.wm" \
    2> "$D/detector-train.log" | tee "$D/detector-quality.txt"
