# Every filter in bin/ that reads or writes a stream gives the same bytes
# with ZeroMQ endpoints as with pipes and files: reading with --in @ipc://
# (it binds, a sender connects), writing with --out ipc:// (it connects to a
# reader that binds), both at once, and a whole chain with one tcp:// hop on
# loopback.  A filter added to bin/ without a case here fails the test, so
# "every filter" stays true.
source "$(dirname "$0")/lib.sh"
TO=10   # seconds any one process may take
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
n_ep=0
next_ep() { n_ep=$((n_ep + 1)); ep="ipc://$T/s$n_ep.sock"; }

# the inputs, over pipes: these are also the references of the producers
wm-synth --clips 2 --frames 8 > "$T/frames.wms"
wm-encode-latent < "$T/frames.wms" > "$T/latents.wms"
wm-step -q < "$T/latents.wms" > "$T/preds.wms"
videos=("$(media h264.mp4)" "$(media ffv1.mkv)")

# A case that fails is recorded and the others still run, so one run shows
# every filter that differs; the test fails at the end if any did.
problems=()
problem() { echo "FAIL: $*" >&2; problems+=("$*"); return 1; }
exited() { [ "$1" -eq 124 ] && echo "timed out after ${TO}s" || echo "exit $1"; }

# via_in OUT IN CMD...: CMD binds --in and reads IN sent by wm-cat; stdout to OUT
via_in() {
    local out=$1 in=$2 p; shift 2; next_ep
    timeout $TO "$@" --in "@$ep" > "$out" & p=$!
    timeout $TO wm-cat --pass --out "$ep" "$in" || { problem "$1: the sender to $ep: $(exited $?)"; wait $p; return 1; }
    wait $p || problem "'$* --in @$ep' $(exited $?)"
}
# via_out OUT IN CMD...: CMD reads IN on stdin and writes --out to a wm-cat that binds
via_out() {
    local out=$1 in=$2 p; shift 2; next_ep
    timeout $TO wm-cat --pass --in "@$ep" > "$out" & p=$!
    timeout $TO "$@" --out "$ep" < "$in" || { problem "'$* --out $ep' $(exited $?)"; wait $p; return 1; }
    wait $p || problem "the reader of '$* --out $ep': $(exited $?)"
}
# via_both OUT IN CMD...: --in and --out at once
via_both() {
    local out=$1 in=$2 p q; shift 2
    next_ep; local e_in=$ep; next_ep; local e_out=$ep
    timeout $TO wm-cat --pass --in "@$e_out" > "$out" & p=$!
    timeout $TO "$@" --in "@$e_in" --out "$e_out" & q=$!
    timeout $TO wm-cat --pass --out "$e_in" "$in" || problem "$1: the sender to $e_in failed"
    wait $q || problem "'$* --in @$e_in --out $e_out' $(exited $?)"
    wait $p || problem "the reader of '$* --in @$e_in --out $e_out': $(exited $?)"
}
same() {   # same REF OUT WHAT
    cmp -s "$1" "$2" || problem "$3: the bytes differ from the pipe's ($(wc -c < "$1") against $(wc -c < "$2"))"
}
covered=()

# stream in, stream out: --in, --out and both
stream_filter() {   # NAME IN CMD...
    local name=$1 in=$2; shift 2
    "$@" < "$in" > "$T/$name.ref" || fail "$name over pipes failed"
    [ -s "$T/$name.ref" ] || fail "$name over pipes wrote nothing"
    covered+=("$name")
    via_in "$T/$name.in" "$in" "$@" && same "$T/$name.ref" "$T/$name.in" "$name --in @ipc" &&
    via_out "$T/$name.out" "$in" "$@" && same "$T/$name.ref" "$T/$name.out" "$name --out ipc" &&
    via_both "$T/$name.both" "$in" "$@" && same "$T/$name.ref" "$T/$name.both" "$name --in @ipc --out ipc" &&
    ok "$name: --in @ipc://, --out ipc:// and both give the pipe's $(wc -c < "$T/$name.ref") bytes"
    return 0
}

stream_filter wm-encode-latent "$T/frames.wms" wm-encode-latent
stream_filter wm-decode-frame "$T/latents.wms" wm-decode-frame
stream_filter wm-step "$T/preds.wms" wm-step -q   # latents and preds in: it predicts again
stream_filter wm-cat "$T/preds.wms" wm-cat --pass
stream_filter wm-tile "$T/frames.wms" wm-tile
# the scorer is the newest filter: included as soon as it is built
if [ -x "$WM_ROOT/bin/wm-score-coherence" ]; then
    stream_filter wm-score-coherence "$T/preds.wms" wm-score-coherence
    wm-score-coherence --json < "$T/preds.wms" > "$T/score.ref"
    via_in "$T/score.in" "$T/preds.wms" wm-score-coherence --json &&
        same "$T/score.ref" "$T/score.in" "wm-score-coherence --json --in @ipc" &&
        ok "wm-score-coherence --json: --in @ipc:// gives the file's rows"
fi

