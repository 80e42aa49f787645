"""Classifier-to-detector distillation on BCCD: does a cell-crop classifier improve a detector?

Builds the crop-classification set of BCCD (``tools/dataset_converters/coco_to_crops.py``),
trains the classifier teacher on it (``configs/cls2det/mobilenet-v2_1xb64-24e_bccd-crops-...``:
torchvision's ImageNet MobileNetV2, 112x112 crops), then the slim RetinaNet student of the BCCD
benchmarks alone (its run is shared with them), with recognition KD, with localization KD and
with both (``configs/cls2det/cls2det_*_bccd-320x240.py``), same schedule and seeds.

Every run is a normal mmengine Runner on its config: a finished run is reused from its result
file, an interrupted one resumes from its last checkpoint. Prints a table of val bbox mAP (x100;
mean over seeds, each seed, training time), one of per-class AP, writes
``benchmarks/results/cls2det_bccd.json`` (``gain``: the best distilled variant minus the
detector alone, ``spread``: the largest seed-to-seed difference of any variant) and, last,
``map_gain=+X.XX spread=Y.YY``.

    python -m benchmarks.cls2det_bccd [--seeds 0 1 2] [--epochs 24] [--cls-teacher-epochs 8]

Smoke test (minutes, numbers meaningless): ``--subset 8 --epochs 1 --cls-teacher-epochs 1 --seeds 0
--work-dir /tmp/cls2det --results /tmp/cls2det/cls2det_bccd.json``.
"""
import argparse
import os.path as osp
import subprocess
import sys

import numpy as np
from mmengine.config import Config

from benchmarks.lib.bccd import (METRIC, SHARED_VARIANTS, STUDENT_CONFIG, add_arguments,
                                 configure, run_name, shared_runs_dir, subset, teacher_tag)
from benchmarks.lib.common import (REPO_ROOT, compare, imagenet_mobilenet_v2, markdown_table,
                                   run_config, save_summary)

CONFIGS = osp.join(REPO_ROOT, 'configs', 'cls2det')
TEACHER_CONFIG = osp.join(CONFIGS, 'mobilenet-v2_1xb64-24e_bccd-crops-112x112.py')
STUDENT_PART = 'mnv2-crops_retinanet-mnv2-w0.5-fpn64-slim_1xb8-24e_bccd-320x240.py'
VARIANTS = {
    'student': STUDENT_CONFIG,
    'rec': osp.join(CONFIGS, f'cls2det_rec_{STUDENT_PART}'),
    'loc': osp.join(CONFIGS, f'cls2det_loc_{STUDENT_PART}'),
    'rec+loc': osp.join(CONFIGS, f'cls2det_{STUDENT_PART}'),
}
DISTILLED = ('rec', 'loc', 'rec+loc')
CLASSES = ('RBC', 'WBC', 'Platelets')
TEACHER_METRIC = 'accuracy/top1'


def crop_dataset(args: argparse.Namespace) -> str:
    """Write BCCD's train/val cell crops once (atomic files; a rerun of the tool rewrites)."""
    out = osp.join(args.work_dir, 'bccd_crops')
    if not osp.isfile(osp.join(out, 'meta', 'val.txt')):
        tool = osp.join(REPO_ROOT, 'tools', 'dataset_converters', 'coco_to_crops.py')
        subprocess.run([sys.executable, tool, args.data_root, out], check=True)
    return out


def teacher_checkpoint(args: argparse.Namespace) -> tuple:
    """Build the crops, train (or reuse) the classifier teacher; its kept weights and result."""
    crops = osp.join(crop_dataset(args), '')
    cfg = Config.fromfile(TEACHER_CONFIG)
    epochs = args.cls_teacher_epochs
    cfg.randomness = dict(seed=0)
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = cfg.train_cfg.val_begin = epochs + 1  # run_config validates
    for sched in cfg.param_scheduler:
        if sched.type == 'CosineAnnealingLR':
            sched.end = epochs
    cfg.default_hooks.checkpoint.interval = 2  # as bccd.configure: little lost on a resume
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = crops
    cfg.model.backbone.init_cfg.checkpoint = imagenet_mobilenet_v2(
        osp.join(args.work_dir, 'pretrain', 'mobilenet_v2_imagenet_mmpretrain.pth'),
        layout='mmpretrain')
    if args.subset:
        subset(cfg, 8 * args.subset, 8 * args.subset)
    # Its weights are kept beside its result (committed): every distilled run, in whatever
    # session it trains, distils from this one teacher.
    result = run_config(run_name(f'cls_teacher_{epochs}e', args), cfg, args.work_dir,
                        runs_dir(args), reuse_needs=f'epoch_{epochs}.pth', keep_weights=True)
    return result['weights'], result


