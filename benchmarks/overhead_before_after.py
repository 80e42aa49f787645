"""The distillation overhead of two versions of the code, side by side, in one run.

A refactor of the distiller must not make a step slower. This runs ``benchmarks/overhead.py``
(student step, teacher forward, distillation step, the method's own modules; CPU or CUDA, no
memory probe) on a git revision from before the change (``--before``, checked out into a
temporary worktree) and on the working tree, in fresh processes, in the order
before, after, after, before (ABBA: a drift of the machine over the run cancels out of the
pooled medians), and prints per method and task the median of the pooled repetitions of each
version and their ratio after / before. The student step is code the change does not touch:
its ratio is the noise of the measurement. Results:
``benchmarks/results/overhead_before_after.json``; the last line is ``distill_step_ratio_max=X``
(the largest after / before ratio of a distillation step over the methods).

    python -m benchmarks.overhead_before_after --before 51cdbd4 [--reps 3] [--methods ...]
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
from statistics import median
from typing import Dict, List

from benchmarks.lib.common import REPO_ROOT, markdown_table

TASKS = ('student step', 'teacher forward', 'distill step', 'method modules')


def overhead_command(root: str, results: str, reps: int, methods: List[str]) -> List[str]:
    """The overhead script of the checkout at ``root``: a module since benchmarks/ became a
    package, a plain script before."""
    packaged = osp.isfile(osp.join(root, 'benchmarks', '__init__.py'))
    entry = ['-m', 'benchmarks.overhead'] if packaged else ['benchmarks/overhead.py']
    cmd = [sys.executable] + entry + ['--no-memory', '--reps', str(reps), '--results', results]
    return cmd + (['--methods'] + methods if methods else [])


def run_version(root: str, reps: int, methods: List[str], out: str) -> dict:
    """One overhead run of the checkout at ``root`` (its own ``mmstructkd`` first on the
    path: the run's working directory)."""
    env = dict(os.environ, PYTHONPATH=root)
    subprocess.run(overhead_command(root, out, reps, methods), cwd=root, env=env, check=True)
    with open(out) as f:
        return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.overhead_before_after',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--before', required=True, help='git revision of the code before')
    parser.add_argument('--reps', type=int, default=3, help='repetitions per run (x2 runs)')
    parser.add_argument('--methods', nargs='+', default=None,
                        help='substrings of the method names (default: all)')
    parser.add_argument('--results', default=osp.join(REPO_ROOT, 'benchmarks', 'results',
                                                      'overhead_before_after.json'))
    args = parser.parse_args()
    before_rev = subprocess.run(['git', 'rev-parse', args.before], cwd=REPO_ROOT, check=True,
                                capture_output=True, text=True).stdout.strip()
    after_rev = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO_ROOT, check=True,
                               capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(['git', 'status', '--porcelain', '--', 'mmstructkd'],
                                cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory(prefix='overhead_before_') as tmp:
        worktree = osp.join(tmp, 'before')
        subprocess.run(['git', 'worktree', 'add', '--detach', worktree, before_rev],
                       cwd=REPO_ROOT, check=True)
        try:
            roots = {'before': worktree, 'after': REPO_ROOT}
            runs: Dict[str, List[dict]] = {'before': [], 'after': []}
            for i, version in enumerate(('before', 'after', 'after', 'before')):
                print(f'[before/after] run {i + 1}/4: {version}', flush=True)
                runs[version].append(run_version(roots[version], args.reps, args.methods,
                                                 osp.join(tmp, f'{version}_{i}.json')))
        finally:
            subprocess.run(['git', 'worktree', 'remove', '--force', worktree], cwd=REPO_ROOT)
    methods = [m for m in runs['after'][0]['methods'] if m in runs['before'][0]['methods']]
    table, summary = [], {}
    for method in methods:
        pooled = {v: {t: [x for run in runs[v] for x in run['methods'][method]['times_s'][t]]
                      for t in TASKS} for v in runs}
        med = {v: {t: median(pooled[v][t]) for t in TASKS} for v in runs}
        ratio = {t: med['after'][t] / med['before'][t] if med['before'][t] > 0 else None
                 for t in TASKS}
        summary[method] = dict(median_s=med, ratio_after_over_before=ratio, times_s=pooled)
        table.append([method] + [f'{med["before"][t]:.3f} / {med["after"][t]:.3f} '
                                 f'({ratio[t]:.2f})' for t in TASKS])
    machine = runs['after'][0]['machine']
    print(f'\nMedian seconds before / after (ratio), {2 * args.reps} pooled repetitions each, '
          f'{machine}\nbefore {before_rev[:10]}, after {after_rev[:10]}'
          f'{" + uncommitted changes" if dirty else ""}\n')
    print(markdown_table(['method'] + list(TASKS), table))
    worst = max(s['ratio_after_over_before']['distill step'] for s in summary.values())
    noise = max(abs(s['ratio_after_over_before']['student step'] - 1)
                for s in summary.values())
    out = dict(before=before_rev, after=after_rev, after_uncommitted=dirty, machine=machine,
               reps_per_run=args.reps, runs_per_version=2, order='before after after before',
               methods=summary, distill_step_ratio_max=worst, student_step_noise_max=noise)
    os.makedirs(osp.dirname(osp.abspath(args.results)), exist_ok=True)
    with open(args.results + '.part', 'w') as f:
        json.dump(out, f, indent=1)
    os.replace(args.results + '.part', args.results)
    print(f'student_step_noise_max={noise:.2f}')
    print(f'distill_step_ratio_max={worst:.2f}')


if __name__ == '__main__':
    main()
