"""Held-out check of the CamVid StructKD benchmark: its finished runs on CamVid's test split.

``benchmarks/structkd_camvid.py`` validates on the 101 val images, and one of its choices was
made there (the retuned pixel-wise weight, lambda_pi = 1, from a sweep on val seed 0). Nothing
was chosen on the 233 test images. This evaluates the last student weights of every run in the
benchmark's summary (``benchmarks/results/structkd_camvid.json``) on the test split and prints
the benchmark's tables for it: per variant mean, std and seeds; paired gains of each added term;
per-class IoU. Writes ``benchmarks/results/structkd_camvid_test.json`` and, last,
``test_miou_gain=+X.XX spread=Y.YY pair_gain=... holistic_gain=... cwd_gain=...``.

A run's last checkpoint (``<work dir>/<run>/iter_<iters>.pth``) exists only on the machine that
trained it (results are committed, checkpoints are not). ``--retrain-missing`` trains such a run
again (same config, seed, teacher, views) into its work dir; its val mIoU is compared with the
committed one (CPU runs here repeat exactly) and both are kept in the output, so a retrained
run that did not repeat is visible.

    python -m benchmarks.structkd_camvid_test_split [--retrain-missing] \\
        [--work-dir ~/.cache/mmstructkd/benchmarks/structkd_camvid]
"""
import argparse
import json
import os
import os.path as osp
import shutil

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from benchmarks.lib.common import REPO_ROOT, imagenet_mobilenet_v2, write_json
from benchmarks.structkd_camvid import (CONFIGS, RESULTS, add_path_arguments, kept_teacher,
                                        run, run_name, seed_statistics, signed, variant_setup)
from mmstructkd.registry import MODELS
from mmstructkd.utils.checkpoint import load_model_checkpoint
from mmstructkd.utils.config_resolution import resolve_config


def parse_args():
    parser = argparse.ArgumentParser(prog='python -m benchmarks.structkd_camvid_test_split',
                                     description=__doc__.split('\n')[0])
    add_path_arguments(parser)
    parser.add_argument('--summary', default=RESULTS, help="the benchmark's summary JSON")
    parser.add_argument('--split', default='test', choices=['test', 'val'],
                        help='val: a check of this script, which must give the committed val '
                        'mIoU of every run (nothing written)')
    parser.add_argument('--retrain-missing', action='store_true',
                        help='train again a run whose last checkpoint is not in --work-dir')
    return parser.parse_args()


def retrain(args, record: dict, name: str, teacher_ckpt: str, pretrained: str) -> dict:
    """Train a committed run again into its work dir; its result goes to a scratch summary
    beside the work dir (never over the committed one)."""
    scratch = osp.join(args.work_dir, 'retrained', 'structkd_camvid.json')
    runs_dir = osp.splitext(scratch)[0] + '_runs'
    os.makedirs(runs_dir, exist_ok=True)
    # The scratch summary's runs dir holds nothing of the teacher: run() only needs its
    # checkpoint, passed in.
    ns = argparse.Namespace(work_dir=args.work_dir, data_root=args.data_root,
                            results=scratch, report=False, num_views=record['num_views'],
                            no_teacher_cache=not record['teacher_cache'])
    config, overrides = variant_setup(record['variant'])
    return run(name, config, ns, record['iters'], record['seed'], pretrained,
               teacher_ckpt=teacher_ckpt, replayable=True, teacher=record['teacher'],
               overrides=overrides)


def build_for_test(record: dict, checkpoint: str, teacher_ckpt: str, data_root: str,
                   split: str = 'test'):
    """The run's model (distiller or student alone) with its last weights loaded strictly,
    ``split``'s dataset and its evaluator."""
    config, overrides = variant_setup(record['variant'])
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    if overrides:
        cfg.merge_from_dict(overrides)
    if 'teacher' in cfg.model:
        cfg.model.teacher_ckpt = teacher_ckpt  # overwritten by the run's checkpoint below
        cfg.model.pop('teacher_cache', None)
    student = cfg.model.get('student', cfg.model)
    student.backbone.init_cfg = None  # the run's checkpoint has every weight
    loader = f'{split}_dataloader'
    cfg[loader].dataset.data_root = data_root
    cfg = resolve_config(cfg, verbose=False)
    DefaultScope.get_instance(f'test-split-{record["variant"]}-{record["seed"]}',
                              scope_name=cfg.default_scope)
    model = MODELS.build(cfg.model)
    load_model_checkpoint(model, checkpoint, strict=True)
    from mmseg.registry import DATASETS, METRICS
    dataset = DATASETS.build(cfg[loader].dataset)
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo
    return model.eval(), dataset, metric


@torch.no_grad()
def evaluate(model, dataset, metric, batch_size: int = 4) -> dict:
    """mIoU, aAcc and per-class IoU (x100; None for a class absent from the split)."""
    metric.results = []
    for start in range(0, len(dataset), batch_size):
        batch = pseudo_collate([dataset[i] for i in range(start, min(start + batch_size,
                                                                     len(dataset)))])
        metric.process(batch, [o.to_dict() for o in model.test_step(batch)])
    results = metric.results
    intersect = sum(r[0] for r in results)
    union = sum(r[1] for r in results)
    metrics = metric.compute_metrics(results)
    per_class = {c: round(float(i / u * 100), 2) if u > 0 else None
                 for c, i, u in zip(dataset.metainfo['classes'], intersect, union)}
    return dict(mIoU=float(metrics['mIoU']), aAcc=float(metrics['aAcc']),
                per_class_iou=per_class)


