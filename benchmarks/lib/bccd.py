"""BCCD for the detection benchmarks: the ImageNet backbone, the shared teacher, student runs.

BCCD (``../shared/data/bccd``: 205 train / 87 val images, 320x240, RBC / WBC / Platelets) is
read in place. The detectors' backbone is torchvision's ImageNet MobileNetV2, converted once
(``common.imagenet_mobilenet_v2``) for the teacher; the student (MobileNetV2 x0.5) trains from
scratch. The teacher (``configs/baselines/retinanet_mobilenetv2_
fpn128-gn_...``) and the student alone are trained once and shared by the benchmarks that compare
with them (``benchmarks/results/bccd_runs``).
"""
import argparse
import os.path as osp

from mmengine.config import Config

from benchmarks.lib.common import (REPO_ROOT, add_report_argument, imagenet_mobilenet_v2,
                                   run_config, teacher_run_name)

DATA_ROOT = osp.join(REPO_ROOT, '..', 'shared', 'data', 'bccd')
WORK_ROOT = osp.join(REPO_ROOT, 'work_dirs', 'benchmarks', 'bccd')
BASELINES = osp.join(REPO_ROOT, 'configs', 'baselines')
TEACHER_CONFIG = osp.join(BASELINES, 'retinanet_mobilenetv2_fpn128-gn_1xb8-24e_bccd-320x240.py')
STUDENT_CONFIG = osp.join(BASELINES,
                          'retinanet_mobilenetv2-w0.5_fpn64-slim_1xb8-24e_bccd-320x240.py')
SHARED_VARIANTS = ('student', )
METRIC = 'coco/bbox_mAP'


def add_arguments(parser: argparse.ArgumentParser, results: str) -> None:
    """The options every BCCD benchmark shares (same defaults, so runs are shared)."""
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=24, help='student epochs')
    # 48: the GN-head RetinaNet teacher's schedule (50.5 bbox mAP); a first, norm-free teacher
    # reached 15.6 in 24 epochs and 37.1 in 48 (results/bccd_runs/superseded/)
    parser.add_argument('--teacher-epochs', type=int, default=48)
    # the cell-crop classifier of cls2det. Crop classification from ImageNet weights is easy
    # (train loss 0.0003 by epoch 4 of a 48-epoch run), so the benchmark trains 8 of its config's
    # 24 epochs (cosine schedule scaled): 14 min (its result file) instead of about 43 (the ETA
    # in the log of a 24-epoch run, stopped) on this CPU, paid again by every
    # session that resumes the benchmark on a new machine (checkpoints are not committed).
    parser.add_argument('--cls-teacher-epochs', type=int, default=8)
    parser.add_argument('--data-root', default=DATA_ROOT)
    parser.add_argument('--work-dir', default=WORK_ROOT)
    parser.add_argument('--results', default=osp.join(REPO_ROOT, 'benchmarks', 'results',
                                                      results))
    parser.add_argument('--workers', type=int, default=1, help='data loading processes per run')
    parser.add_argument('--subset', type=int, default=0,
                        help='smoke tests: the first N train/val images (8N crops for a '
                        'classifier teacher); 0 = all')
    add_report_argument(parser)
    parser.add_argument('--teacher-only', action='store_true',
                        help='make the teacher\'s checkpoint (train or resume it) if a requested '
                        'distilled run is unfinished, and stop: lets the student runs start in '
                        'parallel afterwards (benchmarks/bccd_parallel.sh)')


