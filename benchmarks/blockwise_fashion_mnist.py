"""Block-wise KD compression on Fashion-MNIST: an ImageNet-initialised MobileNetV2 teacher
compressed under two FLOPs budgets.

    python -m benchmarks.blockwise_fashion_mnist [--budgets 0.5 0.3] [--seeds 0 1 2] \\
        [--epochs 3] [--subset 5000] [--teacher-epochs 2] [--teacher-subset 10000] [--views V]

Per budget (a fraction of the teacher's FLOPs at 32x32): the compressed student fine-tuned
with logit KD from its block-wise trained blocks ("blockwise_kd"), the same KD fine-tune from
the blocks' initial weights, i.e. without block-wise KD ("kd_only"), and the same architecture
trained alone from random weights ("scratch"). Every run is a normal mmengine Runner on an
emitted config (``benchmarks/common.run_config``: resumable, one JSON per run); the block-wise
search is cached in the work dir. Teacher and search are made once (seed 0); every seed
fine-tunes the three variants (same seeds across variants, so the differences pair up). The
last line is the tighter budget's student (block-wise + KD) against the teacher:
``flops_ratio=X.XX params_ratio=Y.YY top1_delta=+Z.ZZ spread=S.SS`` (ratios are student /
teacher; delta: mean over seeds; spread: the largest seed-to-seed difference of any variant).

The first budget (students 3 epochs on 5000 images, teacher 2 epochs on 10000, 300 block-wise
iterations) writes ``blockwise_fashion_mnist.json``; any other writes
``blockwise_fashion_mnist_<budget>.json`` (:func:`budget_tag`). With ``--views V`` the
students' training set is wrapped in ``ReplayableViews`` (V views per image, every variant) and
the two KD fine-tunes read the teacher's logits from the teacher-output cache (one per FLOPs
budget, shared by the seeds and by both KD variants).
"""
import argparse
import os
import os.path as osp
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.config import Config

from benchmarks.lib.common import (REPO_ROOT, imagenet_mobilenet_v2, markdown_table,
                                   paired_differences, paired_table, run_config, seed_stats,
                                   seed_std, write_json)
from benchmarks.lib.fashion_mnist import DATA_ROOT, _size_tag, configure, prepare_data, use_views
from mmstructkd.compression import BlockwiseCompressor

CONFIG = osp.join(REPO_ROOT, 'configs', 'blockwise',
                  'blockwise_mobilenet-v2_fashion-mnist-32x32.py')
