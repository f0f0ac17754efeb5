#!/usr/bin/env bash
# wm-mux: frames into real video files, read back with wm-decode (or the
# ffmpeg CLI when wm-decode is not built) and checked with ffprobe.
source "$(dirname "$0")/test_mux_lib.sh"

# --- decode -> mux (FFV1) -> decode is exact, rgb24 and gray8 ---
check_exact() {   # NAME SIZE FRAMES [--gray]
    local s="$T/src.wms"
    src_stream "$(media "$1")" "$2" "$3" ${4:-} > "$s"
    stream_raw "$s" > "$T/want.raw"
    wm-mux -o "$T/rt.mkv" < "$s" || fail "wm-mux -o rt.mkv ($1 $2 ${4:-})"
    [ "$(frame_count "$T/rt.mkv")" -eq "$3" ] || fail "rt.mkv of $1: $(frame_count "$T/rt.mkv") frames, wanted $3"
    file_raw "$T/rt.mkv" ${4:-} > "$T/got.raw"
    cmp -s "$T/want.raw" "$T/got.raw" || fail "FFV1 round trip of $1 $2 ${4:-} is not exact"
    ok "decode -> mux .mkv (FFV1) -> decode is exact: $1 $2 ${4:-rgb24}"
}
check_exact motion.mov 160x120 20
check_exact h264.mp4 96x64 12
check_exact odd.mp4 33x17 10
check_exact motion.mov 64x64 10 --gray

# --- decode -> mux (H.264) -> decode: PSNR >= 40 dB on real footage ---
src_stream "$(media motion.mov)" 160x120 30 > "$T/nat.wms"
stream_raw "$T/nat.wms" > "$T/nat.raw"
check_psnr() {   # FILE MIN [wm-mux options]
    local f=$1 min=$2; shift 2
    wm-mux -o "$T/$f" "$@" < "$T/nat.wms" || fail "wm-mux -o $f $*"
    [ "$(frame_count "$T/$f")" -eq 30 ] || fail "$f: $(frame_count "$T/$f") frames, wanted 30"
    file_raw "$T/$f" > "$T/got.raw"
    local p
    p=$($PY "$MK" psnr "$T/nat.raw" "$T/got.raw") || fail "psnr of $f"
    awk -v p="$p" -v m="$min" 'BEGIN { exit !(p == "inf" || p + 0 >= m) }' || fail "$f $*: PSNR $p dB < $min"
    ok "decode -> mux $f ${*:-(defaults)} -> decode: PSNR $p dB (>= $min)"
}
check_psnr nat.mp4 40
check_psnr nat444.mp4 40 --pix-fmt yuv444p
check_psnr nat.mov 40
check_psnr nat.gif 35          # a palette of 256 colours per frame
[ "$(pix_fmt "$T/nat.mp4")" = yuv420p ] || fail "nat.mp4 is $(pix_fmt "$T/nat.mp4"), wanted yuv420p"
[ "$(pix_fmt "$T/nat444.mp4")" = yuv444p ] || fail "nat444.mp4 is not yuv444p"
[ "$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name -of csv=p=0 "$T/nat.mp4")" = h264 ] ||
    fail "nat.mp4 is not H.264"

# --- frame counts and pts in the files (ffprobe) ---
$PY "$MK" gen --frames 24 --fps 30 > "$T/cfr.wms"
$PY "$MK" gen --frames 24 --fps 25 --vfr > "$T/vfr.wms"   # gaps of 70 and 30 ms
$PY "$MK" pts "$T/cfr.wms" > "$T/cfr.pts"
$PY "$MK" pts "$T/vfr.wms" > "$T/vfr.pts"
for f in p.mp4 p.mov p.mkv p.gif; do
    for kind in cfr vfr; do
        [ $kind = cfr ] && [ $f = p.gif ] && continue   # GIF keeps hundredths of a second
        wm-mux -o "$T/$f" < "$T/$kind.wms" || fail "wm-mux -o $f < $kind"
        [ "$(frame_count "$T/$f")" -eq 24 ] || fail "$f ($kind): $(frame_count "$T/$f") frames, wanted 24"
        file_pts "$T/$f" > "$T/got.pts"
        # Matroska stores milliseconds; the others are exact
        tol=0.000001; [ $f = p.mkv ] && [ $kind = cfr ] && tol=0.0005
        same_numbers "$T/$kind.pts" "$T/got.pts" $tol || fail "$f ($kind): pts differ: $(paste "$T/$kind.pts" "$T/got.pts" | head -5 | tr '\n\t' '; ')"
    done
done
ok "frame counts and pts of .mp4 .mov .mkv .gif match the stream (regular and irregular times)"

