# Sharding a batch with GNU parallel, as README.md shows it, on the local
# login ':' (--sshlogin host1,host2 is the same on several machines): shards
# of a file list scored by pipelines/slurm/score-shard, one JSON Lines file
# each, under --joblog; the run is interrupted mid-batch (Ctrl-C), and the
# same command with --resume runs only the shards that did not finish, then
# nothing at all; merged, the rows are those of one pipelines/score run, every
# clip exactly once.
source "$(dirname "$0")/lib.sh"
command -v parallel > /dev/null || skip "GNU parallel is not installed (scripts/install-deps.sh installs it)"
command -v jq > /dev/null || skip "jq is not installed"
S="$WM_ROOT/pipelines/slurm"

mkdir "$T/clips"
wm-synth --clips 12 --frames 8 --seed 6 | wm-mux -o "$T/clips/c_%03d.mkv"
ls "$T"/clips/*.mkv > "$T/list"
N=6
# clip ids count from 0 in each wm-decode run: rows are compared without them
rows() { jq -c 'del(.clip)' "$@"; }
"$WM_ROOT/pipelines/score" -q - < "$T/list" | rows > "$T/ref.rows" || fail "pipelines/score on the whole list"
[ "$(wc -l < "$T/ref.rows")" -eq 12 ] || fail "the reference run has $(wc -l < "$T/ref.rows") rows"

# the command of README.md, one job at a time so the interruption lands mid-batch
batch() {
    parallel --sshlogin : --jobs "$1" --joblog "$T/joblog" --resume \
        "$S/score-shard" "$T/list" {} $N "$T/shards" -q ::: $(seq 0 $((N - 1)))
}
jobs_done() { [ -f "$T/joblog" ] && tail -n +2 "$T/joblog" | wc -l || echo 0; }

# run 1: Ctrl-C once two shards are done: SIGINT to the whole process group,
# as a terminal sends it (job control on, so the group is its own and SIGINT
# is not ignored as in a script's background jobs)
set -m
batch 1 > /dev/null 2> "$T/run1.err" &
pp=$!
set +m
for _ in $(seq 600); do [ "$(jobs_done)" -ge 2 ] && break; sleep 0.05; done
in_flight=$(pgrep -c -f "score-shard $T/list" || true)   # a shard being scored now
kill -INT -- -$pp
wait $pp && fail "the interrupted parallel exited 0"
# a shard parallel started as the signal came can outlive it by a moment,
# still removing its temporary files: look once every shard has ended
for _ in $(seq 200); do pgrep -f "score-shard $T/list" > /dev/null || break; sleep 0.05; done
pgrep -f "score-shard $T/list" > /dev/null && fail "a shard still runs 10 s after the interrupted parallel exited"
first=$(jobs_done)
have=$(ls "$T/shards" | grep -c 'jsonl$' || true)
[ "$first" -ge 2 ] && [ "$first" -lt $N ] || fail "run 1 finished $first of $N shards; wanted an interruption mid-batch"
[ "$have" -eq "$first" ] || fail "run 1: $have shard files for $first finished jobs"
[ -z "$(ls "$T/shards" | grep -v 'jsonl$')" ] || fail "the interrupted shard left $(ls "$T/shards" | grep -v 'jsonl$')"
expect_exit 2 "$S/merge" "$T/shards"
grep -q "$((N - first)) of $N shards missing" "$T/err" || { cat "$T/err"; fail "merge does not see the missing shards"; }
ok "interrupted after $first of $N shards ($in_flight killed in flight): only whole shard files, merge names the missing"

# run 2: --resume runs exactly the shards that did not finish; run 1's files stay
stat -c '%n %i %Y' "$T"/shards/* > "$T/kept.before"
batch 2 > /dev/null 2> "$T/run2.err" || { cat "$T/run2.err"; fail "the resumed run failed"; }
stat -c '%n %i %Y' $(cut -d' ' -f1 "$T/kept.before") | cmp -s - "$T/kept.before" || fail "--resume redid finished shards"
[ "$(jobs_done)" -eq $N ] || fail "the joblog has $(jobs_done) jobs, wanted $N (each shard once)"
[ "$(tail -n +2 "$T/joblog" | cut -f1 | sort -n | uniq | wc -l)" -eq $N ] || fail "a shard ran twice: $(cat "$T/joblog")"
[ "$(tail -n +2 "$T/joblog" | awk -F'\t' '$7 != 0' | wc -l)" -eq 0 ] || fail "a job failed: $(cat "$T/joblog")"
ok "--resume ran the $((N - first)) missing shards and left the $first finished ones alone"

# run 3: nothing left to do
batch 2 > /dev/null 2>&1 || fail "the third run failed"
[ "$(jobs_done)" -eq $N ] || fail "a finished batch ran again under --resume"
ok "--resume on a finished batch runs nothing"

"$S/merge" -o "$T/merged.jsonl" "$T/shards" || fail "merge"
rows "$T/merged.jsonl" | cmp -s - "$T/ref.rows" || fail "the merged rows differ from one pipelines/score run"
[ "$(jq -r .source "$T/merged.jsonl" | sort | uniq -c | awk '$1 == 1' | wc -l)" -eq 12 ] ||
    fail "not every clip exactly once: $(jq -r .source "$T/merged.jsonl" | sort | uniq -c)"
ok "merged: the rows of one pipelines/score run, in list order, each of the 12 clips exactly once"
