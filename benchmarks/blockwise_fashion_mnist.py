"""Block-wise KD compression on Fashion-MNIST: an ImageNet-initialised MobileNetV2 teacher
compressed under two FLOPs budgets.

    python benchmarks/blockwise_fashion_mnist.py [--budgets 0.5 0.3] [--epochs 3] ...

Per budget (a fraction of the teacher's FLOPs at 32x32): the compressed student fine-tuned
with logit KD from its block-wise trained blocks ("blockwise_kd"), the same KD fine-tune from
the blocks' initial weights, i.e. without block-wise KD ("kd_only"), and the same architecture
trained alone from random weights ("scratch"). Every run is a normal mmengine Runner on an
emitted config (``benchmarks/common.run_config``: resumable, one JSON per run); the block-wise
search is cached in the work dir. The last line is the tighter budget's student (block-wise +
KD) against the teacher: ``flops_ratio=X.XX params_ratio=Y.YY top1_delta=+Z.ZZ`` (ratios are
student / teacher).
"""
import argparse
import json
import os
import os.path as osp

import torch
from mmengine.config import Config

# isort: split
from common import REPO_ROOT, imagenet_mobilenet_v2, markdown_table, run_config
from fashion_mnist import DATA_ROOT, configure, prepare_data

from mmstructkd.compression import BlockwiseCompressor

CONFIG = osp.join(REPO_ROOT, 'configs', 'blockwise',
                  'blockwise_mobilenet-v2_fashion-mnist-32x32.py')
WORK_ROOT = osp.join(REPO_ROOT, 'work_dirs', 'benchmarks', 'blockwise_fashion_mnist')
METRIC = 'accuracy/top1'
VARIANTS = ('blockwise_kd', 'kd_only', 'scratch')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--budgets', type=float, nargs='+', default=[0.5, 0.3],
                        help='FLOPs budgets, fractions of the teacher (the smallest is the '
                        'headline)')
    parser.add_argument('--seed', type=int, default=0)
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
    parser.add_argument('--data-root', default=DATA_ROOT)
    parser.add_argument('--work-dir', default=WORK_ROOT)
    parser.add_argument('--results', default=osp.join(REPO_ROOT, 'benchmarks', 'results',
                                                      'blockwise_fashion_mnist.json'))
    return parser.parse_args()


def load(config: str, args, epochs: int, subset: int) -> Config:
    cfg = configure(Config.fromfile(config), args.seed, epochs, args.data_root,
                    subset=subset or None)
    if args.val_subset:
        for loader in ('val_dataloader', 'test_dataloader'):
            cfg[loader].dataset.indices = args.val_subset
    return cfg


