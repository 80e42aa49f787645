"""Budget check of the Fashion-MNIST benchmarks: learning curves, the schedule they support, and
what a grid at that schedule costs on this machine.

Does a schedule starve the student? Each run trains one model for a whole schedule of ``L``
epochs (the config's: one warm-up epoch, cosine decay to 0 at epoch ``L``) on ``--subset``
training images and validates it on the 10000 test images after **every** epoch (the learning
curve); a cosine schedule's accuracy at epoch ``e < L`` is not what an ``e``-epoch schedule
reaches (its learning rate is still high), so the check trains several lengths (``--lengths``)
and compares their ends:

    **rule** (``choose_length``): the chosen schedule is the shortest length whose final top-1
    is within ``--delta`` (default 0.3 points) of the final top-1 of every longer length in the
    list; when only the longest meets it, the curve has not flattened within the lengths
    (``chosen: null``: add a longer one).

Beside it, per run: the first epoch within ``--delta`` of the best of the next ``--window``
epochs (``plateau_epoch``, where the single curve flattens) and, with ``--fit N``, the final
model's top-1 on the first N clean training images it trained on (an underfitting student gets
its own training images wrong; a fitting one overfits).

Targets:

    student    the benchmarks' student alone (configs/baselines/resnet18-w8_...)
    teacher    their teacher (configs/baselines/resnet18-w32_...): must stay above the student
    blockwise  a block-wise compressed student's fine-tune (``--variant blockwise_kd`` from its
               block-wise trained blocks with logit KD; ``kd_only`` / ``scratch`` the controls)
               under ``--budget`` (FLOPs fraction): teacher and search as
               ``blockwise_fashion_mnist.py`` makes them (same work dir, so shared)
    bw-teacher the block-wise benchmark's uncompressed model (ImageNet MobileNetV2 fine-tuned on
               ``--teacher-subset`` images) at each length: whether its ``--teacher-epochs``
               starve it, and the uncompressed baseline at the students' total epochs
               (teacher epochs + fine-tune epochs)
    plan       trains nothing: prints the grid's cost at a budget from measured step times

    python -m benchmarks.fashion_mnist_budget student --subset 0 --lengths 5 10 20
    python -m benchmarks.fashion_mnist_budget blockwise --budget 0.3 --subset 0 --lengths 2 4 8 \\
        --teacher-epochs 5 --teacher-subset 0
    python -m benchmarks.fashion_mnist_budget plan --subset 20000 --epochs 10

Every run is resumable (``common.run_config``; the per-epoch validations are kept in the run's
work dir, ``val_curve.json``, so an interrupted run resumes with its curve) and finished ones
are reused from ``benchmarks/results/fashion_mnist_budget_runs/``. The summary,
``benchmarks/results/fashion_mnist_budget.json``, holds one entry per target and budget
(``<target>_<images>``, e.g. ``student_60k``, ``blockwise_kd_flops0.3_60k``): the curves,
each run's median step and epoch time on this machine, the rule's choice, and an estimate of
one epoch on all 60000 images. ``--report`` trains nothing and summarises the finished runs.
"""
import argparse
import copy
import glob
import json
import math
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from benchmarks.lib import common
from benchmarks.lib import fashion_mnist as fm
from benchmarks.lib.common import REPO_ROOT, RunNotFinished, markdown_table, run_config, write_json

RESULTS = osp.join(REPO_ROOT, 'benchmarks', 'results', 'fashion_mnist_budget.json')
WORK_ROOT = osp.join(REPO_ROOT, 'work_dirs', 'benchmarks', 'fashion_mnist_budget')
CURVE_FILE = 'val_curve.json'
METRIC = fm.METRIC
BATCH = 128  # the configs' training batch (configs/_base_/datasets/fashion_mnist_bs128.py)


