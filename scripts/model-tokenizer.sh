#!/usr/bin/env bash
# The tokenizer half of `make model`: trains the tokenizer of
# models/wm-default.safetensors from scratch on wm-synth clips and real
# footage (scripts/model-data.sh), with fixed seeds, then measures it on
# held-out data against the per-patch PCA baseline of the same latent size
# (build/model/tokenizer-quality.md).  Other parts of the model file (the
# dynamics model) are kept, but must be retrained on the new latents.
#   TOKENIZER_STEPS  optimizer steps (default 12000: about 9 minutes with
#                    2 threads on the project's 2-core machines)
#   THREADS          threads (default 2; the model depends on it: keep it)
#   MODEL            output (default models/wm-default.safetensors)
# Interrupted (Ctrl-C), it leaves a checkpoint; run it again with
# RESUME=1 to continue.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$ROOT/bin:$PATH"
D="$ROOT/build/model"
MODEL=${MODEL:-$ROOT/models/wm-default.safetensors}
STEPS=${TOKENIZER_STEPS:-12000}
THREADS=${THREADS:-2}
resume=()
[ "${RESUME:-0}" = 1 ] && resume=(--resume)

"$ROOT/scripts/model-data.sh"
mkdir -p "$(dirname "$MODEL")"
# C = 16: a 16x16x16 grid per 64x64 frame, where the issue allows 4-16;
# synth draws twice as often as each real stream (the crops at 128x128 add
# finer detail per pixel)
wm-train tokenizer --model "$MODEL" --checkpoint "$D/tokenizer.ckpt" \
    --latent-channels 16 --hidden 64 --blocks 2 \
    --steps "$STEPS" --batch 16 --lr 1e-3 --flip --seed 1 --weights 2,1,1 \
    --threads "$THREADS" --log-every 60 "${resume[@]}" \
    "$D/synth.wm" "$D/real64.wm" "$D/real128.wm" 2>&1 | tee "$D/tokenizer-train.log"

tests=(synth-heldout="$D/synth-heldout.wm") seen=()
for f in "$D"/heldout/*.wm; do
    n=$(basename "$f" .wm)
    tests+=("$n=$f")
    [ "$n" = birds.mp4 ] || seen+=("$n")
done
/usr/bin/python3 "$ROOT/bench/tokenizer_quality.py" --model "$MODEL" --threads "$THREADS" \
    --train "$D/synth.wm" "$D/real64.wm" --test "${tests[@]}" \
    --pool "real, last 25% of the training videos=$(IFS=,; echo "${seen[*]}")" \
           "real, all held-out footage=$(IFS=,; echo "${seen[*]}"),birds.mp4" | tee "$D/tokenizer-quality.md"
