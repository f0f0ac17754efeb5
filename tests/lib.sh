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

# expect_resume KIND STEP_RE TRIES WHAT ARGS...: runs `wm-train KIND ARGS`
# into $T/r.safetensors, interrupts it with SIGINT once its log shows
# STEP_RE (polled TRIES times, 20 ms apart), resumes it, and checks that the
# model equals $T/full.safetensors, the same run uninterrupted (made by the
# caller); WHAT ends the ok line.  A run that finishes first is noted.
expect_resume() {
    local kind=$1 step_re=$2 tries=$3 what=$4; shift 4
    wm-train "$kind" --model "$T/r.safetensors" "$@" --log-every 0 2> "$T/rlog" &
    local pid=$! rc at
    for _ in $(seq "$tries"); do grep -q "$step_re" "$T/rlog" 2>/dev/null && break; sleep 0.02; done
    kill -INT $pid 2>/dev/null || true
    set +e; wait $pid; rc=$?; set -e
    if [ $rc -eq 0 ]; then
        echo "note: the run finished before SIGINT arrived; resume not exercised" >&2
        return 0
    fi
    [ $rc -eq 130 ] || { cat "$T/rlog"; fail "SIGINT gave exit $rc, wanted 130"; }
    grep -q "checkpoint written" "$T/rlog" || { tail -3 "$T/rlog"; fail "no checkpoint on SIGINT"; }
    at=$(grep -o 'interrupted at step [0-9]*' "$T/rlog" | grep -o '[0-9]*$')
    wm-train "$kind" -q --model "$T/r.safetensors" "$@" --resume
    cmp -s "$T/full.safetensors" "$T/r.safetensors" || fail "the resumed run differs from an uninterrupted one"
    ok "interrupted at step $at$what, resumed to the same model"
}