# ---------------------------------------------------------------------------- the rules
def plateau_epoch(curve: Dict[int, float], delta: float, window: int) -> Optional[int]:
    """The first epoch ``e`` whose top-1 is within ``delta`` of the best top-1 of epochs
    ``e .. e + window`` (all of them recorded); None when no epoch has a full window after it.
    """
    epochs = sorted(curve)
    for e in epochs:
        ahead = [curve[x] for x in epochs if e <= x <= e + window]
        if e + window > epochs[-1]:
            return None
        if curve[e] >= max(ahead) - delta:
            return e
    return None


def choose_length(finals: Dict[int, float], delta: float) -> Optional[int]:
    """The shortest schedule length whose final top-1 is within ``delta`` of the final top-1
    of every longer length (``finals``: length -> final top-1). None when fewer than two
    lengths, or when only the longest meets it (no plateau shown within the lengths)."""
    lengths = sorted(finals)
    for i, length in enumerate(lengths[:-1]):
        if all(finals[length] >= finals[longer] - delta for longer in lengths[i + 1:]):
            return length
    return None


def iters_per_epoch(images: int, batch: int = BATCH) -> int:
    """Training iterations of one epoch (mmengine's sampler keeps the last, short batch)."""
    return math.ceil(images / batch)


# ---------------------------------------------------------------------------- the curve
@HOOKS.register_module(name='BudgetValCurveHook', force=True)
class ValCurveHook(Hook):
    """Keeps every validation's top-1 by finished epochs in ``<work_dir>/val_curve.json``, with
    the wall time of that epoch's training and validation. A run resumed from a checkpoint
    whose validation was interrupted validates it first."""

    priority = 'LOW'

    def __init__(self, metric: str = METRIC) -> None:
        self.metric = metric
        self._train_s: Optional[float] = None
        self._t0 = 0.0

    def _path(self, runner) -> str:
        return osp.join(runner.work_dir, CURVE_FILE)

    def _load(self, runner) -> dict:
        path = self._path(runner)
        if not osp.isfile(path):
            return {}
        with open(path) as f:
            return json.load(f)

    def before_train(self, runner) -> None:
        if runner.epoch > 0 and str(runner.epoch) not in self._load(runner):
            runner.val_loop.run()  # stopped between the checkpoint and its validation

    def before_train_epoch(self, runner) -> None:
        self._t0 = time.perf_counter()

    def after_train_epoch(self, runner) -> None:
        self._train_s = time.perf_counter() - self._t0

    def before_val_epoch(self, runner) -> None:
        self._v0 = time.perf_counter()

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        if not metrics or self.metric not in metrics:
            return
        curve = self._load(runner)
        key = str(runner.epoch)
        entry = dict(top1=round(float(metrics[self.metric]), 2),
                     val_s=round(time.perf_counter() - self._v0, 1))
        if key in curve and self._train_s is None:  # the final validation of a finished run
            return
        entry['train_s'] = None if self._train_s is None else round(self._train_s, 1)
        curve[key] = entry
        self._train_s = None
        write_json(self._path(runner), dict(sorted(curve.items(), key=lambda kv: int(kv[0]))))


def with_curve(cfg: Config) -> Config:
    """Validate after every epoch and keep the curve (:class:`ValCurveHook`)."""
    cfg.train_cfg.val_interval = 1
    cfg.train_cfg.val_begin = 1
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [dict(type='BudgetValCurveHook')]
    return cfg


def clean_train_top1(runner, cfg: Config, n: int) -> float:
    """Top-1 of the runner's model on the first ``n`` training images it trained on, through
    the test pipeline (no augmentation, no views)."""
    train = copy.deepcopy(fm._inner(cfg.train_dataloader.dataset))
    train.pipeline = copy.deepcopy(fm._inner(cfg.test_dataloader.dataset).pipeline)
    subset = train.get('indices')
    train.indices = min(n, subset) if isinstance(subset, int) else n
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg.dataset = train
    loader_cfg.num_workers = 1
    loader_cfg.persistent_workers = False
    loader = runner.build_dataloader(loader_cfg)
    evaluator = runner.build_evaluator(dict(type='Accuracy', topk=(1, )))
    evaluator.dataset_meta = loader.dataset.metainfo
    model = runner.model
    model.eval()
    with torch.no_grad():
        for data in loader:
            evaluator.process(model.val_step(data), data)
    return float(evaluator.evaluate(len(loader.dataset))[METRIC])


