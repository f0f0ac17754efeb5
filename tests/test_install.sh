# make install PREFIX=... puts every filter, a man page per filter and the
# protocol doc under the prefix, and the installed filters run.
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
