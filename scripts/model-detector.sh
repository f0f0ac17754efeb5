#!/usr/bin/env bash
# The detector part of `make model` (after scripts/model-tokenizer.sh): trains
# the ball detector of models/wm-default.safetensors from scratch on the
# wm-synth training clips of scripts/model-data.sh and as many again drawn
# with smaller and bigger balls (wm-synth --ball-scale 0.6, 0.8, 1.3, 1.7;
# 250 clips each: another renderer's balls need not be wm-synth's size;
# docs/benchmarks.md, plausibility change 23); their frames carry the ball
# labels and are encoded with the model's tokenizer as they are read.  A
# fixed seed; writes it into the model file beside the other parts, and
# measures it on held-out clips of another seed, as drawn and with balls
# 0.6 and 1.5 times their radius (build/model/detector-quality.txt).
#   DETECTOR_STEPS  optimizer steps (default 6000: about 7 minutes on two cores)
#   THREADS         threads (default 2; the detector depends on it: keep it)
#   MODEL           the model file (default models/wm-default.safetensors)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$ROOT/bin:$PATH"
D="$ROOT/build/model"
MODEL=${MODEL:-$ROOT/models/wm-default.safetensors}
STEPS=${DETECTOR_STEPS:-6000}
THREADS=${THREADS:-2}

"$ROOT/scripts/model-data.sh"
sizes=()
for p in 21:0.6 22:0.8 23:1.3 24:1.7; do   # seed:scale
    f="$D/synth-balls${p#*:}.wm"
    [ -s "$f" ] || { wm-synth -q --clips 250 --seed "${p%:*}" --ball-scale "${p#*:}" > "$f.part" && mv "$f.part" "$f"; }
    sizes+=("$f")
done
mkdir -p "$D/heldout-latents"
heldout=(1 0.6 1.5)   # ball scales of the held-out clips it is measured on
for f in "${heldout[@]}"; do
    wm-synth -q --clips 100 --seed 998 --ball-scale $f | wm-encode-latent -q --model "$MODEL" --batch 32 --threads "$THREADS" \
        > "$D/heldout-latents/balls$f.wm"
done
wm-train detector --model "$MODEL" --steps "$STEPS" --batch 64 --lr 2e-3 --pos-weight 10 --seed 1 \
    --threads "$THREADS" --log-every 60 "$D/synth.wm" "${sizes[@]}" 2> "$D/detector-train.log"
for f in "${heldout[@]}"; do
    wm-train detector --model "$MODEL" --steps 0 --test "$D/heldout-latents/balls$f.wm"
done | tee "$D/detector-quality.txt"
