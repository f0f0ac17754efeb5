#!/usr/bin/env bash
# make bench-horizon: the coherence horizon (issue 7): how many frames the
# model's own rollouts stay physically coherent.  For single-ball and
# three-ball wm-synth scenes (seed 5151, never used in training; SEED=n
# picks another, for a development set that is not the bench), the model
# sees K real frames and imagines the rest of the clip; bench/horizon.py
# finds each ball in the decoded imagined frames and counts the frames
# before the first one where a ball is off by more than its radius, vanishes
# or appears (definition and detector: bench/horizon.py).  Medians over the
# clips, beside the detector's ceiling (the real continuation through the
# tokenizer) and the no-change baseline (the last context frame repeated).
# Targets: >= 48 frames with one ball, >= 24 with three.  Then the physics
# ceiling of the same scenes (bench/horizon-ceiling.c): wm-synth's own
# physics from the true state at the last context frame, with the constants
# each scene draws and no frame shows (restitutions, friction, densities)
# set to their means, as a model that saw only the context must guess them.
#   MODEL=path  the model (default: the shipped one)
#   CLIPS=n     clips per condition (default 40)
#   FRAMES=n    frames per clip (default 72), CONTEXT=k (default 8)
#   DEVICE=...  wm-step's --device (default auto)
#   IMAGINE=... wm-step's --imagine (default auto: the object prior when the
#               model has one; dynamics: the ConvGRU alone)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
MODEL=${MODEL:-models/wm-default.safetensors}
CLIPS=${CLIPS:-40}
FRAMES=${FRAMES:-72}
CONTEXT=${CONTEXT:-8}
DEVICE=${DEVICE:-auto}
IMAGINE=${IMAGINE:-auto}
SEED=${SEED:-5151}
N=$((FRAMES - CONTEXT))
/usr/bin/python3 -c 'import msgpack, numpy' ||
    { echo "bench-horizon: needs Debian's python3 with python3-msgpack and python3-numpy" >&2; exit 1; }
/usr/bin/python3 -c '
import json, struct, sys
b = open(sys.argv[1], "rb"); h = json.loads(b.read(struct.unpack("<Q", b.read(8))[0]))
sys.exit(0 if any(k.startswith("dynamics.") for k in h) else 1)' "$MODEL" ||
    { echo "bench-horizon: $MODEL has no dynamics model (MODEL=path picks another)" >&2; exit 1; }

tmp=$OUT/horizon
mkdir -p "$tmp"
raw=$tmp/summary.txt
{
machine
echo "model: $MODEL ($(sha256sum "$MODEL" | cut -c1-12)), imagining with: $IMAGINE, $CLIPS clips per condition," \
     "$FRAMES frames of 64x64, context $CONTEXT, rollout $N, wm-synth --seed $SEED"
} > "$raw"
for balls in 1 3; do
    # more clips than needed: the first $CLIPS whose world holds exactly $balls balls, all seen in the context
    syn=(wm-synth -q --seed "$SEED" --clips $((CLIPS * 2 + 10)) --frames "$FRAMES" --size 64x64 --balls "$balls")
    "${syn[@]}" | /usr/bin/python3 bench/horizon.py select --balls "$balls" --clips "$CLIPS" --context "$CONTEXT" \
        > "$tmp/truth-$balls.wms"
    "${syn[@]}" --background-only > "$tmp/bg-$balls.wms"
    wm-encode-latent -q --model "$MODEL" --batch 32 < "$tmp/truth-$balls.wms" > "$tmp/lat-$balls.wms"
    wm-decode-frame -q --model "$MODEL" --batch 32 < "$tmp/lat-$balls.wms" > "$tmp/rt-$balls.wms"
    wm-step -q --model "$MODEL" --device "$DEVICE" --imagine "$IMAGINE" --batch 8 --rollout "$N" --context "$CONTEXT" --drop-rest \
        < "$tmp/lat-$balls.wms" | wm-decode-frame -q --model "$MODEL" --batch 32 > "$tmp/ro-$balls.wms"
    /usr/bin/python3 bench/horizon.py --label "$balls ball$([ "$balls" = 1 ] || echo s)" --context "$CONTEXT" --truth "$tmp/truth-$balls.wms" \
        --background "$tmp/bg-$balls.wms" --roundtrip "$tmp/rt-$balls.wms" --rollout "$tmp/ro-$balls.wms" \
        --json "$tmp/clips-$balls.jsonl" >> "$raw"
done
/usr/bin/python3 - "$raw" > "$OUT/bench-horizon.txt" <<'EOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
rows = [json.loads(l) for l in lines if l.startswith("{")]
print("\n".join(l for l in lines if not l.startswith("{")))
print()
print("| balls | clips | rollout | model: median horizon | quartiles | mean | clips that last | detector ceiling | "
      "no-change baseline | target |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for r in rows:
    tgt = 48 if r["label"].startswith("1 ") else 24
    m = r["model"]
    print(f"| {r['label']} | {r['clips']} | {r['rollout']} | **{m['median']:g}** | {m['q25']:g}-{m['q75']:g} | "
          f"{m['mean']:.1f} | {m['full']} | {r['ceiling']['median']:g} ({r['ceiling']['full']} last) | "
          f"{r['baseline']['median']:g} (mean {r['baseline']['mean']:.1f}) | >= {tgt}: "
          f"{'met' if m['median'] >= tgt else 'not met'} |")
for r in rows:
    print(f"{r['label']}: first failures, model {r['model']['failures']}, ceiling {r['ceiling']['failures']}, "
          f"baseline {r['baseline']['failures']}; detector centre error on real frames (balls inside the frame, at least half their disc showing): "
          f"mean {r['detector_centre_error_px']['mean']:.2f} px, p99 {r['detector_centre_error_px']['p99']:.2f} px")
EOF
{
echo
for balls in 1 3; do build/bench/horizon-ceiling "$SEED" "$CLIPS" "$balls" "$FRAMES" "$CONTEXT"; done
} >> "$OUT/bench-horizon.txt"
cat "$OUT/bench-horizon.txt"
