# Shared helpers for shell tests: source it.  Each test runs with bin/ on
# PATH and a private scratch directory $T removed at exit.
set -euo pipefail
WM_ROOT=${WM_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export PATH="$WM_ROOT/bin:$PATH"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
MEDIA="$WM_ROOT/build/media"   # inputs made once by tests/media.sh, reused

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP $*"; exit 77; }
ok() { echo "ok - $*"; }

# expect_exit CODE CMD...: runs CMD, checks its exit status, keeps stderr in $T/err
expect_exit() {
    local want=$1; shift
    set +e; "$@" > "$T/out" 2> "$T/err"; local got=$?; set -e
    [ "$got" -eq "$want" ] || { cat "$T/err" >&2; fail "'$*' exited $got, wanted $want"; }
}

# expect_err PATTERN: the last stderr is exactly one line matching PATTERN
expect_err() {
    grep -qE -- "$1" "$T/err" || { cat "$T/err" >&2; fail "stderr does not match '$1'"; }
    [ "$(wc -l < "$T/err")" -eq 1 ] || { cat "$T/err" >&2; fail "stderr is not one line"; }
}

# media NAME: path of a generated input (made on first use, see tests/media.sh)
media() {
    bash "$WM_ROOT/tests/media.sh" "$1" >&2 || fail "cannot make media $1"
    echo "$MEDIA/$1"
}
