# wm-synth on the command line: bad options get exit 1 and one line naming
# the option; the same seed writes the same bytes; output goes to a file
# or a pipe that closes early; pairs play through wm-mux.
source "$(dirname "$0")/lib.sh"

# bad usage: exit 1, one line, naming the option
expect_exit 1 wm-synth --size -5x5;          expect_err '^wm-synth: --size'
expect_exit 1 wm-synth --size 0x64;          expect_err '^wm-synth: --size'
expect_exit 1 wm-synth --size 64;            expect_err '^wm-synth: --size'
expect_exit 1 wm-synth --frames 0;           expect_err '^wm-synth: --frames'
expect_exit 1 wm-synth --frames -3;          expect_err '^wm-synth: --frames'
expect_exit 1 wm-synth --pairs 1 --frames 8; expect_err '^wm-synth: --frames: pairs need at least 16'
expect_exit 1 wm-synth --pairs 1 --size 12x12; expect_err '^wm-synth: --size: pairs need'
expect_exit 1 wm-synth --pairs 1 --category gravity,telekinesis; expect_err "^wm-synth: --category: unknown category 'telekinesis'"
expect_exit 1 wm-synth --category gravity;   expect_err '^wm-synth: --category: only applies to --pairs'
expect_exit 1 wm-synth --balls 0-3;          expect_err '^wm-synth: --balls'
expect_exit 1 wm-synth --balls 5-2;          expect_err '^wm-synth: --balls'
expect_exit 1 wm-synth --balls many;         expect_err '^wm-synth: --balls'
expect_exit 1 wm-synth --noise -1;           expect_err '^wm-synth: --noise'
expect_exit 1 wm-synth --ball-scale 0.4;     expect_err '^wm-synth: --ball-scale'
expect_exit 1 wm-synth --fps 0;              expect_err '^wm-synth: --fps'
expect_exit 1 wm-synth --clips -1;           expect_err '^wm-synth: --clips'
expect_exit 1 wm-synth --pairs x;            expect_err '^wm-synth: --pairs'
expect_exit 1 wm-synth --seed -2;            expect_err '^wm-synth: --seed'
expect_exit 1 wm-synth extra.wms;            expect_err "^wm-synth: unexpected argument 'extra.wms'"
expect_exit 1 wm-synth --bogus;              expect_err "^wm-synth: unknown option '--bogus'"
ok "bad options exit 1 with one line naming the option"

expect_exit 0 wm-synth --help
grep -q 'Example' "$T/out" && grep -q -- '--pairs' "$T/out" || fail "--help lacks the options or an example"
expect_exit 0 wm-synth --version
grep -q '^wm-synth 0.1.0' "$T/out" || fail "--version: $(cat "$T/out")"
ok "--help and --version"

# determinism: same seed, same bytes; another seed, other bytes
wm-synth --clips 2 --pairs 1 --category gravity,constancy --seed 7 > "$T/a.wms"
wm-synth --clips 2 --pairs 1 --category gravity,constancy --seed 7 > "$T/b.wms"
cmp -s "$T/a.wms" "$T/b.wms" || fail "the same seed wrote different bytes"
wm-synth --clips 2 --pairs 1 --category gravity,constancy --seed 8 > "$T/c.wms"
cmp -s "$T/a.wms" "$T/c.wms" && fail "another seed wrote the same bytes"
wm-synth --clips 2 --pairs 1 --category gravity,constancy --seed 7 --out "$T/d.wms"
cmp -s "$T/a.wms" "$T/d.wms" || fail "--out wrote other bytes than stdout"
ok "same seed, same bytes; another seed differs; --out"

# --ball-scale: the same scenes' balls, every radius scaled (0.055-0.105 of the height by default)
wm-synth --clips 2 --pairs 1 --category gravity,constancy --seed 7 --ball-scale 1 > "$T/e.wms"
cmp -s "$T/a.wms" "$T/e.wms" || fail "--ball-scale 1 changed the bytes"
for f in 0.6 1.6; do
    wm-synth --clips 6 --seed 7 --ball-scale $f > "$T/s.wms"
    /usr/bin/python3 - "$T/s.wms" $f <<'PY' || fail "--ball-scale $f: radii out of range"
import sys, msgpack
f = float(sys.argv[2])
r = {o["r"] for m in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False)
     if m.get("kind") == "frame" for o in m["objects"]}
lo, hi = 0.055 * 64 * f, 0.105 * 64 * f
assert r and min(r) >= lo - 1e-9 and max(r) <= hi + 1e-9, (min(r), max(r), lo, hi)
assert max(r) > 0.105 * 64 if f > 1 else min(r) < 0.055 * 64, (min(r), max(r))
PY
done
ok "--ball-scale: 1 changes nothing; 0.6 and 1.6 draw every ball within the scaled radii"

# a reader that goes away early is a quiet success
set +e +o pipefail
wm-synth --clips 200 2> "$T/err" | head -c 1 > /dev/null
rc=${PIPESTATUS[0]}
set -e -o pipefail
[ "$rc" -eq 0 ] && [ ! -s "$T/err" ] || fail "wm-synth | head -c1: exit $rc, stderr: $(cat "$T/err")"
ok "quiet exit when the reader goes away"

# SIGINT: the clip being written ends where it is, the stream stays whole, exit 130
wm-synth --clips 100000 --size 256x256 > "$T/int.wms" 2> "$T/err" &
pid=$!
sleep 0.5
kill -INT "$pid"
set +e; wait "$pid"; rc=$?; set -e
[ "$rc" -eq 130 ] && grep -q 'interrupted' "$T/err" || fail "interrupted wm-synth: exit $rc, stderr: $(cat "$T/err")"
if /usr/bin/python3 -c 'import msgpack' 2> /dev/null; then
    /usr/bin/python3 - "$T/int.wms" <<'PY' || fail "the interrupted stream is not whole"
import sys, msgpack
msgs = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False, max_buffer_size=1 << 30))
frames = sum(m["kind"] == "frame" for m in msgs[-300:] if m.get("clip") == msgs[-1].get("clip"))
assert msgs[-1]["kind"] == "end" and msgs[-1]["frames"] == frames, (msgs[-1], frames)
PY
fi
ok "SIGINT ends the current clip and exits 130"

# people watch pairs through wm-mux
if [ -x "$WM_ROOT/bin/wm-mux" ] && command -v ffprobe > /dev/null; then
    wm-synth --pairs 1 --category solidity --frames 20 | wm-mux -q -o "$T/pair_%03d.mp4"
    for f in "$T/pair_000.mp4" "$T/pair_001.mp4"; do
        n=$(ffprobe -v error -count_frames -show_entries stream=nb_read_frames -of csv=p=0 "$f")
        [ "$n" = 20 ] || fail "$f has $n frames, wanted 20"
    done
    ok "wm-synth --pairs | wm-mux -o pair_%03d.mp4 writes one playable file per clip"
else
    echo "(wm-mux or ffprobe not there: pairs-to-video check left out)"
fi