# wm-cat's JSON (not a stream: it goes to stdout) from a ZeroMQ input
n_problems=${#problems[@]}
for mode in "" --stats --data; do
    wm-cat $mode "$T/preds.wms" > "$T/json.ref"
    via_in "$T/json.in" "$T/preds.wms" wm-cat $mode && same "$T/json.ref" "$T/json.in" "wm-cat ${mode:-(JSON)} --in @ipc"
done
[ ${#problems[@]} -eq $n_problems ] && ok "wm-cat: JSON, --stats and --data from --in @ipc:// equal the file's"

# producers: --out only
covered+=(wm-decode wm-synth)
wm-decode "${videos[@]}" --size 64x64 --frames 8 > "$T/dec.ref"
via_out "$T/dec.out" /dev/null wm-decode "${videos[@]}" --size 64x64 --frames 8 &&
    same "$T/dec.ref" "$T/dec.out" "wm-decode --out ipc" &&
    ok "wm-decode: --out ipc:// gives the pipe's $(wc -c < "$T/dec.ref") bytes"
via_out "$T/synth.out" /dev/null wm-synth --clips 2 --frames 8 &&
    same "$T/frames.wms" "$T/synth.out" "wm-synth --out ipc" &&
    ok "wm-synth: --out ipc:// gives the pipe's bytes"

# the sink: the same video files (GIF: no random ids in the container)
covered+=(wm-mux)
mkdir "$T/mux.ref" "$T/mux.in"
wm-mux -o "$T/mux.ref/c_%03d.gif" < "$T/frames.wms"
[ "$(ls "$T/mux.ref" | wc -l)" -eq 2 ] || fail "wm-mux over pipes: not one file per clip"
via_in /dev/null "$T/frames.wms" wm-mux -o "$T/mux.in/c_%03d.gif" &&
    same "$T/mux.ref/c_000.gif" "$T/mux.in/c_000.gif" "wm-mux --in @ipc: c_000.gif" &&
    same "$T/mux.ref/c_001.gif" "$T/mux.in/c_001.gif" "wm-mux --in @ipc: c_001.gif" &&
    ok "wm-mux: --in @ipc:// writes the same video files"

# wm-dispatch reads and writes streams too (its workers talk over a socket
# of their own, with a worker running 'wm-cat --pass')
covered+=(wm-dispatch wm-worker)
dispatch() {   # dispatch CMD...: CMD given the endpoint of a worker as its last argument
    local p; next_ep; local w=$ep
    timeout $TO wm-worker --dispatcher "$w" -- 'wm-cat --pass' & p=$!
    "$@" --workers "@$w"
    local rc=$?
    wait $p || problem "the worker of '$*' failed"
    return $rc
}
dispatch timeout $TO wm-dispatch --ordered "$T/frames.wms" > "$T/disp.ref" || fail "wm-dispatch over files"
cmp -s "$T/frames.wms" "$T/disp.ref" || fail "wm-dispatch with 'wm-cat --pass' workers changed the stream"
dispatch via_in "$T/disp.in" "$T/frames.wms" timeout $TO wm-dispatch --ordered &&
    same "$T/disp.ref" "$T/disp.in" "wm-dispatch --in @ipc" &&
    ok "wm-dispatch: --in @ipc:// gives the file's bytes"
dispatch via_out "$T/disp.out" "$T/frames.wms" timeout $TO wm-dispatch --ordered &&
    same "$T/disp.ref" "$T/disp.out" "wm-dispatch --out ipc" &&
    ok "wm-dispatch: --out ipc:// gives the file's bytes"

# a whole chain, each stage its own socket, one hop over tcp:// on loopback
tcp="tcp://127.0.0.1:$port"
next_ep; e1=$ep; next_ep; e2=$ep
timeout $TO wm-cat --pass --in "@$e2" > "$T/chain.wms" & p3=$!
timeout $TO wm-step -q --in "@$e1" --out "$e2" & p2=$!
timeout $TO wm-encode-latent --in "@$tcp" --out "$e1" & p1=$!
chain_ok=1
timeout $TO wm-synth --clips 2 --frames 8 --out "$tcp" || { problem "wm-synth --out $tcp failed"; chain_ok=0; }
for p in $p1 $p2 $p3; do wait $p || { problem "a stage of the ZeroMQ chain failed"; chain_ok=0; }; done
[ $chain_ok = 1 ] && same "$T/preds.wms" "$T/chain.wms" "wm-synth | wm-encode-latent | wm-step over tcp:// and ipc://" &&
    ok "wm-synth -> tcp:// -> wm-encode-latent -> ipc:// -> wm-step -> ipc:// -> wm-cat: the pipe chain's bytes"

# every filter has a case here; not streams: wm-train reads one but writes a
# model file (test_tokenizer.sh, test_dynamics_train.sh), wm-report reads
# JSON Lines and writes HTML
covered+=(wm-train wm-report)
for f in "$WM_ROOT"/bin/wm-*; do
    n=$(basename "$f")
    [[ " ${covered[*]} " == *" $n "* ]] || problem "$n has no ZeroMQ case in $(basename "$0"): add one" || true
done
[ ${#problems[@]} -eq 0 ] || fail "${#problems[@]} case(s) differ from pipes: $(printf '%s; ' "${problems[@]}")"
ok "every filter in bin/ ($(ls "$WM_ROOT"/bin/wm-* | wc -l)) gives the same bytes over ZeroMQ"