def curve_run(name: str, cfg: Config, work_root: str, runs_dir: str, fit: int) -> dict:
    """One resumable run of a whole schedule with its learning curve (``extra``)."""
    with_curve(cfg)

    def before_val(runner) -> dict:
        with open(osp.join(runner.work_dir, CURVE_FILE)) as f:
            curve = json.load(f)
        extra = dict(curve=curve)
        if fit:
            extra['fit_top1'] = round(clean_train_top1(runner, cfg, fit), 2)
            extra['fit_images'] = fit
        return extra

    return run_config(name, cfg, work_root, runs_dir, before_val=before_val)


def summarise(runs: Dict[int, dict], images: int, delta: float, window: int) -> dict:
    """The entry of one target: curves, times, the rule's choice and per-epoch estimates."""
    lengths = sorted(runs)
    finals = {L: runs[L]['metrics'][METRIC] for L in lengths}
    per_run = {}
    for L in lengths:
        r = runs[L]
        curve = {int(e): c['top1'] for e, c in r.get('extra', {}).get('curve', {}).items()}
        val_s = [c['val_s'] for c in r.get('extra', {}).get('curve', {}).values()]
        per_run[str(L)] = dict(
            name=r['name'], final_top1=round(finals[L], 2), curve=curve,
            plateau_epoch=plateau_epoch(curve, delta, window) if curve else None,
            fit_top1=r.get('extra', {}).get('fit_top1'), iters=r['iters'],
            step_time_s=r['step_time_s'], threads=r.get('threads'), device=r.get('device'),
            epoch_time_s=round(r['step_time_s'] * iters_per_epoch(images), 1),
            val_time_s=round(float(np.median(val_s)), 1) if val_s else None,
            train_time_s=r['train_time_s'])
    chosen = choose_length(finals, delta)
    step = float(np.median([runs[L]['step_time_s'] for L in lengths]))
    return dict(
        images=images, lengths=lengths, delta=delta, window=window,
        rule=(f'shortest length whose final top-1 is within {delta} of the final top-1 of every '
              'longer length; null: only the longest meets it (no plateau shown)'),
        chosen_epochs=chosen,
        chosen_iters=None if chosen is None else chosen * iters_per_epoch(images),
        best_final=round(max(finals.values()), 2), runs=per_run,
        median_step_s=round(step, 4),
        epoch_time_s=round(step * iters_per_epoch(images), 1),
        epoch_time_all_60000_s=round(step * iters_per_epoch(fm.TRAIN_SIZE), 1))


def print_entry(key: str, entry: dict) -> None:
    lengths = entry['lengths']
    last = max(max(r['curve'], default=0) for r in entry['runs'].values())
    rows = []
    for e in range(1, last + 1):
        rows.append([e] + [entry['runs'][str(L)]['curve'].get(e, '') for L in lengths])
    print(f'\n{key}: test top-1 after every epoch ({entry["images"]} training images), one '
          'column per schedule length')
    print(markdown_table(['epoch'] + [f'{L}-epoch schedule' for L in lengths], rows))
    print(markdown_table(
        ['schedule', 'final top-1', 'plateau epoch', 'fit top-1', 'step s', 'epoch s',
         'val s'],
        [[f'{L} epochs', r['final_top1'], r['plateau_epoch'] or '-',
          '-' if r['fit_top1'] is None else r['fit_top1'], r['step_time_s'], r['epoch_time_s'],
          r['val_time_s'] or '-'] for L, r in ((L, entry['runs'][str(L)]) for L in lengths)]))
    chosen = entry['chosen_epochs']
    print(f'rule: {entry["rule"]}\nchosen: '
          + (f'{chosen} epochs ({entry["chosen_iters"]} iterations)' if chosen else
             'none (the longest schedule still gains more than the tolerance)')
          + f'; one epoch on {entry["images"]} images: {entry["epoch_time_s"]:.0f} s, on all '
          f'60000: {entry["epoch_time_all_60000_s"]:.0f} s (median step '
          f'{entry["median_step_s"]:.3f} s, this machine)')


