"""`make demo`: distil a teacher segmenter into a 16x smaller student, end to end, on CPU.

The data is GENERATED (mmstructkd.testing.synthetic_shapes: randomly coloured circles,
squares and triangles on textured backgrounds, 64x64): no download, nothing real. Three runs
with the same schedule and seed, each a normal mmengine Runner on a config in configs/demo/:

1. the teacher (FCN, ResNetV1c-18 at width 32),
2. the student alone (the same at width 8),
3. the student distilled from the teacher (pixel-wise logit KD + a feature hint).

It prints a table of val mIoU / aAcc, parameters and training time, and writes it to
``<work-dir>/results.json``. A finished run is not repeated (its final checkpoint is reused),
so an interrupted demo continues where it stopped.
"""
import argparse
import json
import os
import os.path as osp
import time

import torch
from mmengine.config import Config

# mmstructkd is installed (editable) in the environment (tools/setup_env.sh, `make demo`).
from mmstructkd.engine import SafeRunner as Runner
from mmstructkd.testing import make_seg_dataset

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'demo')
RUNS = [
    ('teacher (w32)', 'teacher', 'fcn_r18-w32_2k_shapes-64x64.py'),
    ('student alone (w8)', 'student', 'fcn_r18-w8_2k_shapes-64x64.py'),
    ('student distilled (w8)', 'distilled', 'kd_fcn-r18-w32_fcn-r18-w8_2k_shapes-64x64.py'),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default=osp.join(REPO_ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--data-root', default=osp.join(REPO_ROOT, 'data', 'demo_shapes'))
    parser.add_argument('--iters', type=int, default=None,
                        help='training iterations per run (default: the configs\' 2000)')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument(
        '--results', default=osp.join(REPO_ROOT, 'benchmarks', 'results', 'demo_shapes.json'),
        help='where the table is written as JSON (the README quotes this file)')
    return parser.parse_args()


def ensure_data(root: str, num_train: int, num_val: int) -> None:
    stamp = osp.join(root, f'.generated_{num_train}_{num_val}')
    if osp.isfile(stamp):
        return
    print(f'Generating the synthetic shapes dataset in {root} (GENERATED, not real data)')
    make_seg_dataset(root, dict(train=num_train, val=num_val), size=64, seed=0)
    open(stamp, 'w').close()


def run_one(name: str, config: str, args, teacher_ckpt: str = None) -> dict:
    cfg = Config.fromfile(osp.join(CONFIG_DIR, config))
    work_dir = osp.join(args.work_dir, name)
    cfg.work_dir = work_dir
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = args.data_root
    iters = args.iters or cfg.train_cfg.max_iters
    cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = iters
    cfg.param_scheduler[0].end = iters
    cfg.default_hooks.checkpoint.interval = max(iters // 4, 1)
    cfg.default_hooks.logger.interval = max(iters // 10, 1)
    if teacher_ckpt is not None:
        cfg.model.teacher_ckpt = teacher_ckpt
    final_ckpt = osp.join(work_dir, f'iter_{iters}.pth')
    result_file = osp.join(work_dir, 'result.json')
    if osp.isfile(final_ckpt) and osp.isfile(result_file):
        with open(result_file) as f:
            result = json.load(f)
        print(f'[{name}] already trained: {result}')
        return dict(result, checkpoint=final_ckpt)

    # An interrupted run continues from its latest checkpoint instead of starting over.
    cfg.resume = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    train_time = time.perf_counter() - start
    metrics = runner.test()
    model = runner.model.student if hasattr(runner.model, 'student') else runner.model
    result = dict(mIoU=float(metrics['mIoU']), aAcc=float(metrics['aAcc']),
                  params=sum(p.numel() for p in model.parameters()),
                  train_time_s=round(train_time, 1), iters=iters)
    with open(result_file, 'w') as f:
        json.dump(result, f)
    return dict(result, checkpoint=final_ckpt)


def main():
    args = parse_args()
    torch.set_num_threads(max(os.cpu_count() or 1, 1))
    ensure_data(args.data_root, args.num_train, args.num_val)
    results = {}
    for title, name, config in RUNS:
        ckpt = results['teacher']['checkpoint'] if name == 'distilled' else None
        results[name] = run_one(name, config, args, teacher_ckpt=ckpt)
        results[name]['title'] = title

    lines = [
        'Demo: distillation on GENERATED shapes data (64x64, 4 classes), '
        f'{results["teacher"]["iters"]} iterations per run, CPU',
        f'| {"model":<24} | {"params":>8} | {"mIoU":>6} | {"aAcc":>6} | {"train time":>10} |',
        f'|{"-" * 26}|{"-" * 9}:|{"-" * 7}:|{"-" * 7}:|{"-" * 11}:|',
    ]
    for name in ('teacher', 'student', 'distilled'):
        r = results[name]
        lines.append(f'| {r["title"]:<24} | {r["params"] / 1e6:>7.3f}M | {r["mIoU"]:>6.2f} | '
                     f'{r["aAcc"]:>6.2f} | {r["train_time_s"]:>9.0f}s |')
    gain = results['distilled']['mIoU'] - results['student']['mIoU']
    lines.append(f'distillation gain over the student alone: {gain:+.2f} mIoU')
    print('\n'.join(lines))
    summary = dict(
        data='GENERATED shapes (mmstructkd.testing.synthetic_shapes), 64x64, '
        f'{args.num_train} train / {args.num_val} val, seed 0',
        machine=dict(cpus=os.cpu_count(), torch=torch.__version__, threads=torch.get_num_threads()),
        runs={name: {k: v for k, v in r.items() if k != 'checkpoint'}
              for name, r in results.items()},
        miou_gain=round(gain, 2))
    for path in (osp.join(args.work_dir, 'results.json'), args.results):
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(summary, f, indent=2)
    print(f'Results written to {args.results}')


if __name__ == '__main__':
    main()
