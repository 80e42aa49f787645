#!/usr/bin/env bash
# Runs both BCCD detection benchmarks (reviewkd_bccd.py, cls2det_bccd.py) with their runs in
# parallel: on one GPU a small detector leaves most of the card idle, so the runs share it.
#
#   1. the two teachers side by side (RetinaNet teacher, cell-crop classifier teacher; one
#      after the other with JOBS=1), each only if one of its distilled runs is unfinished and
#      its checkpoint is missing (a new machine has the committed results, not the checkpoints);
#   2. every student run (variant x seed) as its own process, at most $JOBS at a time;
#   3. each benchmark script once more: every run is finished and reused, so it only prints
#      its table and writes its summary JSON (the last lines of logs/<benchmark>.log).
#
# Runs are the scripts' own (same names, result files, resume), so a run interrupted here
# resumes there and the other way round. Any extra arguments (--epochs, --teacher-epochs,
# --cls-teacher-epochs, --seeds, --work-dir, --data-root, --workers) go to every call.
#
#   bash benchmarks/bccd_parallel.sh --epochs 48 --teacher-epochs 96 [--seeds 0 1 2]
#
# On a CPU, JOBS=1 runs one run at a time (each uses every core); stopped, it continues where
# it stopped when started again (finished runs are reused, a run resumes from its checkpoint);
# `python -m benchmarks.<script> --report` prints the table of the runs finished so far.
#
# Environment: JOBS (parallel student runs, default 8), PYTHON (default python), LOGS (folder of
# the per-run logs, default work_dirs/benchmarks/bccd_logs).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py="${PYTHON:-python}"
jobs="${JOBS:-8}"
logs="${LOGS:-work_dirs/benchmarks/bccd_logs}"
mkdir -p "$logs"
args=("$@")
seeds=(0 1 2)
for ((i = 0; i < ${#args[@]}; i++)); do  # the seeds to fan out over
  if [[ "${args[i]}" == --seeds ]]; then
    seeds=()
    for ((j = i + 1; j < ${#args[@]}; j++)); do
      [[ "${args[j]}" == --* ]] && break
      seeds+=("${args[j]}")
    done
  fi
done

failed=0
wait_all() {  # wait for every background job; count the ones that failed
  local pid
  for pid in $(jobs -p); do wait "$pid" || failed=$((failed + 1)); done
}

echo "[bccd_parallel] teachers"
"$py" -m benchmarks.reviewkd_bccd "${args[@]}" --teacher-only >"$logs/teacher_det.log" 2>&1 &
((jobs > 1)) || wait_all  # JOBS=1 (a CPU): one after the other, not fighting for the cores
"$py" -m benchmarks.cls2det_bccd "${args[@]}" --teacher-only >"$logs/teacher_cls.log" 2>&1 &
wait_all
if ((failed)); then
  echo "[bccd_parallel] a teacher failed: see $logs/teacher_*.log" >&2
  exit 1
fi

echo "[bccd_parallel] student runs (seeds ${seeds[*]}, $jobs at a time)"
# "<script> <variant> <seed>"; the student alone is one run shared by both scripts. In the
# order that completes comparisons soonest when few run at a time (JOBS=1 on a CPU, over
# sessions): ReviewKD's pairs seed by seed, then cls2det's headline variant for every seed,
# then its ablations.
runs=()
for seed in "${seeds[@]}"; do
  for variant in student reviewkd; do runs+=("reviewkd_bccd $variant $seed"); done
done
for variant in rec+loc rec loc; do
  for seed in "${seeds[@]}"; do runs+=("cls2det_bccd $variant $seed"); done
done
for run in "${runs[@]}"; do
  read -r script variant seed <<<"$run"
  while (($(jobs -pr | wc -l) >= jobs)); do sleep 2; done
  # --no-summary: a one-run table never replaces the summary; step 3 writes the full one
  "$py" -m "benchmarks.$script" "${args[@]}" --variants "$variant" --seeds "$seed" --no-summary \
    >"$logs/${script}_${variant}_seed${seed}.log" 2>&1 &
done
wait_all

echo "[bccd_parallel] summaries"
for script in reviewkd_bccd cls2det_bccd; do
  "$py" -m "benchmarks.$script" "${args[@]}" >"$logs/$script.log" 2>&1 || failed=$((failed + 1))
  tail -n 12 "$logs/$script.log"
done
if ((failed)); then
  echo "[bccd_parallel] $failed run(s) failed: see $logs" >&2
  exit 1
fi
