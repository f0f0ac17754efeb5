#!/usr/bin/env bash
# wm-mux when things go wrong: what is complete is still a valid file, the
# exit status and the one-line message say what happened, and no
# temporary file stays behind.
source "$(dirname "$0")/test_mux_lib.sh"

# valid FILE FRAMES: ffmpeg decodes FILE without a complaint and finds FRAMES frames
valid() {
    ffmpeg -nostdin -v error -i "$1" -f null - 2> "$T/ffmpeg.err" || fail "ffmpeg cannot read $1"
    [ ! -s "$T/ffmpeg.err" ] || { cat "$T/ffmpeg.err" >&2; fail "ffmpeg complains about $1"; }
    [ "$(frame_count "$1")" -eq "$2" ] || fail "$1: $(frame_count "$1") frames, wanted $2"
}
no_tmp() { [ -z "$(find "$T" -name '*.tmp*')" ] || fail "temporary files left: $(find "$T" -name '*.tmp*')"; }

$PY "$MK" gen --clips 2 --frames 8 > "$T/two.wms"

# --- one file name, two clips: the first file is complete, exit 1 says what to do ---
expect_exit 1 wm-mux -o "$T/one.mp4" < "$T/two.wms"
expect_err "one\.mp4' takes one clip.*second, 'clip1'.*one_%03d\.mp4"
valid "$T/one.mp4" 8
no_tmp
ok "-o one.mp4 with two clips: exit 1 suggesting one_%03d.mp4, the first clip's file complete"

# --- a stream cut inside a frame: the complete frames make a valid file, exit 2 ---
for f in cut.mp4 cut.mkv cut.gif; do
    cut=$($PY "$MK" cut "$T/two.wms" 5)   # inside clip0's frame 5
    head -c "$cut" "$T/two.wms" > "$T/cut.wms"
    expect_exit 2 wm-mux -o "$T/$f" < "$T/cut.wms"
    expect_err "truncated stream.*byte offset [0-9]+"
    valid "$T/$f" 5
done
src_stream "$(media motion.mov)" 64x48 10 > "$T/dec.wms"
head -c $(( $(stat -c %s "$T/dec.wms") - 100 )) "$T/dec.wms" > "$T/cut.wms"
expect_exit 2 wm-mux -o "$T/dec_%02d.png" < "$T/cut.wms"
expect_err "truncated"
[ "$(ls "$T" | grep -c '^dec_.*\.png$')" -eq 9 ] || fail "truncated stream: $(ls "$T" | grep -c '^dec_') PNG files, wanted 9"
no_tmp
ok "a truncated stream gives a valid file of the complete frames (.mp4 .mkv .gif .png) and exit 2 with the offset"

# --- a frame of another size: finalized before it, exit 2 naming clip and frame ---
$PY "$MK" gen --frames 6 --bad-size-at 4 > "$T/bad.wms"
expect_exit 2 wm-mux -o "$T/bad.mp4" < "$T/bad.wms"
expect_err "clip 'clip0' frame 4 .*66x48 rgb24.*64x48"
valid "$T/bad.mp4" 4
no_tmp
ok "a frame whose size differs: exit 2 naming clip0 frame 4; the 4 frames before are in a valid file"

# --- bad usage: exit 1 naming the option ---
for args in "-o $T/x.avi" "-o $T/noext" "-o $T/still.png" "-o $T/a%s.mp4" "-o $T/a_%d_%d.mp4" \
            "-o $T/x.mkv --crf 10" "-o $T/x.mp4 --pix-fmt rgb24" "-o $T/x.mp4 --preset quick" "" \
            "-o $T/x.mp4 --out $T/s.wms"; do
    expect_exit 1 wm-mux $args < "$T/two.wms"
    expect_err "^wm-mux: --(output|crf|pix-fmt|preset|out)"
done
expect_exit 1 wm-mux -o "$T/x.avi" < /dev/null
expect_err "unknown extension \.avi"
[ -z "$(ls "$T" | grep -E '^(x|noext|still|a)')" ] || fail "bad usage left files: $(ls "$T")"
ok "unknown extension, no frame number for PNG, bad patterns and H.264-only options: exit 1 naming the option"

# --- output that cannot be written: exit 3, one line ---
mkdir "$T/ro" && chmod 555 "$T/ro"
if [ "$(id -u)" -eq 0 ]; then   # root writes anywhere: run as nobody
    command -v setpriv > /dev/null || skip "root without setpriv: cannot make a directory unwritable"
    chmod 711 "$T"
    as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
else
    as_user() { "$@"; }
fi
for f in ro/x.mp4 ro/x.mkv ro/x.gif ro/x_%03d.png missing/x.mp4; do
    expect_exit 3 as_user "$WM_ROOT/bin/wm-mux" -o "$T/$f" < "$T/two.wms"
    expect_err "^wm-mux: $T/$f: cannot write in directory $T/(ro|missing): (Permission denied|No such file)"
done
[ -z "$(ls "$T/ro")" ] || fail "files in the unwritable directory: $(ls "$T/ro")"
ok "unwritable or missing directory: exit 3 with one line"

# --- SIGTERM/SIGINT while waiting for input: what arrived is finalized, exit 130 ---
$PY "$MK" gen --frames 12 > "$T/one.wms"
head -c "$($PY "$MK" cut "$T/one.wms" 7)" "$T/one.wms" > "$T/part.wms"   # frames 0..6 and half of 7
for sig in TERM INT; do
    rm -f "$T/fifo" && mkfifo "$T/fifo"
    wm-mux -o "$T/sig_$sig.mp4" < "$T/fifo" 2> "$T/err" &
    pid=$!
    # the writer keeps the pipe open, waits until wm-mux has read everything, then signals it
    $PY - "$T/fifo" "$T/part.wms" "$pid" "$sig" <<'EOF' || fail "feeding wm-mux"
import fcntl, os, signal, struct, sys, termios, time
fifo, part, pid, sig = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
fd = os.open(fifo, os.O_WRONLY)
with open(part, "rb") as f:
    os.write(fd, f.read())
deadline = time.time() + 20
while time.time() < deadline:
    if struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0] == 0:
        break
    time.sleep(0.05)
time.sleep(0.5)   # let it encode what it read
os.kill(pid, getattr(signal, "SIG" + sig))
time.sleep(0.2)
os.close(fd)
EOF
    set +e; wait $pid; rc=$?; set -e
    [ $rc -eq 130 ] || { cat "$T/err" >&2; fail "SIG$sig: exit $rc, wanted 130"; }
    expect_err "interrupted"
    valid "$T/sig_$sig.mp4" 7
done
no_tmp
ok "SIGTERM and SIGINT: exit 130, the 7 complete frames in a valid file"

# --- nothing to write ---
expect_exit 2 wm-mux -o "$T/empty.mp4" < /dev/null
expect_err "no frames"
expect_exit 2 wm-mux -o "$T/none.mp4" --clip nope < "$T/two.wms"
expect_err "--clip: no clip 'nope'"
[ ! -e "$T/empty.mp4" ] && [ ! -e "$T/none.mp4" ] || fail "a file without frames was written"
no_tmp
ok "no frames, or no such --clip: exit 2 and no file"

# --- --help and --version ---
wm-mux --help > "$T/help" || fail "--help"
grep -q 'wm-decode in.mp4 --size 64x64 | wm-mux -o out.mkv' "$T/help" || fail "--help lacks the example"
wm-mux --version | grep -q '^wm-mux [0-9]' || fail "--version"
ok "--help with the example, --version"
