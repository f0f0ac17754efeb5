# wm-decode's options and stream shape on real files: frame counts, odd
# sizes, --size/--fit, --gray, --fps, --start/--frames/--duration, variable
# frame rate, rotation, audio, several inputs, stdin, EPIPE and SIGINT.
source "$(dirname "$0")/lib.sh"
command -v ffmpeg > /dev/null || skip "no ffmpeg CLI"
/usr/bin/python3 -c 'import msgpack, numpy' 2> /dev/null || skip "Debian python3-msgpack or python3-numpy missing"
check() { /usr/bin/python3 "$WM_ROOT/tests/decodecheck.py" "$@"; }

# dec ARGS...: decodes into $T/s.wms and its summary $T/s.txt
dec() {
    wm-decode -q "$@" > "$T/s.wms" || fail "wm-decode $* exited $?"
    check summary "$T/s.wms" > "$T/s.txt"
}
frames() { grep -c '^frame' "$T/s.txt" || true; }
has() { grep -qE -- "$1" "$T/s.txt" || { cat "$T/s.txt" >&2; fail "${2:-no line matches '$1'}"; }; }
pts_list() { grep '^frame' "$T/s.txt" | sed 's/.* pts=\([^ ]*\) .*/\1/' | head -n "$1" | tr '\n' ' '; }

