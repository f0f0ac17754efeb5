# pipelines/slurm/score.sbatch without Slurm: every array task run by hand
# with SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT set as Slurm sets them,
# then pipelines/slurm/merge: the rows of a single pipelines/score run, in
# list order, every clip once; a missing shard is named with the line that
# resubmits it, and the resubmitted task completes the set; a failed task
# leaves no shard file; more tasks than files gives empty shards; the script
# finds wm from $SLURM_SUBMIT_DIR when Slurm runs a copy of it.
source "$(dirname "$0")/lib.sh"
S="$WM_ROOT/pipelines/slurm"
command -v jq > /dev/null || skip "jq is not installed"

# 10 clips as video files, and one file that is not a video (its row carries an error)
mkdir "$T/clips"
wm-synth --clips 10 --frames 8 --seed 4 | wm-mux -o "$T/clips/c_%03d.mkv"
cp "$(media garbage.bin)" "$T/clips/c_005b.mp4"
ls "$T"/clips/* > "$T/list"
n=$(wc -l < "$T/list")
[ "$n" -eq 11 ] || fail "expected 11 inputs, made $n"
# clip ids count from 0 in each wm-decode run: rows are compared without them
rows() { jq -c 'del(.clip)' "$@"; }
rc=0; "$WM_ROOT/pipelines/score" -q - < "$T/list" > "$T/ref.jsonl" 2> "$T/ref.err" || rc=$?
[ $rc -eq 2 ] || fail "pipelines/score on the list: exit $rc, wanted 2 (one input is not a video)"
rows "$T/ref.jsonl" > "$T/ref.rows"

task() {   # task ID COUNT [VAR=VALUE...]: one array task, as Slurm would run it
    local id=$1 count=$2; shift 2
    env SLURM_ARRAY_JOB_ID=42 SLURM_ARRAY_TASK_ID="$id" SLURM_ARRAY_TASK_COUNT="$count" SLURM_ARRAY_TASK_MIN=0 \
        SLURM_ARRAY_TASK_MAX=$((count - 1)) "$@" "$S/score.sbatch" "$T/list" "$T/shards" -q 2>> "$T/tasks.err"
}
for i in 0 1 2 3; do
    rc=0; task $i 4 || rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 2 ] || { cat "$T/tasks.err"; fail "task $i of 4: exit $rc"; }
done
[ "$(ls "$T/shards")" = "$(printf 'shard-%05d-of-00004.jsonl\n' 0 1 2 3)" ] || fail "shard files: $(ls "$T/shards")"
"$S/merge" -o "$T/merged.jsonl" "$T/shards" || fail "merge of 4 shards"
rows "$T/merged.jsonl" | cmp -s - "$T/ref.rows" || fail "the merged rows differ from one pipelines/score run"
[ "$(jq -r .source "$T/merged.jsonl" | sort -u | wc -l)" -eq 11 ] &&
    [ "$(wc -l < "$T/merged.jsonl")" -eq 11 ] || fail "not every input exactly once"
grep -q '"source":"[^"]*c_005b.mp4".*"error"' "$T/merged.jsonl" || fail "the broken input has no error row"
ok "4 array tasks over 11 inputs, merged: the rows of one run, in list order, each input once"

# a lost task: merge names it and how to resubmit it, writes nothing, exit 2
rm "$T/shards/shard-00002-of-00004.jsonl"
expect_exit 2 "$S/merge" -o "$T/partial.jsonl" "$T/shards"
grep -q "1 of 4 shards missing: 2" "$T/err" || { cat "$T/err"; fail "merge does not name the missing shard"; }
grep -q -- "sbatch --array=2 --export=ALL,WM_SHARDS=4 " "$T/err" || fail "merge does not say how to resubmit"
[ ! -e "$T/partial.jsonl" ] || fail "merge wrote a partial result"
"$S/merge" --partial "$T/shards" 2> /dev/null | rows > "$T/partial.rows" || fail "merge --partial"
[ "$(wc -l < "$T/partial.rows")" -lt 11 ] && [ "$(wc -l < "$T/partial.rows")" -gt 0 ] || fail "merge --partial"
# resubmitted alone (sbatch --array=2 --export=ALL,WM_SHARDS=4): an array of one task
task 2 1 WM_SHARDS=4 || [ $? -eq 2 ] || fail "the resubmitted task failed"
"$S/merge" "$T/shards" | rows | cmp -s - "$T/ref.rows" || fail "after the resubmission, merged rows differ"
ok "a missing shard is named with its resubmission line; resubmitted alone, the merge is whole"

# a task that fails leaves no shard file (and no temporary one)
expect_exit 1 env SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=2 "$S/score.sbatch" "$T/list" "$T/fail" --model "$T/nonexistent"
[ -z "$(ls -A "$T/fail" 2> /dev/null)" ] || fail "a failed task left $(ls "$T/fail")"
ok "a failed task leaves no shard file"

# more tasks than inputs: the extra shards are empty and merge is still whole;
# run from a copy of the script, as Slurm does, finding wm by $SLURM_SUBMIT_DIR
head -n 2 "$T/list" > "$T/list2"
mkdir -p "$T/spool"
cp "$S/score.sbatch" "$T/spool/slurm_script"
for i in 0 1 2; do
    (cd "$T/spool" && env -u WM_ROOT SLURM_SUBMIT_DIR="$WM_ROOT" SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=3 \
        ./slurm_script "$T/list2" "$T/shards3" -q 2>> "$T/tasks.err") || { cat "$T/tasks.err"; fail "copied script, task $i"; }
done
[ "$(cat "$T"/shards3/*.jsonl | wc -l)" -eq 2 ] || fail "3 tasks over 2 inputs did not give 2 rows"
"$S/merge" "$T/shards3" | rows | cmp -s - <(head -n 2 "$T/ref.rows") || fail "3 tasks over 2 inputs: merged rows differ"
ok "3 tasks over 2 inputs (one empty shard), run from a copy of the script in Slurm's spool"

expect_exit 1 env -u SLURM_ARRAY_TASK_ID "$S/score.sbatch" "$T/list" "$T/shards"
expect_err "not an array task"
expect_exit 1 "$S/score-shard" "$T/list" 4 4 "$T/shards"
expect_err "INDEX '4' is not in 0..3"
ok "usage errors: one line each"
