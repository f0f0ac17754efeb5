# Shared by the bench scripts: source it from the repository root.
# best CMD...: the best wall time in seconds of CMD over $REPS runs (these
# 2-core machines are noisy, so the best run is the one least disturbed).
REPS=${REPS:-3}
best() {
    local b=999999 t0 t1
    for _ in $(seq "$REPS"); do
        t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N)
        b=$(awk -v a="$t0" -v z="$t1" -v b="$b" 'BEGIN { t = z - a; print (t < b ? t : b) }')
    done
    printf '%.3f' "$b"
}
# machine: the line every result file starts with
machine() {
    echo "date: $(date -u +%Y-%m-%d) machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
}
export PATH="$PWD/bin:$PATH"
OUT=bench/out
mkdir -p "$OUT"
