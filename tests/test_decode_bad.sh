# Bad inputs: each gets exit 2, one line on stderr naming the file, a clip
# and an end carrying "error", and the inputs after it are still decoded.
# Bad usage: exit 1 naming the option.
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import msgpack' 2> /dev/null || skip "Debian python3-msgpack missing"
check() { /usr/bin/python3 "$WM_ROOT/tests/decodecheck.py" "$@"; }
good=$(media odd.mp4)

mkdir "$T/dir"
: > "$T/empty.mp4"
for spec in "$T/missing.mp4:No such file" "$T/dir:directory" "$T/empty.mp4:empty" \
            "$(media truncated.mp4):cannot open" "$(media audio_only.m4a):no video stream" \
            "$(media garbage.bin):cannot open"; do
    bad=${spec%:*} why=${spec##*:}
    expect_exit 2 wm-decode -q "$bad" "$good"
    expect_err "^wm-decode: $bad: .*$why"
    check summary "$T/out" > "$T/s.txt"
    grep -qxF "clip id=0 source=$bad error=$(cut -d' ' -f2- "$T/err")" "$T/s.txt" ||
        { cat "$T/s.txt" >&2; fail "$bad: no clip with the error"; }
    grep -qxF "end clip=0 frames=0 error=$(cut -d' ' -f2- "$T/err")" "$T/s.txt" || fail "$bad: no end with the error"
    grep -qx "clip id=1 source=$good fps=25/1 size=33x17" "$T/s.txt" || fail "$bad: the good file after it has no clip"
    [ "$(grep -c '^frame clip=1 ' "$T/s.txt")" -eq 25 ] || fail "$bad: the good file after it lost frames"
    grep -qx "end clip=1 frames=25" "$T/s.txt" || fail "$bad: the good file after it has no end"
    ok "$(basename "$bad"): exit 2, '$(cat "$T/err")', the next input complete"
done

# a decode error in the middle keeps the frames before it: H.264 with 4000 bytes zeroed at 30%
/usr/bin/python3 - "$(media h264.mp4)" "$T/damaged.mp4" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
at = len(b) * 3 // 10
b[at:at + 4000] = bytes(4000)
open(sys.argv[2], "wb").write(b)
EOF
expect_exit 2 wm-decode -q --size 16x16 "$T/damaged.mp4" "$good"
expect_err "^wm-decode: $T/damaged.mp4: frame [0-9]+ \(byte offset [0-9]+\): decode error"
check summary "$T/out" > "$T/s.txt"
n=$(grep -c '^frame clip=0 ' "$T/s.txt")
[ "$n" -gt 0 ] && [ "$n" -lt 60 ] || fail "damaged: $n frames before the error"
grep -qxF "end clip=0 frames=$n error=$(cut -d' ' -f2- "$T/err")" "$T/s.txt" || fail "damaged: no end with the error"
grep -qx "end clip=1 frames=25" "$T/s.txt" || fail "damaged: the good file after it is not complete"
ok "a decode error mid-file keeps the $n frames before it"

# no unbounded allocation: a header claiming a huge picture, frames over the message cap
ffmpeg -nostdin -v error -f lavfi -i color=size=16400x8 -frames:v 1 -c:v ffv1 "$T/wide.mkv"
expect_exit 2 wm-decode -q "$T/wide.mkv"
expect_err "^wm-decode: $T/wide.mkv: video size 16400x8 is outside 1x1\.\.16384x16384"
expect_exit 2 wm-decode -q --max-message 1M --size 1000x1000 "$good"
expect_err "^wm-decode: $good: 1000x1000 rgb24 frames of 3000000 bytes do not fit a message"
ok "sizes over the caps are refused before any allocation"

# several bad inputs: one line each, still exit 2
expect_exit 2 wm-decode -q "$T/missing.mp4" "$good" "$T/dir"
[ "$(wc -l < "$T/err")" -eq 2 ] || fail "two bad inputs, not two lines: $(cat "$T/err")"
ok "two bad inputs, two lines"

# bad usage names the option
expect_exit 1 wm-decode --bogus "$good"
expect_err "^wm-decode: .*--bogus"
expect_exit 1 wm-decode --size 0x5 "$good"
expect_err "^wm-decode: --size: .*0x5"
expect_exit 1 wm-decode --size 100000x5 "$good"
expect_err "^wm-decode: --size"
expect_exit 1 wm-decode --fit wrong "$good"
expect_err "^wm-decode: --fit: 'wrong' is not one of crop, pad, stretch"
expect_exit 1 wm-decode --fps 0 "$good"
expect_err "^wm-decode: --fps"
expect_exit 1 wm-decode --frames -3 "$good"
expect_err "^wm-decode: --frames"
expect_exit 1 wm-decode --scaler nope "$good"
expect_err "^wm-decode: --scaler"
expect_exit 1 wm-decode --in "$good"
expect_err "^wm-decode: --in: "
expect_exit 1 wm-decode
expect_err "^wm-decode: no input"
[ ! -s "$T/out" ] || fail "bad usage wrote a stream"
ok "bad usage: exit 1 naming the option"
