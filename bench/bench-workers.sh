#!/usr/bin/env bash
# make bench-workers: batch scoring throughput (clips/s) of wm-dispatch with
# 1, 2 and 4 local wm-worker processes, against the same chain as one
# pipeline.  CLIPS wm-synth clips (default 64) of FRAMES frames (default 32)
# at 64x64; the chain is wm-encode-latent | wm-step | wm-score-coherence
# (without wm-score-coherence where it is not built).  Best of $REPS runs.
# Workers on one machine share its cores: on 2 cores, more than one worker
# can only overlap the stages' idle time.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
CLIPS=${CLIPS:-64} FRAMES=${FRAMES:-32}
chain="wm-encode-latent -q | wm-step -q"
[ -x bin/wm-score-coherence ] && chain="$chain | wm-score-coherence -q"

model_note="the shipped model"
in="$OUT/workers-$CLIPS-$FRAMES.wms"
[ -s "$in" ] || wm-synth --clips "$CLIPS" --frames "$FRAMES" --size 64x64 > "$in"
ep="ipc://$OUT/workers.sock"

single() { sh -c "$chain" < "$in" > /dev/null; }
dispatched() {   # workers
    local pids=() i
    wm-dispatch -q --workers "@$ep" --ordered "$in" > /dev/null &
    local d=$!
    for i in $(seq "$1"); do wm-worker -q --dispatcher "$ep" -- "$chain" & pids+=($!); done
    wait $d
    for i in "${pids[@]}"; do wait "$i"; done
}
{
machine
echo "chain: $chain; $CLIPS clips of $FRAMES frames at 64x64; $model_note; best of $REPS"
t1=$(best single)
awk -v n="$CLIPS" -v t="$t1" 'BEGIN { printf "one pipeline: %.1f clips/s (%.2f s)\n", n / t, t }'
for w in 1 2 4; do
    t=$(best dispatched "$w")
    awk -v w="$w" -v n="$CLIPS" -v t="$t" -v b="$t1" 'BEGIN {
        printf "wm-dispatch, %d worker%s: %.1f clips/s (%.2f s, %.2f of one pipeline)\n", w, (w > 1 ? "s" : ""), n / t, t, b / t }'
done
} | tee "$OUT/bench-workers.txt"