# ---------------------------------------------------------------------------- targets
def fm_target(args) -> tuple:
    """(key, {length: run}) of the student or teacher curves."""
    config = fm.STUDENT_CONFIG if args.target == 'student' else fm.TEACHER_CONFIG
    if not args.report:
        fm.prepare_data(args.data_root)
    runs = {}
    for L in args.lengths:
        cfg = fm.configure(Config.fromfile(config), args.seed, L, args.data_root,
                           subset=args.subset or None)
        name = f'{args.target}_curve_{L}e-{args.subset or "all"}_seed{args.seed}'
        try:
            runs[L] = curve_run(name, cfg, args.work_dir, runs_dir(args), args.fit)
        except RunNotFinished:
            continue
    return f'{args.target}_{fm._size_tag(args.subset)}', runs


def blockwise_target(args) -> tuple:
    from benchmarks import blockwise_fashion_mnist as bw
    if args.report:  # names only: nothing is trained, searched or emitted
        ctx, emitted = dict(name=bw.teacher_name(args)), None
    else:
        fm.prepare_data(args.data_root)
        # teacher and search are the benchmark's (same work dir: its checkpoint and search
        # cache are reused); the teacher's result file goes with the curves
        ctx = bw.teacher_and_search(args, runs_dir(args))
        emitted = bw.emit_budget(ctx, args.budget, args)
    runs = {}
    for L in args.lengths:
        name = 'curve_' + bw.run_name(args.budget, args.variant, ctx, args, args.seed, epochs=L)
        try:
            if emitted is None:
                runs[L] = run_config(name, None, args.work_dir, runs_dir(args))
                continue
            cfg = bw.student_config(emitted, args.variant, ctx, args.budget, args, args.seed,
                                    epochs=L)
            runs[L] = curve_run(name, cfg, args.work_dir, runs_dir(args), args.fit)
        except RunNotFinished:
            continue
    views = f'_v{args.views}' if args.views else ''
    return (f'{args.variant}_flops{args.budget:g}_{fm._size_tag(args.subset)}_'
            f'{ctx["name"]}{views}', runs)


def bw_teacher_target(args) -> tuple:
    """(key, {length: run}) of the block-wise benchmark's uncompressed model, one whole
    schedule per length (its teacher is one of them when the length is ``--teacher-epochs``,
    but trained apart: a curve run validates every epoch and keeps no weights)."""
    from benchmarks import blockwise_fashion_mnist as bw
    if not args.report:
        fm.prepare_data(args.data_root)
    runs = {}
    for L in args.lengths:
        name = (f'bw_teacher_curve_{L}e-{args.teacher_subset or "all"}_'
                f'v{args.val_subset or "all"}_seed{args.seed}')
        try:
            if args.report:  # names only: nothing is fetched or emitted
                runs[L] = run_config(name, None, args.work_dir, runs_dir(args))
                continue
            cfg = bw.teacher_config(args, L)
            cfg.randomness = dict(seed=args.seed)
            runs[L] = curve_run(name, cfg, args.work_dir, runs_dir(args), args.fit)
        except RunNotFinished:
            continue
    return f'bw_teacher_{fm._size_tag(args.teacher_subset)}', runs