def subset(cfg: Config, n_train: int, n_val: int) -> None:
    """Smoke tests: train and validate on the first images (crops) only."""
    cfg.train_dataloader.dataset.indices = n_train
    for loader in ('val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.indices = n_val


def run_name(name: str, args: argparse.Namespace) -> str:
    """A run's name, marked when it is a smoke test on a subset."""
    return f'{name}_subset{args.subset}' if args.subset else name


def configure(cfg: Config, seed: int, epochs: int, args: argparse.Namespace) -> Config:
    """Point a BCCD config at the data and the ImageNet weights; set seed and schedule (and
    the subset of a smoke test)."""
    cfg.randomness = dict(seed=seed)
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs + 1  # validated once, after training (run_config)
    cfg.train_cfg.val_begin = epochs + 1
    for sched in cfg.param_scheduler:
        if sched.type == 'MultiStepLR':  # the recipe's 16/22 of 24 epochs, scaled
            sched.end = epochs
            sched.milestones = [round(epochs * 2 / 3), round(epochs * 11 / 12)]
    # every 2 epochs (the config keeps the last 2): a CPU run stopped by the end of a session
    # loses at most 2 epochs when it resumes
    cfg.default_hooks.checkpoint.interval = 2
    data_root = osp.join(args.data_root, '')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
        cfg[loader].num_workers = args.workers
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = osp.join(data_root, 'annotations', 'instances_val.json')
    model = cfg.model.get('student', cfg.model)
    if model.backbone.get('init_cfg'):  # the ImageNet teacher; the x0.5 student has no weights
        model.backbone.init_cfg.checkpoint = imagenet_mobilenet_v2(
            osp.join(args.work_dir, 'pretrain', 'mobilenet_v2_imagenet_mmdet.pth'),
            layout='mmdet')
    if args.subset:
        subset(cfg, args.subset, args.subset)
    return cfg


def teacher_checkpoint(args: argparse.Namespace) -> tuple:
    """Train (or reuse) the shared teacher; return its checkpoint path and its result."""
    cfg = configure(Config.fromfile(TEACHER_CONFIG), 0, args.teacher_epochs, args)
    # Kept beside its result (committed): every later distilled run distils from this teacher.
    result = run_config(run_name(f'teacher-gn_{args.teacher_epochs}e', args), cfg, args.work_dir,
                        shared_runs_dir(args), reuse_needs=f'epoch_{args.teacher_epochs}.pth',
                        keep_weights=True)
    return result['weights'], _no_boxes_is_0(result)


def _no_boxes_is_0(result: dict) -> dict:
    """mmdet's CocoMetric returns no metrics when a detector predicts no box at all (an
    untrained one): its mAP is 0."""
    result['metrics'].setdefault(METRIC, 0.0)
    return result


def teacher_tag(teacher_ckpt: str) -> str:
    """The teacher's run name, part of a distilled run's name: a distilled run never resumes,
    or is reused, with another teacher's run than the one it started with."""
    return teacher_run_name(teacher_ckpt)


def shared_runs_dir(args: argparse.Namespace) -> str:
    return osp.join(osp.dirname(osp.abspath(args.results)), 'bccd_runs')


def train_student(variant: str, config: str, seed: int, args: argparse.Namespace,
                  teacher_ckpt: str, runs_dir: str) -> dict:
    """Train (or reuse) one student run of ``config`` and return its result."""
    cfg = configure(Config.fromfile(config), seed, args.epochs, args)
    name = f'{variant}_{args.epochs}e'
    if 'teacher' in cfg.model:  # a distiller
        cfg.model.teacher_ckpt = teacher_ckpt
        name += f'_{teacher_tag(teacher_ckpt)}'
    if variant in SHARED_VARIANTS:
        runs_dir = shared_runs_dir(args)
    return _no_boxes_is_0(run_config(run_name(f'{name}_seed{seed}', args), cfg, args.work_dir,
                                     runs_dir))


def header(args: argparse.Namespace):
    """The line above a BCCD table."""
    def line(teacher: dict) -> str:
        return (f'BCCD val bbox mAP x100 ({args.subset or 87} images); students: {args.epochs} '
                f'epochs, seeds {list(args.seeds)}; teacher {teacher["metrics"][METRIC] * 100:.2f} '
                f'({args.teacher_epochs} epochs)')
    return line
