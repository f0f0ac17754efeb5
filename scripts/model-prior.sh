#!/usr/bin/env bash
# The object-prior part of `make model` (after scripts/model-detector.sh):
# runs the model's object prior (its tokenizer, ball detector and the
# tracker of libwm/wm_objects.c) over 300 of the wm-synth training clips of
# scripts/model-data.sh and writes the per-channel variance of the latents
# about it into the model file (prior.var; docs/model.md).  No seed: the
# clips are a fixed reservoir sample and the fit is deterministic.
#   THREADS   threads (default 2; keep it: the encoder's sums follow it)
#   MODEL     the model file (default models/wm-default.safetensors)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$ROOT/bin:$PATH"
D="$ROOT/build/model"
MODEL=${MODEL:-$ROOT/models/wm-default.safetensors}
THREADS=${THREADS:-2}

"$ROOT/scripts/model-data.sh"
wm-train prior --model "$MODEL" --threads "$THREADS" --max-clips 300 "$D/synth.wm" 2>&1 | tee "$D/prior-fit.log"