def benchmark_teacher(args, epochs: int = 3) -> Optional[dict]:
    """The shared teacher of the Fashion-MNIST benchmarks (its default budget: 3 epochs on all
    images), if its result file is there: a student schedule that comes close to it leaves
    nothing to distil."""
    name = f'teacher_{epochs}e-all'
    path = osp.join(osp.dirname(osp.abspath(args.results)), 'fashion_mnist_runs', f'{name}.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return dict(name=name, top1=round(json.load(f)['metrics'][METRIC], 2))


def runs_dir(args) -> str:
    return osp.splitext(args.results)[0] + '_runs'


# ---------------------------------------------------------------------------- plan
#: Committed runs whose median step gives each variant's time per iteration (one thread of
#: this 2-core machine, another single-thread run on the other core).
STEP_SOURCES = {
    'student': 'fashion_mnist_runs/student_15e-5000_seed*.json',
    'kd': 'fashion_mnist_runs/kd_15e-5000_t3e-all_seed*.json',
    'kd-cache': 'teacher_cost_runs/kd-teacher-cache_15e-5000_t3e-all_seed*.json',
    'mixup': 'stkd_fashion_mnist_runs/mixup_15e-5000_seed*.json',
    'stkd': 'stkd_fashion_mnist_runs/stkd_15e-5000_t3e-all_seed*.json',
    'stkd-clean': 'stkd_fashion_mnist_runs/stkd-clean_15e-5000_t3e-all_seed*.json',
    'reviewkd': 'reviewkd_fashion_mnist_runs/reviewkd_15e-5000_t3e-all_seed*.json',
    'teacher': 'fashion_mnist_runs/teacher_3e-all.json',
    'bw-teacher': 'blockwise_fashion_mnist_runs/teacher_2e-10000_vall.json',
    'blockwise_kd': 'blockwise_fashion_mnist_runs/flops*_blockwise_kd_*.json',
    'kd_only': 'blockwise_fashion_mnist_runs/flops*_kd_only_*.json',
    'scratch': 'blockwise_fashion_mnist_runs/flops*_scratch_*.json',
}
#: Variants without a committed run: the variant whose step they take (ReviewKD + KD runs the
#: same teacher stages and adds a 10-way KL).
STEP_AS = {'reviewkd-kd': 'reviewkd'}
FM_GRID = ('student', 'kd', 'mixup', 'stkd', 'stkd-clean', 'reviewkd', 'reviewkd-kd')
BW_GRID = ('blockwise_kd', 'kd_only', 'scratch')


def measured_steps(results_dir: str) -> Dict[str, float]:
    """Median step time of each variant over its committed runs (see STEP_SOURCES)."""
    steps = {}
    for variant, pattern in STEP_SOURCES.items():
        times = []
        for path in glob.glob(osp.join(results_dir, pattern)):
            with open(path) as f:
                times.append(json.load(f)['step_time_s'])
        if times:
            steps[variant] = float(np.median(times))
    for variant, like in STEP_AS.items():
        if like in steps:
            steps.setdefault(variant, steps[like])
    return steps


#: Variants that read the teacher from the cache with ``--views`` (logits only: ReviewKD's
#: cached stage maps are slower to read than its teacher is to run, fashion_mnist.CACHE_VARIANTS).
CACHEABLE = ('kd', 'blockwise_kd', 'kd_only')


def cached_steps(steps: Dict[str, float]) -> Dict[str, float]:
    """Estimated steps with the teacher cache (once it is filled): logit KD takes its measured
    cached step (``kd-cache``); a block-wise KD fine-tune costs its scratch control's step plus
    what the cache costs over the student alone (``kd-cache - student``)."""
    steps = dict(steps)
    if 'kd-cache' not in steps or 'kd' not in steps:
        return steps
    overhead = steps['kd-cache'] - steps.get('student', steps['kd-cache'])
    steps['kd'] = steps['kd-cache']
    for v in ('blockwise_kd', 'kd_only'):
        if v in steps and 'scratch' in steps:
            steps[v] = min(steps[v], steps['scratch'] + overhead)
    return steps


def grid_hours(steps: Dict[str, float], variants: Sequence[str], images: int, epochs: int,
               seeds: int) -> Dict[str, float]:
    """Hours of ``seeds`` runs of each variant, ``epochs`` epochs on ``images`` images."""
    iters = iters_per_epoch(images) * epochs
    return {v: steps[v] * iters * seeds / 3600 for v in variants}


def plan(args) -> None:
    steps = measured_steps(osp.dirname(osp.abspath(args.results)))
    for item in args.step_time or []:
        variant, seconds = item.split('=')
        steps[variant] = float(seconds)
    images = args.subset or fm.TRAIN_SIZE
    if args.views:
        steps = cached_steps(steps)
    fm_variants = [v for v in FM_GRID if v in steps]
    hours = grid_hours(steps, fm_variants, images, args.epochs, len(args.seeds))
    bw_hours = grid_hours(steps, [v for v in BW_GRID if v in steps], images,
                          args.bw_epochs or args.epochs, len(args.seeds))
    bw_hours = {v: 2 * h for v, h in bw_hours.items()}  # two FLOPs budgets
    cached = CACHEABLE if args.views else ()
    rows = [[v + (' (cache)' if v in cached else ''), f'{steps[v]:.3f}', f'{h:.2f}']
            for v, h in hours.items()]
    rows += [[f'{v} (2 budgets' + (', cache)' if v in cached else ')'), f'{steps[v]:.3f}',
              f'{h:.2f}'] for v, h in bw_hours.items()]
    teacher_h = 0.0
    for key, label, epochs, subset in (
            ('teacher', 'teacher', args.teacher_epochs, args.teacher_subset),
            ('bw-teacher', 'block-wise teacher', args.bw_teacher_epochs,
             args.bw_teacher_subset)):
        hours_t = steps.get(key, 0) * iters_per_epoch(subset or fm.TRAIN_SIZE) * epochs / 3600
        teacher_h += hours_t
        rows.append([f'{label} ({epochs} epochs on {subset or fm.TRAIN_SIZE}, once)',
                     f'{steps.get(key, 0):.3f}', f'{hours_t:.2f}'])
    total = sum(hours.values()) + sum(bw_hours.values()) + teacher_h
    print(f'Grid at {args.epochs} epochs on {images} images ({iters_per_epoch(images)} '
          f'iterations per epoch), {len(args.seeds)} seeds; block-wise fine-tunes '
          f'{args.bw_epochs or args.epochs} epochs; step times: median of the committed runs '
          '(one thread, another run on the other core) unless --step-time')
    print(markdown_table(['variant', 'step s', 'hours'], rows))
    print(f'total: {total:.1f} h = {total / 3:.1f} three-hour sessions '
          '(one run at a time; plus the budget curves and the BCCD seeds)')


# ---------------------------------------------------------------------------- main
def parse_args(argv: Optional[List[str]] = None):
    parser = argparse.ArgumentParser(prog='python -m benchmarks.fashion_mnist_budget',
                                     description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='target', required=True)

    def common_options(p, lengths):
        p.add_argument('--lengths', type=int, nargs='+', default=lengths,
                       help='schedule lengths in epochs, one run each')
        p.add_argument('--seed', type=int, default=0)
        p.add_argument('--delta', type=float, default=0.3,
                       help='tolerance of the rules, top-1 points')
        p.add_argument('--window', type=int, default=3,
                       help='epochs ahead of the single-curve plateau rule')
        p.add_argument('--fit', type=int, default=10000,
                       help='also evaluate each final model on the first N clean training '
                       'images (0: off)')
        p.add_argument('--results', default=RESULTS)
        p.add_argument('--report', action='store_true',
                       help='train nothing: summarise the finished runs')

    for target in ('student', 'teacher'):
        p = sub.add_parser(target, help=f'the Fashion-MNIST {target} alone')
        common_options(p, [5, 10, 20])
        p.add_argument('--subset', type=int, default=0,
                       help='train on the first N training images (0: all 60000)')
        p.add_argument('--data-root', default=fm.DATA_ROOT)
        p.add_argument('--work-dir', default=WORK_ROOT)
    p = sub.add_parser('blockwise', help='a block-wise compressed student\'s fine-tune')
    common_options(p, [2, 4, 8])
    from benchmarks import blockwise_fashion_mnist as bw
    bw.add_arguments(p)
    p.set_defaults(subset=0)  # the curves: all images unless told
    p.add_argument('--budget', type=float, default=0.3, help='FLOPs budget (fraction)')
    p.add_argument('--variant', default='blockwise_kd', choices=list(bw.VARIANTS))
    p = sub.add_parser('bw-teacher', help='the block-wise benchmark\'s uncompressed model')
    common_options(p, [4, 8, 12])
    bw.add_arguments(p)
    p.set_defaults(teacher_subset=0)  # the curves: all images unless told
    p = sub.add_parser('plan', help='the grid\'s cost at a budget (trains nothing)')
    p.add_argument('--subset', type=int, default=0)
    p.add_argument('--epochs', type=int, required=True)
    p.add_argument('--bw-epochs', type=int, default=0,
                   help='block-wise fine-tune epochs (default: --epochs)')
    p.add_argument('--teacher-epochs', type=int, default=3)
    p.add_argument('--teacher-subset', type=int, default=0)
    p.add_argument('--bw-teacher-epochs', type=int, default=2)
    p.add_argument('--bw-teacher-subset', type=int, default=10000)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--views', type=int, default=0,
                   help='the cacheable variants read the teacher from the cache (estimated '
                   'from logit KD\'s committed cached step, see cached_steps)')
    p.add_argument('--step-time', nargs='*', metavar='VARIANT=SECONDS',
                   help='override or add a variant\'s step time (e.g. a smoke run\'s)')
    p.add_argument('--results', default=RESULTS)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if args.target == 'plan':
        plan(args)
        return {}
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', os.cpu_count() or 1)))
    common._report_only = args.report
    try:
        target = {'blockwise': blockwise_target, 'bw-teacher': bw_teacher_target}
        key, runs = target.get(args.target, fm_target)(args)
    finally:
        common._report_only = False
    if not runs:
        raise SystemExit('no finished run to summarise')
    images = args.teacher_subset if args.target == 'bw-teacher' else args.subset
    entry = summarise(runs, images or fm.TRAIN_SIZE, args.delta, args.window)
    entry.update(target=args.target, seed=args.seed,
                 complete=len(runs) == len(args.lengths),
                 machine=dict(cpus=os.cpu_count(), torch=torch.__version__))
    notes = []
    if args.target == 'student':
        teacher = benchmark_teacher(args)
        if teacher is not None:
            entry['benchmark_teacher'] = teacher
            margin = teacher['top1'] - entry['best_final']
            notes.append(f'the benchmarks\' teacher ({teacher["name"]}): '
                         f'{teacher["top1"]:.2f} top-1, {margin:+.2f} over the best student '
                         'schedule' + (' - too close: train the teacher longer '
                                       '(--teacher-epochs)' if margin < 1.0 else ''))
    if not entry['complete']:
        notes.append(f'PARTIAL: {len(runs)} of {len(args.lengths)} schedules finished')
    if args.target == 'blockwise':
        entry.update(variant=args.variant, budget=args.budget,
                     teacher_epochs=args.teacher_epochs,
                     teacher_subset=args.teacher_subset or None, block_iters=args.block_iters)
    print_entry(key, entry)
    for note in notes:
        print(note)
    summary = {}
    if osp.isfile(args.results):
        with open(args.results) as f:
            summary = json.load(f)
    summary[key] = entry
    write_json(args.results, summary)
    chosen = entry['chosen_epochs']
    print(f'{key}: chosen_epochs={chosen if chosen else "none"} '
          f'best_final={entry["best_final"]:.2f} '
          f'epoch_time_60k_s={entry["epoch_time_all_60000_s"]:.0f}')
    return entry


if __name__ == '__main__':
    main()
