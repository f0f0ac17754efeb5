# wm-decode's pixels are, byte for byte, those of the ffmpeg CLI given the
# same scaling: `ffmpeg -i X -vf scale=W:H:flags=F -f rawvideo -pix_fmt rgb24 -`.
# Both use libswscale with the CLI's default algorithm (bicubic) and the
# colorspace details its scale filter takes from each frame (matrix, range),
# so every input here matches exactly: H.264, VP9, MPEG-4, MJPEG (full
# range), FFV1, MPEG-2 (cityCC0.mpg) and BT.709 footage (motion.mov).
source "$(dirname "$0")/lib.sh"
command -v ffmpeg > /dev/null || skip "no ffmpeg CLI"
/usr/bin/python3 -c 'import msgpack' 2> /dev/null || skip "Debian python3-msgpack missing"

# exact NAME FRAMES PIX_FMT "WM-DECODE OPTIONS" "FFMPEG -vf CHAIN"
# (FRAMES 0: the whole file, which also proves the decoder is drained)
exact() {
    local name=$1 frames=$2 pix=$3 wm_opts=$4 vf=$5 in
    in=$(media "$name")
    local limit=() ff_limit=()
    [ "$frames" -gt 0 ] && limit=(--frames "$frames") && ff_limit=(-frames:v "$frames")
    # shellcheck disable=SC2086
    wm-decode -q $wm_opts "${limit[@]}" "$in" > "$T/s.wms" || fail "$name: wm-decode failed"
    /usr/bin/python3 "$WM_ROOT/tests/decodecheck.py" raw "$T/s.wms" > "$T/wm.raw"
    ffmpeg -nostdin -v error -i "$in" -vf "$vf" "${ff_limit[@]}" -f rawvideo -pix_fmt "$pix" - > "$T/ff.raw"
    [ -s "$T/ff.raw" ] || fail "$name: the ffmpeg CLI produced nothing"
    cmp -s "$T/wm.raw" "$T/ff.raw" ||
        fail "$name [$wm_opts] differs from ffmpeg -vf $vf ($(stat -c %s "$T/wm.raw") vs $(stat -c %s "$T/ff.raw") bytes)"
    ok "$name [$wm_opts] = ffmpeg -vf $vf -pix_fmt $pix"
}

stretch="--fit stretch --size 96x64"
for name in h264.mp4 vp9.webm mpeg4.avi mjpeg.avi ffv1.mkv; do
    exact "$name" 0 rgb24 "$stretch" "scale=96:64:flags=bicubic"
done
exact cityCC0.mpg 40 rgb24 "--fit stretch --size 160x90" "scale=160:90:flags=bicubic"
exact motion.mov 40 rgb24 "--fit stretch --size 142x80" "scale=142:80:flags=bicubic"

# the native size (the unscaled conversion paths), an odd width included
exact h264.mp4 0 rgb24 "" "scale=320:240:flags=bicubic"
exact odd.mp4 0 rgb24 "" "scale=33:17:flags=bicubic"
exact motion.mov 20 rgb24 "" "scale=568:320:flags=bicubic"

# other scalers, gray output
exact h264.mp4 0 rgb24 "--fit stretch --size 64x48 --scaler bilinear" "scale=64:48:flags=bilinear"
exact motion.mov 20 rgb24 "--fit stretch --size 64x64 --scaler area" "scale=64:64:flags=area"
exact vp9.webm 0 rgb24 "--fit stretch --size 100x70 --scaler lanczos" "scale=100:70:flags=lanczos"
exact mjpeg.avi 0 gray "--fit stretch --size 64x64 --gray" "scale=64:64:flags=bicubic"
exact motion.mov 20 gray "--fit stretch --size 64x64 --gray" "scale=64:64:flags=bicubic"

# --fit crop is a centre crop then the scale; --fit pad the scale then black bars
exact h264.mp4 0 rgb24 "--size 64x64" "crop=240:240,scale=64:64:flags=bicubic"
exact h264.mp4 0 rgb24 "--size 64x64 --fit pad" "scale=64:48:flags=bicubic,pad=64:64:0:8"