WORK_ROOT = osp.join(REPO_ROOT, 'work_dirs', 'benchmarks', 'blockwise_fashion_mnist')
RESULTS = osp.join(REPO_ROOT, 'benchmarks', 'results', 'blockwise_fashion_mnist.json')
METRIC = 'accuracy/top1'
VARIANTS = ('blockwise_kd', 'kd_only', 'scratch')
#: The first budget: its summary is the committed ``blockwise_fashion_mnist.json``.
SMALL_BUDGET = dict(epochs=3, subset=5000, teacher_epochs=2, teacher_subset=10000,
                    block_iters=300, views=0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The teacher, search and fine-tune options (shared with ``fashion_mnist_budget.py``)."""
    parser.add_argument('--teacher-epochs', type=int, default=2)
    parser.add_argument('--teacher-subset', type=int, default=10000,
                        help='the teacher fine-tunes on the first N training images (0: all)')
    parser.add_argument('--epochs', type=int, default=3, help='student epochs')
    parser.add_argument('--subset', type=int, default=5000,
                        help='students train on the first N training images (0: all 60000)')
    parser.add_argument('--block-iters', type=int, default=300,
                        help='block-wise training iterations (every candidate at once)')
    parser.add_argument('--val-subset', type=int, default=0,
                        help='validate on the first N test images (0: all 10000; smoke tests)')
    parser.add_argument('--views', type=int, default=0,
                        help='students train on ReplayableViews with V views per image (0: the '
                        'plain pipeline); the KD fine-tunes then use the teacher cache')
    parser.add_argument('--cache-dtype', default='fp16', choices=['fp16', 'bf16', 'fp32'])
    parser.add_argument('--data-root', default=DATA_ROOT)
    parser.add_argument('--work-dir', default=WORK_ROOT)


def parse_args():
    parser = argparse.ArgumentParser(prog='python -m benchmarks.blockwise_fashion_mnist',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--budgets', type=float, nargs='+', default=[0.5, 0.3],
                        help='FLOPs budgets, fractions of the teacher (the smallest is the '
                        'headline)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='fine-tune seeds (teacher and block-wise search: seed 0)')
    add_arguments(parser)
    parser.add_argument('--results', default=None,
                        help='summary JSON (default: benchmarks/results/'
                        'blockwise_fashion_mnist.json for the first budget, '
                        'blockwise_fashion_mnist_<budget>.json otherwise)')
    args = parser.parse_args()
    if args.results is None:
        tag = budget_tag(args)
        args.results = RESULTS if not tag else f'{osp.splitext(RESULTS)[0]}_{tag}.json'
    return args


def budget_tag(args: argparse.Namespace) -> str:
    """``''`` for the first budget, else e.g. ``60k-10e_t5e-60k`` (students' images and
    epochs, the teacher's, then ``_b<iters>`` / ``_v<views>`` when those differ)."""
    budget = {k: getattr(args, k, v) or 0 for k, v in SMALL_BUDGET.items()}
    if budget == SMALL_BUDGET:
        return ''
    tag = (f'{_size_tag(budget["subset"])}-{budget["epochs"]}e_t{budget["teacher_epochs"]}e-'
           f'{_size_tag(budget["teacher_subset"])}')
    if budget['block_iters'] != SMALL_BUDGET['block_iters']:
        tag += f'_b{budget["block_iters"]}'
    if budget['views']:
        tag += f'_v{budget["views"]}'
    return tag


def load(config: str, args, epochs: int, subset: int, seed: int = 0) -> Config:
    cfg = configure(Config.fromfile(config), seed, epochs, args.data_root,
                    subset=subset or None)
    if args.val_subset:
        for loader in ('val_dataloader', 'test_dataloader'):
            cfg[loader].dataset.indices = args.val_subset
    return cfg


def teacher_and_search(args, runs_dir: str) -> dict:
    """Fine-tune (or reuse) the teacher and run (or load) the block-wise search of every
    candidate. Returns ``teacher`` (its result), ``teacher_ckpt``, ``compressor`` and ``name``
    (the teacher's run name, part of every student run's name)."""
    # 1. The teacher: torchvision's ImageNet MobileNetV2, fine-tuned on Fashion-MNIST.
    cfg = teacher_config(args, args.teacher_epochs)
    name = teacher_name(args)
    teacher = run_config(name, cfg, args.work_dir, runs_dir,
                         reuse_needs=f'epoch_{args.teacher_epochs}.pth', keep_weights=True)
    teacher_ckpt = teacher['weights']  # kept beside its result: one teacher for every session
    print(f'teacher: {teacher["metrics"][METRIC]:.2f} top-1')

    # 2. Block-wise training of every candidate (once; shared by the budgets and seeds).
    cfg = load(CONFIG, args, args.epochs, args.subset)
    cfg.compression.block_training.iters = args.block_iters
    compressor = BlockwiseCompressor(cfg, teacher_ckpt, config_path=osp.relpath(CONFIG,
                                                                                REPO_ROOT))
    compressor.search(cache=osp.join(args.work_dir, f'{name}_search_{args.block_iters}it.pth'))
    return dict(teacher=teacher, teacher_ckpt=teacher_ckpt, compressor=compressor, name=name)


def teacher_config(args, epochs: int) -> Config:
    """The uncompressed model's config: torchvision's ImageNet MobileNetV2 (its weights fetched
    into the work dir once), fine-tuned ``epochs`` epochs on ``--teacher-subset`` images."""
    imagenet = imagenet_mobilenet_v2(osp.join(args.work_dir, 'mobilenet_v2_imagenet.pth'),
                                     layout='mmpretrain')
    cfg = load(CONFIG, args, epochs, args.teacher_subset)
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=imagenet,
                                       prefix='backbone.')
    return cfg


def teacher_name(args) -> str:
    """The teacher's run name (part of every student run's name)."""
    return (f'teacher_{args.teacher_epochs}e-{args.teacher_subset or "all"}_'
            f'v{args.val_subset or "all"}')


def emit_budget(ctx: dict, budget: float, args) -> dict:
    """Choose the student under ``budget`` and write its configs (``emit``)."""
    out = osp.join(args.work_dir, f'flops{budget:g}_{ctx["name"]}')
    compressor = ctx['compressor']
    return compressor.emit(compressor.select('flops', budget), out)


def student_config(emitted: dict, variant: str, ctx: dict, budget: float, args, seed: int,
                   epochs: Optional[int] = None) -> Config:
    """The fine-tune config of one variant and seed (``epochs``: default ``args.epochs``),
    with the views and the teacher cache of ``--views``."""
    epochs = epochs or args.epochs
    cfg = load(emitted['student' if variant == 'scratch' else 'kd'], args, epochs, args.subset,
               seed)
    if variant == 'kd_only':
        cfg.model.student.init_cfg.checkpoint = emitted['student_init']
    if 'teacher_ckpt' in cfg.model:
        cfg.model.teacher_ckpt = ctx['teacher_ckpt']
    if args.views:
        use_views(cfg, args.views, cache_dir=osp.join(
            args.work_dir, 'teacher_cache', f'flops{budget:g}_{ctx["name"]}_'
            f'{args.subset or "all"}_v{args.views}_{args.cache_dtype}'), dtype=args.cache_dtype)
    return cfg


def run_name(budget: float, variant: str, ctx: dict, args, seed: int,
             epochs: Optional[int] = None) -> str:
    views = f'_v{args.views}' if args.views else ''
    if views and variant != 'scratch':  # the KD fine-tunes read the teacher cache
        views += f'-cache{args.cache_dtype}'
    return (f'flops{budget:g}_{variant}_{epochs or args.epochs}e-{args.subset or "all"}_'
            f'b{args.block_iters}_{ctx["name"]}{views}_seed{seed}')


def main():
    args = parse_args()
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', os.cpu_count() or 1)))
    prepare_data(args.data_root)
    runs_dir = osp.splitext(args.results)[0] + '_runs'
    ctx = teacher_and_search(args, runs_dir)
    teacher = ctx['teacher']
    teacher_top1 = teacher['metrics'][METRIC]

    # 3. Per budget: choose, emit, fine-tune (three variants, every seed).
    budgets = {}
    for budget in sorted(args.budgets, reverse=True):
        emitted = emit_budget(ctx, budget, args)
        report = emitted['report']
        values: Dict[str, Dict[int, float]] = {v: {} for v in VARIANTS}
        times: Dict[str, Dict[int, float]] = {v: {} for v in VARIANTS}
        for seed in args.seeds:
            for variant in VARIANTS:
                cfg = student_config(emitted, variant, ctx, budget, args, seed)
                run = run_config(run_name(budget, variant, ctx, args, seed), cfg, args.work_dir,
                                 runs_dir)
                values[variant][seed] = run['metrics'][METRIC]
                times[variant][seed] = run['train_time_s']
                print(f'budget {budget:g} seed {seed} {variant}: {values[variant][seed]:.2f} '
                      'top-1')
        mean, spread = seed_stats(values)
        std = seed_std(values)
        budgets[f'{budget:g}'] = dict(
            flops=report['student']['flops'], params=report['student']['params'],
            flops_ratio=round(report['flops_ratio'], 4),
            params_ratio=round(report['params_ratio'], 4),
            top1={v: round(m, 2) for v, m in mean.items()},
            std={v: None if x is None else round(x, 2) for v, x in std.items()},
            top1_per_seed={v: {str(s): round(x, 2) for s, x in by_seed.items()}
                           for v, by_seed in values.items()},
            spread=round(spread, 2),
            paired=paired_differences(values, ['kd_only', 'scratch']),
            top1_delta=round(mean['blockwise_kd'] - teacher_top1, 2),
            train_time_s={v: round(float(np.mean(list(t.values()))), 1)
                          for v, t in times.items()},
            units=report['units'])

    t = ctx['compressor'].teacher_complexity['']
    seeds = list(args.seeds)
    rows = [['teacher', f'{t["flops"] / 1e6:.2f}', f'{t["params"] / 1e6:.3f}', teacher_top1, '']
            + [''] * len(seeds)]
    for budget, b in budgets.items():
        for variant in VARIANTS:
            rows.append([f'{variant} (FLOPs <= {budget} x teacher)', f'{b["flops"] / 1e6:.2f}',
                         f'{b["params"] / 1e6:.3f}', b['top1'][variant],
                         '-' if b['std'][variant] is None else b['std'][variant]]
                        + [b['top1_per_seed'][variant][str(s)] for s in seeds])
    print(f'Fashion-MNIST test top-1 ({args.val_subset or 10000} images, 32x32); teacher '
          f'{args.teacher_epochs} epochs on {args.teacher_subset or 60000} images; students '
          f'{args.epochs} epochs on {args.subset or 60000}'
          + (f' ({args.views} replayable views each)' if args.views else '') +
          f'; block-wise {args.block_iters} iterations; seeds {seeds}')
    print(markdown_table(['model', 'MFLOPs', 'M params', 'top-1 (mean)', 'std']
                         + [f'seed {s}' for s in seeds], rows))
    for budget, b in budgets.items():
        print(f'\nPaired top-1 differences at FLOPs <= {budget} x teacher (same seed):')
        print(paired_table(b['paired'], seeds))

    tight = budgets[f'{min(args.budgets):g}']
    spread = max(b['spread'] for b in budgets.values())
    summary = dict(
        flops_ratio=tight['flops_ratio'], params_ratio=tight['params_ratio'],
        top1_delta=tight['top1_delta'], spread=spread, headline_budget=min(args.budgets),
        metric=METRIC,
        teacher=dict(flops=t['flops'], params=t['params'], top1=teacher_top1),
        budgets=budgets,
        settings=dict(seeds=seeds, teacher_epochs=args.teacher_epochs,
                      teacher_subset=args.teacher_subset or None, epochs=args.epochs,
                      subset=args.subset or None, block_iters=args.block_iters,
                      val_subset=args.val_subset or None, input_size=[32, 32],
                      views=args.views or None, budget=budget_tag(args) or 'small',
                      teacher_cache=dict(variants=['blockwise_kd', 'kd_only'],
                                         dtype=args.cache_dtype) if args.views else None),
        machine=dict(cpus=os.cpu_count(), torch=torch.__version__))
    write_json(args.results, summary)
    print(f'flops_ratio={tight["flops_ratio"]:.2f} params_ratio={tight["params_ratio"]:.2f} '
          f'top1_delta={tight["top1_delta"]:+.2f} spread={spread:.2f}')


if __name__ == '__main__':
    main()
