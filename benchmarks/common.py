"""Shared pieces of the benchmark scripts: resumable runs, results per run, seed spread.

Every run is a normal mmengine Runner on a config. A finished run writes
``<results_dir>/<name>.json`` (committed beside the summary, so a new machine skips it); an
interrupted one resumes from the last checkpoint in ``<work_dir>/<name>``.
"""
import json
import os
import os.path as osp
import time
from typing import Callable, Dict, Optional

import numpy as np
from mmengine.config import Config
from mmengine.runner import Runner

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run_config(name: str, cfg: Config, work_root: str, results_dir: str, *,
               reuse_needs: Optional[str] = None,
               before_val: Optional[Callable[[Runner], dict]] = None) -> dict:
    """Train ``cfg`` (or reuse its finished result) and return its validation metrics.

    Args:
        name (str): Run name: ``<work_root>/<name>`` and ``<results_dir>/<name>.json``.
        cfg (Config): The full config; its ``work_dir`` and ``resume`` are set here.
        work_root (str): Folder of the runs' work dirs (checkpoints, logs).
        results_dir (str): Folder of the per-run result files.
        reuse_needs (str, optional): File name in the run's work dir that must exist for a
            finished result to be reused (a teacher's checkpoint, which students load).
        before_val (callable, optional): Called with the runner after training and before the
            final validation; the dict it returns (filled during validation) is stored as
            ``extra``.

    Returns:
        dict: ``metrics`` (the final validation), ``step_time_s`` (median over all iterations,
        robust to other jobs on the machine and restored on resume), ``train_time_s``
        (iterations x median step time), ``work_dir`` and the run's ``seed``.
    """
    work_dir = osp.join(work_root, name)
    result_file = osp.join(results_dir, f'{name}.json')
    if osp.isfile(result_file) and (reuse_needs is None
                                    or osp.isfile(osp.join(work_dir, reuse_needs))):
        with open(result_file) as f:
            return dict(json.load(f), work_dir=work_dir)
    cfg.work_dir = work_dir
    cfg.resume = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    wall_time = time.perf_counter() - start
    step_times = runner.message_hub.get_scalar('train/time').data[0]
    step_time = float(np.median(step_times))
    extra = before_val(runner) if before_val is not None else None
    metrics = {k: float(v) for k, v in runner.val().items()}
    result = dict(name=name, config=cfg.filename and osp.relpath(cfg.filename, REPO_ROOT),
                  seed=cfg.get('randomness', {}).get('seed'), iters=runner.iter,
                  step_time_s=round(step_time, 4), train_time_s=round(step_time * runner.iter, 1),
                  wall_time_this_invocation_s=round(wall_time, 1), resumed=bool(cfg.resume),
                  metrics=metrics)
    if extra is not None:
        result['extra'] = extra
    os.makedirs(results_dir, exist_ok=True)
    with open(result_file, 'w') as f:
        json.dump(result, f, indent=2)
    return dict(result, work_dir=work_dir)


def seed_stats(values_by_variant: Dict[str, Dict[int, float]]) -> tuple:
    """Mean per variant and the largest seed-to-seed difference seen in any variant."""
    mean = {v: float(np.mean(list(by_seed.values())))
            for v, by_seed in values_by_variant.items()}
    spread = max((max(s.values()) - min(s.values()) for s in values_by_variant.values()),
                 default=0.0)
    return mean, float(spread)


def markdown_table(header: list, rows: list) -> str:
    """A GitHub-markdown table (numbers right-aligned)."""
    def cell(x):
        return f'{x:.2f}' if isinstance(x, float) else str(x)
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' if i == 0 else '---:' for i in range(len(header))) + '|']
    lines += ['| ' + ' | '.join(cell(x) for x in row) + ' |' for row in rows]
    return '\n'.join(lines)