def main():
    args = parse_args()
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', os.cpu_count() or 1)))
    prepare_data(args.data_root)
    runs_dir = osp.splitext(args.results)[0] + '_runs'
    tag = f'v{args.val_subset or "all"}'

    # 1. The teacher: torchvision's ImageNet MobileNetV2, fine-tuned on Fashion-MNIST.
    imagenet = imagenet_mobilenet_v2(osp.join(args.work_dir, 'mobilenet_v2_imagenet.pth'),
                                     layout='mmpretrain')
    cfg = load(CONFIG, args, args.teacher_epochs, args.teacher_subset)
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=imagenet,
                                       prefix='backbone.')
    name = f'teacher_{args.teacher_epochs}e-{args.teacher_subset or "all"}_{tag}'
    teacher = run_config(name, cfg, args.work_dir, runs_dir,
                         reuse_needs=f'epoch_{args.teacher_epochs}.pth')
    teacher_ckpt = osp.join(teacher['work_dir'], f'epoch_{args.teacher_epochs}.pth')
    print(f'teacher: {teacher["metrics"][METRIC]:.2f} top-1')

    # 2. Block-wise training of every candidate (once; shared by the budgets).
    cfg = load(CONFIG, args, args.epochs, args.subset)
    cfg.compression.block_training.iters = args.block_iters
    compressor = BlockwiseCompressor(cfg, teacher_ckpt, config_path=osp.relpath(CONFIG,
                                                                                REPO_ROOT))
    compressor.search(cache=osp.join(args.work_dir, f'{name}_search_{args.block_iters}it.pth'))

    # 3. Per budget: choose, emit, fine-tune (three variants).
    budgets = {}
    for budget in sorted(args.budgets, reverse=True):
        out = osp.join(args.work_dir, f'flops{budget:g}_{name}')
        emitted = compressor.emit(compressor.select('flops', budget), out)
        report = emitted['report']
        configs = dict(blockwise_kd=load(emitted['kd'], args, args.epochs, args.subset),
                       kd_only=load(emitted['kd'], args, args.epochs, args.subset),
                       scratch=load(emitted['student'], args, args.epochs, args.subset))
        configs['kd_only'].model.student.init_cfg.checkpoint = emitted['student_init']
        for c in configs.values():
            if 'teacher_ckpt' in c.model:
                c.model.teacher_ckpt = teacher_ckpt
        top1 = {}
        for variant, c in configs.items():
            run = run_config(f'flops{budget:g}_{variant}_{args.epochs}e-{args.subset or "all"}_'
                             f'b{args.block_iters}_{name}_seed{args.seed}', c, args.work_dir,
                             runs_dir)
            top1[variant] = run['metrics'][METRIC]
            print(f'budget {budget:g} {variant}: {top1[variant]:.2f} top-1')
        budgets[f'{budget:g}'] = dict(
            flops=report['student']['flops'], params=report['student']['params'],
            flops_ratio=round(report['flops_ratio'], 4),
            params_ratio=round(report['params_ratio'], 4), top1=top1,
            top1_delta=round(top1['blockwise_kd'] - teacher['metrics'][METRIC], 2),
            units=report['units'])

    t = compressor.teacher_complexity['']
    rows = [['teacher', f'{t["flops"] / 1e6:.2f}', f'{t["params"] / 1e6:.3f}',
             teacher['metrics'][METRIC]]]
    for budget, b in budgets.items():
        for variant in VARIANTS:
            rows.append([f'{variant} (FLOPs <= {budget} x teacher)', f'{b["flops"] / 1e6:.2f}',
                         f'{b["params"] / 1e6:.3f}', b['top1'][variant]])
    print(f'Fashion-MNIST test top-1 ({args.val_subset or 10000} images, 32x32); teacher '
          f'{args.teacher_epochs} epochs on {args.teacher_subset or 60000} images; students '
          f'{args.epochs} epochs on {args.subset or 60000}; block-wise {args.block_iters} '
          f'iterations; seed {args.seed}')
    print(markdown_table(['model', 'MFLOPs', 'M params', 'top-1'], rows))

    tight = budgets[f'{min(args.budgets):g}']
    summary = dict(
        flops_ratio=tight['flops_ratio'], params_ratio=tight['params_ratio'],
        top1_delta=tight['top1_delta'], headline_budget=min(args.budgets), metric=METRIC,
        teacher=dict(flops=t['flops'], params=t['params'], top1=teacher['metrics'][METRIC]),
        budgets=budgets,
        settings=dict(seed=args.seed, teacher_epochs=args.teacher_epochs,
                      teacher_subset=args.teacher_subset or None, epochs=args.epochs,
                      subset=args.subset or None, block_iters=args.block_iters,
                      val_subset=args.val_subset or None, input_size=[32, 32]),
        machine=dict(cpus=os.cpu_count(), torch=torch.__version__))
    os.makedirs(osp.dirname(osp.abspath(args.results)), exist_ok=True)
    with open(args.results, 'w') as f:
        json.dump(summary, f, indent=2)
    print(f'flops_ratio={tight["flops_ratio"]:.2f} params_ratio={tight["params_ratio"]:.2f} '
          f'top1_delta={tight["top1_delta"]:+.2f}')


if __name__ == '__main__':
    main()
