# make install PREFIX=... puts every filter, a man page per filter and the
# protocol doc under the prefix, and the installed filters run; the
# pipelines are installed as wm-NAME and run on the installed filters and
# model alone; libwm.a, its headers and wm.pc build a program.
source "$(dirname "$0")/lib.sh"
make -s -C "$WM_ROOT" install PREFIX="$T/prefix" > "$T/log" 2>&1 || { cat "$T/log"; fail "make install"; }
for f in "$WM_ROOT"/bin/wm-*; do
    n=$(basename "$f")
    [ -x "$T/prefix/bin/$n" ] || fail "$n not installed"
    [ -s "$T/prefix/share/man/man1/$n.1" ] || fail "$n.1 not installed"
    grep -q '^\.SH NAME' "$T/prefix/share/man/man1/$n.1" || fail "$n.1 is not a man page"
    "$T/prefix/bin/$n" --version > /dev/null || fail "installed $n does not run"
done
[ -s "$T/prefix/share/doc/wm/protocol.md" ] || fail "protocol.md not installed"
ok "install"

# the pipelines, with nothing of the source tree on PATH or in WM_MODEL
for p in "$WM_ROOT"/pipelines/*; do
    [ -f "$p" ] && [ -x "$p" ] || continue
    n=wm-$(basename "$p")
    [ -x "$T/prefix/bin/$n" ] || fail "pipeline $n not installed"
    "$T/prefix/bin/$n" --help > "$T/help" || fail "installed $n --help"
    grep -q "^Usage: $n " "$T/help" || fail "installed $n does not call itself $n"
done
clean_path=$T/prefix/bin:/usr/local/bin:/usr/bin:/bin
"$T/prefix/bin/wm-synth" -q --clips 2 --frames 6 > "$T/s.wms"
"$T/prefix/bin/wm-mux" -q -o "$T/clip_%d.mkv" < "$T/s.wms"
(
    cd "$T" && unset WM_MODEL && export PATH=$clean_path
    # the installed model is the shipped one, dynamics part included
    if [ "$(head -c 65536 "$T/prefix/share/wm/wm-default.safetensors" | grep -c '"dynamics\.arch"')" -gt 0 ]; then
        wm-score -q clip_0.mkv clip_1.mkv > scores.jsonl || fail "installed wm-score failed"
        [ "$(grep -c '"plausibility":' scores.jsonl)" -eq 2 ] || fail "installed wm-score: $(cat scores.jsonl)"
    else
        fail "the installed model has no dynamics part"
    fi
    wm-ingest -q -o lat clip_0.mkv clip_1.mkv || fail "installed wm-ingest failed"
    [ "$(grep -c '"archive":' lat/manifest.jsonl)" -eq 2 ] || fail "installed wm-ingest: $(cat lat/manifest.jsonl)"
    wm-ingest -o lat nothing.mp4 2> err && fail "wm-ingest of a missing file exits 0"; grep -q '^wm-ingest: ' err || fail "installed wm-ingest names itself: $(cat err)"
)
ok "installed pipelines run on the installed filters and model"

# a program built against the installed libwm with pkg-config alone
cat > "$T/tiny.c" <<'C'
#include <stdio.h>
#include <string.h>
#include "wm_msg.h"
#include "wm_proto.h"
int main(void)
{
    wm_msgbuf mb;
    wm_msgbuf_init(&mb);
    wm_proto_pack_end(&mb.pk, "c0", 3);
    wm_msg m;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    wm_error err = { 0 };
    int64_t frames = 0;
    if (wm_msg_parse(&m, (const uint8_t *)mb.sbuf.data, mb.sbuf.size, &zone, &err) != WM_OK) return 1;
    if (!wm_msg_is(&m, "end") || wm_msg_i64(&m, "frames", &frames) != 0) return 1;
    printf("%s %lld\n", WM_VERSION, (long long)frames);
    msgpack_zone_destroy(&zone);
    wm_msgbuf_destroy(&mb);
    return 0;
}
C
export PKG_CONFIG_PATH=$T/prefix/lib/pkgconfig
pkg-config --exists wm || fail "pkg-config does not find wm.pc"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$T/tiny" "$T/tiny.c" $(pkg-config --cflags --libs wm) 2> "$T/cc.err" ||
    { cat "$T/cc.err"; fail "a program does not build with pkg-config --cflags --libs wm"; }
[ "$("$T/tiny")" = "$(pkg-config --modversion wm) 3" ] || fail "the program built against libwm: $("$T/tiny")"
ok "pkg-config --cflags --libs wm builds a program against libwm"