# --- PNG sequence: one lossless image per frame; GIF of gray frames is exact ---
wm-mux -o "$T/f_%04d.png" < "$T/nat.wms" || fail "wm-mux -o f_%04d.png"
[ "$(ls "$T" | grep -c '^f_[0-9]\{4\}\.png$')" -eq 30 ] || fail "PNG sequence: $(ls "$T" | grep -c '^f_') files, wanted 30"
[ -f "$T/f_0000.png" ] && [ -f "$T/f_0029.png" ] || fail "PNG sequence is not numbered 0..29"
[ "$(frame_size "$T/f_0000.png")" = 160x120 ] || fail "f_0000.png is $(frame_size "$T/f_0000.png")"
ffmpeg -nostdin -v error -start_number 0 -i "$T/f_%04d.png" -f rawvideo -pix_fmt rgb24 - > "$T/got.raw"
cmp -s "$T/nat.raw" "$T/got.raw" || fail "PNG sequence differs from the frames"
src_stream "$(media motion.mov)" 64x48 8 --gray > "$T/gray.wms"
stream_raw "$T/gray.wms" > "$T/gray.raw"
for f in g_%03d.png g.gif; do
    wm-mux -o "$T/$f" < "$T/gray.wms" || fail "wm-mux -o $f (gray)"
done
ffmpeg -nostdin -v error -start_number 0 -i "$T/g_%03d.png" -f rawvideo -pix_fmt gray - | cmp -s - "$T/gray.raw" ||
    fail "gray PNG sequence differs"
file_raw "$T/g.gif" --gray | cmp -s - "$T/gray.raw" || fail "gray GIF differs"
[ "$(frame_size "$T/nat.gif")" = 160x120 ] || fail "nat.gif is $(frame_size "$T/nat.gif")"
ok "PNG sequence: 30 exact images numbered from 0; gray PNG and GIF exact; GIF 160x120"

# --- odd size 33x17 in every container ---
src_stream "$(media odd.mp4)" 33x17 10 > "$T/odd.wms"
for f in o.mp4 o.mov o.mkv o.gif; do
    wm-mux -o "$T/$f" < "$T/odd.wms" || fail "wm-mux -o $f (33x17)"
    [ "$(frame_size "$T/$f")" = 33x17 ] || fail "$f is $(frame_size "$T/$f"), wanted 33x17"
    [ "$(frame_count "$T/$f")" -eq 10 ] || fail "$f (33x17): $(frame_count "$T/$f") frames"
done
[ "$(pix_fmt "$T/o.mp4")" = yuv444p ] || fail "odd-sized mp4 should fall back to yuv444p"
wm-mux -o "$T/o_%02d.png" < "$T/odd.wms" || fail "wm-mux -o o_%02d.png (33x17)"
[ "$(frame_size "$T/o_09.png")" = 33x17 ] && [ ! -e "$T/o_10.png" ] || fail "odd PNG sequence"
wm-mux -o "$T/o420.mp4" --pix-fmt yuv420p < "$T/odd.wms" || fail "wm-mux --pix-fmt yuv420p (33x17)"
[ "$(frame_size "$T/o420.mp4")" = 34x18 ] && [ "$(pix_fmt "$T/o420.mp4")" = yuv420p ] ||
    fail "forced yuv420p of 33x17 should be padded to 34x18"
file_raw "$T/o.mkv" > "$T/got.raw"
stream_raw "$T/odd.wms" | cmp -s - "$T/got.raw" || fail "odd-sized FFV1 is not exact"
ok "33x17 works in .mp4/.mov (yuv444p), .mkv (exact), .png, .gif; forced yuv420p pads to 34x18"

# --- one file per clip ---
$PY "$MK" gen --clips 2 --frames 6 > "$T/two.wms"
wm-mux -o "$T/x_%03d.mp4" < "$T/two.wms" || fail "wm-mux -o x_%03d.mp4"
for n in 000 001; do
    [ "$(frame_count "$T/x_$n.mp4")" -eq 6 ] || fail "x_$n.mp4 does not have 6 frames"
done
[ ! -e "$T/x_002.mp4" ] || fail "a third file appeared"
wm-mux -o "$T/only.mkv" --clip clip1 < "$T/two.wms" || fail "--clip clip1"
file_raw "$T/only.mkv" > "$T/got.raw"
$PY "$MK" raw "$T/two.wms" | tail -c "$(stat -c %s "$T/got.raw")" | cmp -s - "$T/got.raw" || fail "--clip clip1 wrote another clip"
if [ -x "$WM_ROOT/bin/wm-decode" ]; then
    wm-decode "$(media h264.mp4)" "$(media odd.mp4)" --frames 5 | wm-mux -o "$T/d_%d.mkv" || fail "wm-decode A B | wm-mux"
    [ "$(frame_size "$T/d_0.mkv")" = 320x240 ] && [ "$(frame_size "$T/d_1.mkv")" = 33x17 ] || fail "two decoded clips"
fi
if [ -x "$WM_ROOT/bin/wm-synth" ] && wm-synth --pairs 2 > "$T/pairs.wms" 2>/dev/null; then
    (cd "$T" && wm-mux -o pairs_%03d.mp4 < pairs.wms) || fail "wm-synth --pairs 2 | wm-mux -o pairs_%03d.mp4"
    [ -s "$T/pairs_000.mp4" ] && [ -s "$T/pairs_001.mp4" ] || fail "wm-synth --pairs 2: two files expected"
fi
ok "-o x_%03d.mp4 gives one file per clip; --clip picks one"

# --- no temporary file is left behind ---
left=$(find "$T" -name '*.tmp*')
[ -z "$left" ] || fail "temporary files left: $left"
ok "no temporary file left"