def runs_dir(args: argparse.Namespace) -> str:
    return osp.splitext(args.results)[0] + '_runs'


def train_student(variant: str, config: str, seed: int, args: argparse.Namespace,
                  teacher_ckpt: str, own_runs_dir: str) -> dict:
    """Train (or reuse) one detector run; the student alone is the BCCD benchmarks' shared run
    (same name and folder as ``bccd.train_student`` gives it)."""
    cfg = configure(Config.fromfile(config), seed, args.epochs, args)
    name = f'{variant}_{args.epochs}e'
    if 'teacher' in cfg.model:  # a distiller
        cfg.model.teacher_ckpt = teacher_ckpt
        name = f'cls2det_{name}_{teacher_tag(teacher_ckpt)}'
    folder = shared_runs_dir(args) if variant in SHARED_VARIANTS else own_runs_dir
    result = run_config(run_name(f'{name}_seed{seed}', args), cfg, args.work_dir, folder)
    result['metrics'].setdefault(METRIC, 0.0)  # CocoMetric gives nothing for no boxes at all
    return result


def header(args: argparse.Namespace):
    def line(teacher: dict) -> str:
        return (f'BCCD val bbox mAP x100 ({args.subset or 87} images); detectors: {args.epochs} '
                f'epochs, seeds {list(args.seeds)}; classifier teacher '
                f'{teacher["metrics"][TEACHER_METRIC]:.2f}% top-1 on the val crops '
                f'({args.cls_teacher_epochs} epochs)')
    return line


def per_class_table(summary: dict) -> str:
    """Per-class AP x100, mean over seeds (CocoMetric's ``<class>_precision``)."""
    def mean_ap(variant: str, cls: str) -> float:
        # a run without any detection has no per-class entry: its AP is 0
        values = [r['metrics'].get(f'coco/{cls}_precision', 0.0)
                  for r in summary['runs'] if r['variant'] == variant]
        return float(np.mean([0.0 if v != v else v for v in values])) * 100

    rows = [[v] + [mean_ap(v, c) for c in CLASSES] for v in summary['mean']]
    return markdown_table(['variant'] + [f'{c} AP' for c in CLASSES], rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.cls2det_bccd',
                                     description=__doc__.split('\n')[0])
    add_arguments(parser, 'cls2det_bccd.json')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    summary = compare(args, VARIANTS, method='rec+loc', baseline='student',
                      last_key='rec_loc_map_gain', metric=METRIC, metric_name='bbox mAP',
                      train_teacher=teacher_checkpoint, train_student=train_student,
                      header=header(args), scale=100.0, teacher_metric=TEACHER_METRIC,
                      teacher_metric_name='% top-1 (crops)',
                      settings=dict(seeds=list(args.seeds), epochs=args.epochs,
                                    teacher_epochs=args.cls_teacher_epochs,
                                    subset=args.subset))
    if summary is None:  # --teacher-only
        return
    print(per_class_table(summary))
    # The headline: the best distilled variant (by mean) minus the detector alone.
    mean = summary['mean']
    distilled = [v for v in DISTILLED if v in mean]
    best = max(distilled, key=lambda v: mean[v]) if distilled else None
    gain = mean[best] - mean['student'] if best and 'student' in mean else float('nan')
    summary.update(gain=None if gain != gain else round(gain, 2), best_variant=best,
                   gain_definition='best distilled variant (by mean) minus the student alone')
    save_summary(args, summary)
    print(f'map_gain={gain:+.2f} spread={summary["spread"]:.2f}')


if __name__ == '__main__':
    main()
