#!/usr/bin/env bash
# The dynamics half of `make model` (after scripts/model-tokenizer.sh): trains
# the dynamics model of models/wm-default.safetensors from scratch on the
# latents of the same data (scripts/model-data.sh: wm-synth clips and the
# first 75% of each real video; the frames are encoded with the model's new
# tokenizer as they are read), with a fixed seed, writes it into the model
# file beside the tokenizer, then measures it on held-out clips against the
# no-change and constant-velocity baselines (build/model/dynamics-quality.md).
#   DYNAMICS_STEPS  optimizer steps (default 8000, the shipped model: about 30 minutes
#                   with 2 threads on the project's 2-core machines)
#   THREADS         threads (default 2; the model depends on it: keep it)
#   MODEL           the model file (default models/wm-default.safetensors)
# Interrupted (Ctrl-C), it leaves a checkpoint; run it again with RESUME=1
# to continue.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$ROOT/bin:$PATH"
D="$ROOT/build/model"
MODEL=${MODEL:-$ROOT/models/wm-default.safetensors}
STEPS=${DYNAMICS_STEPS:-8000}
THREADS=${THREADS:-2}
resume=()
[ "${RESUME:-0}" = 1 ] && resume=(--resume)

"$ROOT/scripts/model-data.sh"
# synthetic physics three times as often as the real footage (one long clip
# per video, cut into random windows); beta-NLL with beta 1: the mean learns
# as under a squared error, so the few cells where something moves are not
# drowned by the calm background's small variances; half the windows are fed
# their own predictions from a random step on (scheduled sampling), so
# rollouts learn from their own errors
wm-train dynamics --model "$MODEL" --checkpoint "$D/dynamics.ckpt" \
    --hidden 32 --dilation 2 --steps "$STEPS" --batch 16 --seq 31 --tbptt 16 --lr 2e-3 --beta 1 --rollout-p 0.5 \
    --seed 1 --weights 3,1 --threads "$THREADS" --log-every 60 "${resume[@]}" \
    "$D/synth.wm" "$D/real64.wm" 2>&1 | tee "$D/dynamics-train.log"

# held-out latents: wm-synth clips of another seed, the held-out real footage,
# and matched possible/impossible pairs for a first look at surprise
enc() { wm-encode-latent -q --model "$MODEL" --batch 32 --threads "$THREADS" "$@"; }
L="$D/heldout-latents"
mkdir -p "$L"
enc "$D/synth-heldout.wm" > "$L/synth-heldout.wm"
sets=(synth-heldout="$L/synth-heldout.wm")
for f in "$D"/heldout/*.wm; do
    n=$(basename "$f" .wm)
    enc "$f" > "$L/$n.wm"
    sets+=("$n=$L/$n.wm")
done
wm-synth -q --pairs 10 --seed 4242 | enc > "$L/pairs.wm"
wm-synth -q --clips 200 --seed 997 | enc > "$L/occlusion.wm"
/usr/bin/python3 "$ROOT/bench/dynamics_quality.py" --model "$MODEL" --threads "$THREADS" --pairs "$L/pairs.wm" \
    --occlusion "$L/occlusion.wm" "${sets[@]}" | tee "$D/dynamics-quality.md"
