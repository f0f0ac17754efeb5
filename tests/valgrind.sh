#!/usr/bin/env bash
# Valgrind memcheck over the main pipeline on a tiny input, one filter at a
# time, so each run is one process: wm-decode -> wm-encode-latent ->
# wm-step (teacher, --batch, rollout) -> wm-decode-frame -> wm-cat, wm-synth
# and wm-mux, plus the error paths (a cut stream, a damaged video, a model
# that does not load, a full disk).  Any memory error or leak (definite or
# possible) fails: valgrind exits 99.  Not part of `make test` (one or two
# minutes); `make valgrind` and CI run it.  wm-step runs with --device cpu:
# the CUDA runtime's own probing is not ours to check.
source "$(dirname "$0")/lib.sh"
command -v valgrind > /dev/null || skip "valgrind is not installed"
export WM_MODEL="$WM_ROOT/tests/fuzz/corpus_safetensors/model.st"
VG=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,possible --error-exitcode=99
    --suppressions="$WM_ROOT/tests/valgrind.supp")
n=0
# vg EXPECTED-EXIT OUT CMD...: CMD under memcheck, stdout to OUT
vg() {
    local want=$1 out=$2; shift 2
    set +e; "${VG[@]}" "$@" > "$out" 2> "$T/vg.err"; local rc=$?; set -e
    if [ $rc -eq 99 ] || grep -q '^==[0-9]*==' "$T/vg.err"; then cat "$T/vg.err" >&2; fail "memcheck: $*"; fi
    [ $rc -eq "$want" ] || { cat "$T/vg.err" >&2; fail "'$*' exited $rc, wanted $want"; }
    n=$((n + 1))
    echo "clean: $*"
}

ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i testsrc2=size=32x32:rate=25 -frames:v 4 \
    -c:v libx264 -pix_fmt yuv420p -movflags +faststart "$T/tiny.mp4"
vg 0 "$T/frames.wm" wm-decode "$T/tiny.mp4"
vg 0 "$T/lat.wm" wm-encode-latent "$T/frames.wm"
vg 0 "$T/pred.wm" wm-step -q --device cpu "$T/lat.wm"
vg 0 /dev/null wm-step -q --device cpu --batch 2 "$T/lat.wm" "$T/lat.wm"
vg 0 "$T/dream.wm" wm-step -q --device cpu --rollout 3 --context 2 --drop-rest "$T/lat.wm"
vg 0 "$T/dec.wm" wm-decode-frame "$T/dream.wm"
vg 0 /dev/null wm-cat "$T/pred.wm"
vg 0 /dev/null wm-cat --stats "$T/dec.wm"
vg 0 "$T/pass.wm" wm-cat --pass "$T/frames.wm"
vg 0 "$T/synth.wm" wm-synth --clips 1 --frames 4 --size 32x32
vg 0 /dev/null wm-synth --pairs 1 --category gravity --frames 16 --size 16x16
vg 0 /dev/null wm-mux -o "$T/out.mkv" "$T/synth.wm"
vg 0 /dev/null wm-mux -o "$T/out.mp4" "$T/dec.wm"
vg 0 /dev/null wm-mux -o "$T/out_%02d.png" "$T/frames.wm"
# error paths free what they took too
head -c $(( $(stat -c %s "$T/lat.wm") - 10 )) "$T/lat.wm" > "$T/cut.wm"
vg 2 /dev/null wm-step -q --device cpu "$T/cut.wm"
vg 2 /dev/null wm-mux -o "$T/cut.mkv" <(head -c $(( $(stat -c %s "$T/synth.wm") - 10 )) "$T/synth.wm")
head -c $(( $(stat -c %s "$T/tiny.mp4") / 2 )) "$T/tiny.mp4" > "$T/damaged.mp4"
vg 2 /dev/null wm-decode "$T/damaged.mp4"
vg 1 /dev/null wm-encode-latent --model /etc/passwd "$T/frames.wm"
vg 3 /dev/full wm-encode-latent "$T/frames.wm"
ok "valgrind memcheck: $n runs, no errors, no leaks"
