#!/usr/bin/env bash
# The development sets for changes to the scorer and the object prior's
# tracker (docs/scoring.md): matched wm-synth pairs of four seeds that are
# neither trained on nor benchmarked (make bench-physics uses 31337):
#   6000  30 pairs per category
#   9001  20 pairs per category, constancy and permanence only
#   4242  10 pairs per category (the calibration set of calibrate-score.sh)
#   777   10 pairs per category
# 340 pairs in all.  Beside them, the 180 pairs of seed 6000 drawn
# otherwise (docs/benchmarks.md, changes 17, 20 and 21): 6000r at 128x128,
# written as lossless files and resized by wm-decode as pipelines/score
# does, 6000n without sensor noise, 6000w at 96x64 (3:2) through
# lossless files, kept in its shape as pipelines/score does, and 6000l
# with 64 frames instead of 32 (change 21), 6000s and 6000b with balls 0.7
# and 1.5 times their radius (`--ball-scale`, change 23); a change that helps
# only wm-synth's own pixels shows there.  Each set is generated and encoded once (frames kept,
# as make bench-physics scores them) into build/dev/; every run scores
# them with the current bin/ and model, and prints each set's overall
# pairwise accuracy and AUROC (bench/physics.py's measures) and the right
# pairs over all sets.  And real footage's 93 pairs (below, change 33):
# the last line is the mean of the two kinds' pairwise accuracy, each
# kind weighing the same, by which the prior's weight is chosen.
# Choose on these; report make bench-physics.  The horizon's development
# set is `SEED=6262 CLIPS=80 make bench-horizon`.
#   MODEL   the model (default models/wm-default.safetensors)
#   SCORE   extra wm-score-coherence options, e.g. "--prior-weight 1"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$ROOT/bin:$PATH"
MODEL=${MODEL:-$ROOT/models/wm-default.safetensors}
D=$ROOT/build/dev
PY=/usr/bin/python3
mkdir -p "$D"
# the encoded sets depend on the tokenizer only: kept while its tensors are the same
tok=$($PY -c '
import hashlib, json, struct, sys
f = open(sys.argv[1], "rb")
n = struct.unpack("<Q", f.read(8))[0]
head = json.loads(f.read(n))
data = f.read()
h = hashlib.sha256()
for k in sorted(k for k in head if k.startswith("tokenizer.")):
    a, b = head[k]["data_offsets"]
    h.update(k.encode() + data[a:b])
print(h.hexdigest()[:16])' "$MODEL")
[ "$(cat "$D/tokenizer" 2>/dev/null)" = "$tok" ] || rm -f "$D"/enc-*.wms
echo "$tok" > "$D/tokenizer"
encode() {   # NAME: the frame stream on stdin, encoded once into $D/enc-NAME.wms (whole or absent)
    wm-encode-latent -q --keep-frames --batch 16 --model "$MODEL" > "$D/enc-$1.wms.tmp"
    mv "$D/enc-$1.wms.tmp" "$D/enc-$1.wms"
}
sets=("6000 30 all" "9001 20 constancy,permanence" "4242 10 all" "777 10 all")
for s in "${sets[@]}"; do
    read -r seed pairs cats <<<"$s"
    [ -s "$D/enc-$seed.wms" ] && continue
    cat_opt=()
    [ "$cats" = all ] || cat_opt=(--category "$cats")
    wm-synth -q --pairs "$pairs" --seed "$seed" "${cat_opt[@]}" | encode "$seed"
done
from_files() {   # NAME DRAWN DECODED: seed 6000's pairs drawn at DRAWN, through lossless files, decoded at DECODED
    local F=$D/files-$1
    rm -rf "$F" && mkdir -p "$F"
    wm-synth -q --pairs 30 --seed 6000 --size "$2" > "$F/pairs.wms"
    wm-mux -q -o "$F/c_%03d.mkv" "$F/pairs.wms"
    wm-decode -q --size "$3" "$F"/c_*.mkv > "$F/decoded.wms"
    $PY "$ROOT/bench/physics.py" restamp "$F/pairs.wms" "$F/decoded.wms" | encode "$1"
    rm -rf "$F"
}
[ -s "$D/enc-6000r.wms" ] || from_files 6000r 128x128 64x64
[ -s "$D/enc-6000n.wms" ] || wm-synth -q --pairs 30 --seed 6000 --noise 0 | encode 6000n
[ -s "$D/enc-6000w.wms" ] || from_files 6000w 96x64 -4x64
[ -s "$D/enc-6000l.wms" ] || wm-synth -q --pairs 30 --seed 6000 --frames 64 | encode 6000l
[ -s "$D/enc-6000s.wms" ] || wm-synth -q --pairs 30 --seed 6000 --ball-scale 0.7 | encode 6000s
[ -s "$D/enc-6000b.wms" ] || wm-synth -q --pairs 30 --seed 6000 --ball-scale 1.5 | encode 6000b
# real footage (change 33): 93 pairs cut by bench/physics.py realpairs from
# the first 75% of the six videos (build/model/real64.wm, which the
# tokenizer and the ConvGRU trained on: its level flatters, its
# comparisons are fair), the videos taken in the order of their clip ids
if [ ! -s "$D/enc-real.wms" ]; then
    [ -s "$ROOT/build/model/real64.wm" ] || bash "$ROOT/scripts/model-data.sh"
    $PY "$ROOT/bench/physics.py" realpairs --by-id "$D/real-pairs.wms" "$ROOT/build/model/real64.wm"
    encode real < "$D/real-pairs.wms"
    rm -f "$D/real-pairs.wms"
fi
others=("6000r" "6000n" "6000w" "6000l" "6000s" "6000b")
pids=()
for s in "${sets[@]}" "${others[@]}" real; do
    read -r seed _ <<<"$s"
    # shellcheck disable=SC2086  # SCORE holds several options
    wm-step -q --model "$MODEL" < "$D/enc-$seed.wms" | wm-score-coherence -q --json ${SCORE:-} > "$D/scores-$seed.jsonl" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done   # a scorer that fails stops the script (a bare wait would not)
$PY - "$ROOT/bench" "$D" "${#sets[@]}" "${sets[@]}" "${others[@]}" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import physics
right = n = 0
for i, s in enumerate(sys.argv[4:]):
    if i == int(sys.argv[3]):
        print(f"right pairs {right:g} of {n}")
        first, first_n = right, n
        print("the pairs of seed 6000 drawn otherwise (r: 128x128 resized, n: no noise, w: 96x64, l: 64 frames, "
              "s/b: balls 0.7/1.5 times their radius):")
        right = n = 0
    seed = s.split()[0]
    pairs, errors = physics.load_pairs(f"{sys.argv[2]}/scores-{seed}.jsonl")
    acc, auroc, k = physics.measures(pairs, seed)["overall"]
    print(f"seed {seed:<5} {k:3d} pairs  {acc * 100:5.1f}% / {auroc:.3f}" + (f"  ({errors} clips with an error)" if errors else ""))
    right += acc * k
    n += k
print(f"right pairs drawn otherwise {right:g} of {n}")
synthetic = (right + first) / (n + first_n)
pairs, errors = physics.load_pairs(f"{sys.argv[2]}/scores-real.jsonl")
acc, auroc, k = physics.measures(pairs, "real")["overall"]
print(f"real footage {k:3d} pairs  {acc * 100:5.1f}% / {auroc:.3f}" + (f"  ({errors} clips with an error)" if errors else ""))
print(f"both kinds: wm-synth {synthetic * 100:.2f}% (all {n + first_n} pairs), real {acc * 100:.2f}%, "
      f"their mean {(synthetic + acc) * 50:.2f}%")
EOF