def main():
    args = parse_args()
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', os.cpu_count() or 1)))
    with open(args.summary) as f:
        summary = json.load(f)
    teacher_ckpt = kept_teacher(args.summary, summary)
    pretrained = imagenet_mobilenet_v2(
        osp.join(args.work_dir, 'pretrain', 'mobilenet_v2_imagenet_mm.pth'))
    tested = {}
    for record in summary['runs']:
        name = run_name(record['variant'], record['iters'], record['num_views'], record['seed'])
        checkpoint = osp.join(args.work_dir, name, f'iter_{record["iters"]}.pth')
        val_retrained = None
        if not osp.isfile(checkpoint):
            if not args.retrain_missing:
                raise FileNotFoundError(
                    f'{checkpoint} is missing: the run {name} was trained on another machine. '
                    'Pass --retrain-missing to train it again, or --work-dir where it is.')
            if osp.isdir(osp.join(args.work_dir, name)):  # a run dir without its last weights
                shutil.move(osp.join(args.work_dir, name),
                            osp.join(args.work_dir, f'{name}.incomplete'))
            val_retrained = retrain(args, record, name, teacher_ckpt, pretrained)['mIoU']
        model, dataset, metric = build_for_test(record, checkpoint, teacher_ckpt,
                                                args.data_root, args.split)
        result = evaluate(model, dataset, metric)
        result.update(variant=record['variant'], seed=record['seed'], run=name,
                      val_mIoU=record['mIoU'], val_mIoU_retrained=val_retrained)
        tested[(record['variant'], record['seed'])] = result
        print(f'{record["variant"]} seed {record["seed"]}: {args.split} {result["mIoU"]:.2f} mIoU '
              f'(val {record["mIoU"]:.2f}' + (f', retrained {val_retrained:.2f})'
                                                if val_retrained is not None else ')'))
    if args.split == 'val':
        worst = max(abs(r['mIoU'] - (r['val_mIoU_retrained'] or r['val_mIoU']))
                    for r in tested.values())
        print(f'val check: largest difference from the recorded val mIoU {worst:.4f}')
        return
    report(args, summary, tested, len(dataset))


def report(args, summary: dict, tested: dict, num_images: int) -> None:
    seeds = sorted({s for _, s in tested})
    variants = [v for v in summary['variants'] if all((v, s) in tested for s in seeds)]
    classes = list(tested[(variants[0], seeds[0])]['per_class_iou'])
    stats = seed_statistics(tested, variants, seeds, classes)
    miou, mean, std, spread, gains, per_class = (
        stats[k] for k in ('miou', 'mean', 'std', 'spread', 'gains', 'per_class'))
    best = summary['best_variant']  # chosen on val; the test split checks it
    lines = [f'CamVid test ({num_images} images, never used to choose anything); runs of '
             f'{osp.basename(args.summary)} (val best variant: {best})',
             '| variant | test mIoU mean | std | ' + ' | '.join(f'seed {s}' for s in seeds) +
             ' | val mIoU mean |', '|---|---:|---:|' + '---:|' * len(seeds) + '---:|']
    lines += [f'| {v} | {mean[v]:.2f} | {std[v]:.2f} | ' +
              ' | '.join(f'{x:.2f}' for x in miou[v]) +
              f' | {summary["variants"][v]["mean"]:.2f} |' for v in variants]
    lines += ['', '| added term | paired test gain (mean) | min | max | val (mean) |',
              '|---|---:|---:|---:|---:|']
    lines += [f'| {n} | {g["mean"]:+.2f} | {g["min"]:+.2f} | {g["max"]:+.2f} | '
              f'{summary["paired"][n]["mean"]:+.2f} |' for n, g in gains.items()]
    lines += ['', '| per-class test IoU (seed mean) | ' + ' | '.join(variants) + ' |',
              '|---|' + '---:|' * len(variants)]
    lines += [f'| {c} | ' + ' | '.join(f'{per_class[v][c]:.1f}' for v in variants) + ' |'
              for c in classes]
    print('\n'.join(lines))

    def gain_of(name):
        return gains[name]['mean'] if name in gains else None

    out = dict(split='test', num_images=num_images, complete=bool(summary.get('complete')),
               best_variant=best,
               gain=round(mean[best] - mean['student'], 2) if best in mean else None,
               spread=round(spread, 2), pair_gain=gain_of('pair'),
               holistic_gain=gain_of('holistic'), cwd_gain=gain_of('cwd'), paired=gains,
               variants={v: dict(mean=round(mean[v], 2), std=round(std[v], 2),
                                 per_seed=dict(zip(map(str, seeds), miou[v])),
                                 per_class_iou=per_class[v]) for v in variants},
               runs=list(tested.values()))
    write_json(osp.splitext(args.summary)[0] + '_test.json', out)

    print(f'test_miou_gain={signed(out["gain"])} spread={spread:.2f} '
          f'pair_gain={signed(out["pair_gain"])} holistic_gain={signed(out["holistic_gain"])} '
          f'cwd_gain={signed(out["cwd_gain"])}')


if __name__ == '__main__':
    main()