# frame counts: every frame, the last ones drained from the decoder too
for spec in h264.mp4:60 vp9.webm:30 mpeg4.avi:45 mjpeg.avi:30 ffv1.mkv:30 odd.mp4:25 vfr.mkv:30 \
            rotated.mp4:10 audio.mp4:30; do
    name=${spec%:*} want=${spec#*:}
    dec --size 16x16 "$(media "$name")"
    [ "$(frames)" -eq "$want" ] || fail "$name: $(frames) frames, wanted $want"
    has "^end clip=0 frames=$want\$" "$name: end does not say $want frames"
done
ok "frame counts of every input (audio.mp4's video included)"

dec "$(media h264.mp4)"
[ "$(head -n 1 "$T/s.txt")" = "stream producer=wm-decode 0.1.0" ] || fail "no stream message first"
has "^clip id=0 source=$MEDIA/h264.mp4 fps=30/1 size=320x240\$"
has "^frame clip=0 index=59 pts=1.966667 size=320x240 format=rgb24 bytes=230400\$"
ok "stream, clip, frame and end messages"

dec "$(media odd.mp4)"
has "^clip id=0 .* fps=25/1 size=33x17\$"
has "^frame clip=0 index=24 .* size=33x17 format=rgb24 bytes=1683\$"
ok "odd native size 33x17"

# --size with each --fit gives the size asked; pad's bars are black
for fit in crop pad stretch; do
    dec --size 48x64 --fit "$fit" "$(media h264.mp4)"
    has "^clip id=0 .* size=48x64\$"
    [ "$(grep -c '^frame .* size=48x64 format=rgb24 bytes=9216$' "$T/s.txt")" -eq 60 ] || fail "--fit $fit: frame sizes"
done
args=("$(media h264.mp4)" "$(media rotated.mp4)" "$(media anamorphic.mp4)")
/usr/bin/python3 - "$T/s.wms" "${args[@]}" <<'EOF' || fail "pad bars, or crop and pad of an anamorphic video"
import subprocess, sys, msgpack, numpy as np
def frames(*args):
    out = subprocess.run(["wm-decode", "-q", *args], capture_output=True, check=True).stdout
    u = msgpack.Unpacker(raw=False, max_buffer_size=1 << 30)
    u.feed(out)
    return [np.frombuffer(m["data"], np.uint8).reshape(m["height"], m["width"], -1) for m in u if m["kind"] == "frame"]
# 320x240 into 48x64: scaled to 48x36, bars of 14 rows above and below
for a in frames("--size", "48x64", "--fit", "pad", sys.argv[2]):
    assert not a[:14].any() and not a[50:].any() and a[14:50].any(), "h264 pad bars"
# rotated (32x64 upright) into 64x64: bars of 16 columns left and right
for a in frames("--size", "64x64", "--fit", "pad", sys.argv[3]):
    assert not a[:, :16].any() and not a[:, 48:].any() and a[:, 16:48].any(), "rotated pad bars"
# crop and pad keep the shape as shown: the anamorphic 4:3 picture (shown
# 8:3) padded into 64x64 is 64x24 with bars of 20 rows, cropped keeps the
# middle 3/8 of its width
for a in frames("--size", "64x64", "--fit", "pad", sys.argv[4]):
    assert not a[:20].any() and not a[44:].any() and a[20:44].any(), "anamorphic pad bars"
wide = frames("--size", "128x48", "--fit", "stretch", sys.argv[4])
for a, c in zip(wide, frames("--size", "48x48", "--fit", "crop", sys.argv[4])):
    assert np.abs(a[:, 40:88].mean((0, 2)) - c.mean((0, 2))).mean() < 3, "anamorphic crop: not the middle"
EOF
ok "--size with crop, pad (black bars) and stretch, anamorphic pixels counted"

# --size with a side of -n: from the other and the aspect ratio as shown,
# a multiple of n; rotation and the pixels' shape (sample aspect ratio) count
for spec in "h264.mp4 -4x64 84x64" "h264.mp4 -1x64 85x64" "h264.mp4 64x-4 64x48" "rotated.mp4 -4x64 32x64" \
            "anamorphic.mp4 -4x48 128x48" "anamorphic.mp4 64x-2 64x24"; do
    read -r name size want <<<"$spec"
    dec --size="$size" "$(media "$name")"
    has "^clip id=0 .* size=$want\$" "$name --size $size: not $want"
done
dec --size=-4x64 --fit pad "$(media h264.mp4)"
[ "$(grep -c '^frame .* size=84x64 ' "$T/s.txt")" -eq 60 ] || fail "--size -4x64: frame sizes"
wm-decode -q --size=-4x-4 "$(media h264.mp4)" > /dev/null 2> "$T/err" && fail "--size -4x-4 accepted"
grep -q "one of them possibly -n" "$T/err" || fail "--size -4x-4: $(cat "$T/err")"
ok "--size -nxH and Wx-n: the other side from the aspect ratio as shown, a multiple of n"

dec --gray --size 40x30 "$(media mjpeg.avi)"
[ "$(grep -c '^frame .* size=40x30 format=gray8 bytes=1200$' "$T/s.txt")" -eq 30 ] || fail "--gray frames"
ok "--gray gives gray8 frames"

# --fps: 30 fps, 60 frames -> 10 fps gives 20 frames at k/10; 60 fps repeats
dec --fps 10 --size 16x16 "$(media h264.mp4)"
[ "$(frames)" -eq 20 ] || fail "--fps 10: $(frames) frames, wanted 20"
has "^clip id=0 .* fps=10/1 size=16x16\$"
[ "$(pts_list 4)" = "0.000000 0.100000 0.200000 0.300000 " ] || fail "--fps 10 pts: $(pts_list 4)"
has "^frame clip=0 index=19 pts=1.900000 "
dec --fps 60 --size 16x16 "$(media h264.mp4)"
[ "$(frames)" -eq 120 ] || fail "--fps 60: $(frames) frames, wanted 120"
# the frames chosen are those of FFmpeg's fps filter, also for variable rate
for spec in vfr.mkv:10 vfr.mkv:33 h264.mp4:24000/1001 cityCC0.mpg:7; do
    name=${spec%:*} rate=${spec#*:}
    wm-decode -q --fps "$rate" --fit stretch --size 32x24 "$(media "$name")" | check raw - > "$T/wm.raw"
    ffmpeg -nostdin -v error -i "$(media "$name")" -vf "fps=$rate,scale=32:24:flags=bicubic" \
        -f rawvideo -pix_fmt rgb24 - > "$T/ff.raw"
    cmp -s "$T/wm.raw" "$T/ff.raw" || fail "$name --fps $rate: not the frames of ffmpeg -vf fps=$rate"
done
ok "--fps resamples by timestamps as FFmpeg's fps filter does"

# every frame of h264.mp4 at 32x24, for --near-fps and --start below
dec --size 32x24 --fit stretch "$(media h264.mp4)"; check raw "$T/s.wms" > "$T/all.raw"

# --near-fps: every k-th frame of the 30 fps video, k whole (0, 2, 4, ... at 15),
# never resampled to a rate that would drop frames unevenly (every frame at 25)
dec --size 32x24 --fit stretch --near-fps 15 "$(media h264.mp4)"
[ "$(frames)" -eq 30 ] || fail "--near-fps 15: $(frames) frames, wanted 30"
has "^clip id=0 .* fps=15/1 size=32x24\$"
check raw "$T/s.wms" > "$T/near.raw"
/usr/bin/python3 - "$T/all.raw" "$T/near.raw" <<'EOF' || fail "--near-fps 15: not frames 0, 2, 4, ..."
import sys
a, b, n = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), 32 * 24 * 3
assert b == b"".join(a[i * n:(i + 1) * n] for i in range(0, 60, 2))
EOF
dec --size 16x16 --near-fps 25 "$(media h264.mp4)"
[ "$(frames)" -eq 60 ] || fail "--near-fps 25: $(frames) frames, wanted all 60"
has "^clip id=0 .* fps=30/1 size=16x16\$"
dec --size 16x16 --near-fps 8 "$(media h264.mp4)"
[ "$(frames)" -eq 15 ] || fail "--near-fps 8: $(frames) frames, wanted every 4th: 15"
ok "--near-fps keeps every k-th frame, k whole"

# --start seeks (and goes back when a seek lands late: MPEG-PS), --frames, --duration
dec --size 32x24 --fit stretch --start 1 --frames 5 "$(media h264.mp4)"
[ "$(frames)" -eq 5 ] || fail "--start 1 --frames 5: $(frames) frames"
[ "$(pts_list 2)" = "1.000000 1.033333 " ] || fail "--start 1 pts: $(pts_list 2)"
check raw "$T/s.wms" | cmp -s - <(tail -c +$((30 * 2304 + 1)) "$T/all.raw" | head -c $((5 * 2304))) ||
    fail "--start 1: not frames 30..34"
dec --size 16x16 --start 0.5 --duration 0.5 "$(media h264.mp4)"
[ "$(frames)" -eq 15 ] || fail "--start 0.5 --duration 0.5: $(frames) frames, wanted 15"
dec --size 32x24 --fit stretch "$(media cityCC0.mpg)"; check raw "$T/s.wms" > "$T/all.raw"
dec --size 32x24 --fit stretch --start 3.3 --frames 3 "$(media cityCC0.mpg)"
[ "$(pts_list 1)" = "3.320000 " ] || fail "cityCC0 --start 3.3 pts: $(pts_list 1)"
check raw "$T/s.wms" | cmp -s - <(tail -c +$((83 * 2304 + 1)) "$T/all.raw" | head -c $((3 * 2304))) ||
    fail "cityCC0 --start 3.3: not frames 83..85"
ok "--start, --frames, --duration"

dec --size 16x16 "$(media vfr.mkv)"
[ "$(pts_list 6)" = "0.000000 0.070000 0.100000 0.170000 0.200000 0.270000 " ] || fail "vfr pts: $(pts_list 6)"
ok "variable frame rate keeps its timestamps"

# rotation: 64x32 with a 90 degree display matrix comes out 32x64, as the CLI's autorotate
dec "$(media rotated.mp4)"
has "^clip id=0 .* size=32x64\$"
check raw "$T/s.wms" > "$T/wm.raw"
ffmpeg -nostdin -v error -i "$(media rotated.mp4)" -f rawvideo -pix_fmt rgb24 - > "$T/ff.raw"
mad=$(check mad "$T/wm.raw" "$T/ff.raw") || fail "rotated: size differs from ffmpeg's"
awk -v m="$mad" 'BEGIN { exit !(m < 2) }' || fail "rotated: mean difference $mad from ffmpeg's autorotate"
ok "rotated.mp4 is upright 32x64 (mean difference $mad from ffmpeg)"

# several inputs, stdin
dec --size 16x16 --id-prefix v "$(media odd.mp4)" "$(media vp9.webm)" "$(media odd.mp4)"
[ "$(grep -c '^clip' "$T/s.txt")" -eq 3 ] || fail "three inputs, not three clips"
has "^clip id=v1 source=$MEDIA/vp9.webm "
has "^end clip=v2 frames=25\$"
[ "$(grep '^frame clip=v1' "$T/s.txt" | grep -c .)" -eq 30 ] || fail "second clip's frames"
wm-decode -q --size 16x16 - < "$(media ffv1.mkv)" | check summary - > "$T/s.txt"
has "^clip id=0 source=- fps=30/1 size=16x16\$"
has "^end clip=0 frames=30\$"
ok "several inputs are several clips; - reads stdin"

# the reader going away is a quiet success
set +e
wm-decode "$(media h264.mp4)" 2> "$T/err" | head -c1 > /dev/null
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || fail "| head -c1: exit $rc"
[ ! -s "$T/err" ] || fail "| head -c1: stderr: $(cat "$T/err")"
ok "wm-decode x.mp4 | head -c1 exits 0 quietly"

# SIGINT stops at a frame boundary: the clip still ends, the exit is 130
city=$(media cityCC0.mpg)
{ wm-decode --size 64x64 "$city" 2> "$T/int.err" & echo $! > "$T/pid"; rc=0; wait $! || rc=$?; echo $rc > "$T/rc"; } |
    { sleep 1; cat > "$T/int.wms"; } &
while [ ! -s "$T/pid" ]; do sleep 0.05; done
sleep 0.5   # let it fill the pipe and block; until it has set its handler a signal may be lost, so repeat
while kill -INT "$(cat "$T/pid")" 2> /dev/null; do sleep 0.2; done
wait
[ "$(cat "$T/rc")" -eq 130 ] || fail "SIGINT: exit $(cat "$T/rc")"
check summary "$T/int.wms" > "$T/s.txt"
n=$(frames)
[ "$n" -lt 190 ] || fail "SIGINT: all $n frames came out"
[ "$(tail -n 1 "$T/s.txt")" = "end clip=0 frames=$n" ] || fail "SIGINT: clip not ended: $(tail -n 1 "$T/s.txt")"
ok "SIGINT: exit 130 after $n frames and the clip's end"
