"""What the teacher costs in a distillation step, and what each speed-up saves.

Part 1 (timing, random weights, the stock configs at small inputs): per toolbox pair
(segmentation PSPNet-R101 -> R18, detection RetinaNet-R101 -> R50, classification ResNet-34 ->
ResNet-18), the median time of: the student's training step alone; the distillation step and
the teacher's forward alone with the plain fp32 teacher and with each ``teacher_runtime``
speed-up; the step with the teacher-output cache while it fills (first epoch) and once it is
full (later epochs). Repetitions are interleaved (variant by variant, round by round), so
machine noise hits every variant alike. A speed-up is *safe* when the teacher's outputs stay
within 2% of their fp32 magnitude and keep at least 99% of their argmax (the deviation the
distiller logs).

Part 2 (accuracy, real data): logit KD on Fashion-MNIST (``lib/fashion_mnist.py`` settings, same
seeds) with the plain teacher, the bf16 teacher and the cached teacher, and the cache's control
(``kd-views``: the cache's replayable views, 4 per image, with the teacher run every step); their
test top-1 show whether a speed-up costs the student anything.

Prints both tables, writes ``benchmarks/results/teacher_cost.json`` and, last,
``teacher_speedup=X.XX metric_delta=+Y.YY``: the best safe speed-up of the teacher's forward
(without the cache) on the segmentation pair, and the top-1 of its Fashion-MNIST student minus
the plain teacher's.

    python -m benchmarks.teacher_cost [--pairs seg det cls] [--reps 5] [--skip-metric]
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import tempfile
from typing import Callable, Dict, List, Optional

import torch
from mmengine.config import Config

from benchmarks.lib.common import REPO_ROOT, markdown_table, seed_stats
from benchmarks.lib.fashion_mnist import (add_arguments, prepare_data, teacher_checkpoint,
                                          train_student)
from benchmarks.lib.timing import (WeightReset, build_distiller, interleaved_medians, median, sgd,
                                   timed)
from mmstructkd.datasets import KEY_FIELD
from mmstructkd.testing.fake_batch import fake_data

KD = osp.join(REPO_ROOT, 'configs', 'kd')
#: name -> (config, batch size, input size (H, W)); small inputs: minutes on 2 CPU cores.
PAIRS = {
    'seg': (osp.join(KD, 'kd_pspnet-r101-d8_pspnet-r18-d8_4xb2-80k_cityscapes-512x1024.py'), 2,
            (256, 512)),
    'det': (osp.join(KD, 'fitnets_retinanet-r101_retinanet-r50_fpn_1x_coco.py'), 2, (320, 320)),
    'cls': (osp.join(KD, 'kd_resnet34_resnet18_8xb32_in1k.py'), 16, (224, 224)),
}
#: speed-up name -> teacher_runtime
RUNTIMES = {
    'fp32': {},
    'channels_last': dict(channels_last=True),
    'bf16': dict(precision='bf16'),
    'bf16+channels_last': dict(precision='bf16', channels_last=True),
    'flush_denormal': dict(flush_denormal=True),
}
#: Fashion-MNIST KD variants: the plain teacher (shared runs) and the speed-ups.
METRIC_VARIANTS = {
    'kd': osp.join(KD, 'kd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py'),
    'kd-teacher-bf16': osp.join(KD, 'kd-teacher-bf16_resnet18-w32_resnet18-w8_1xb128-15e_'
                                    'fashion-mnist.py'),
    'kd-teacher-cache': osp.join(KD, 'kd-teacher-cache_resnet18-w32_resnet18-w8_1xb128-15e_'
                                     'fashion-mnist.py'),
}
# The control of the cache: the same replayable views (4 per image) with the teacher run every
# step, which tells the cache's effect from that of fewer distinct augmentations.
METRIC_VARIANTS['kd-views'] = METRIC_VARIANTS['kd-teacher-cache']
VARIANT_OPTIONS = {'kd-views': dict(model=dict(teacher_cache=None))}
# And the cache's storage: fp32 stores the teacher's logits exactly, which tells the effect of
# fp16 storage from that of reading stored outputs at all.
METRIC_VARIANTS['kd-teacher-cache-fp32'] = METRIC_VARIANTS['kd-teacher-cache']
CACHE_DTYPES = {'kd-teacher-cache': 'fp16', 'kd-teacher-cache-fp32': 'fp32'}
SAFE_REL_DIFF = 0.02
SAFE_ARGMAX = 0.99


def keyed(data: dict, start: int) -> dict:
    """``data`` with cache keys ``start, start + 1, ...`` (what ReplayableViews would add)."""
    for i, sample in enumerate(data['data_samples']):
        sample.set_metainfo({KEY_FIELD: ('bench', start + i, 0)})
    return data


def time_pair(name: str, reps: int, cache_root: str) -> dict:
    """Median seconds of every variant of one pair (see the module docstring)."""
    config, batch, size = PAIRS[name]
    cfg = Config.fromfile(config)
    channels = 3
    data = fake_data(cfg.default_scope, batch, size, channels, num_classes=4)
    models = {rt: build_distiller(cfg, size, teacher_runtime=spec)
              for rt, spec in RUNTIMES.items()}
    models['cache'] = build_distiller(cfg, size, teacher_cache=dict(
        dir=osp.join(cache_root, name), dtype='fp16', verify=False))
    optims = {k: sgd(m) for k, m in models.items()}
    resets = {k: WeightReset(m) for k, m in models.items()}
    student = models['fp32'].student
    student_optim = sgd(student)
    prep = models['fp32'].data_preprocessor(data, True)
    next_key = [0]

    def step(model, optim_wrapper, reset: WeightReset, key_start=None) -> float:
        # A fresh copy per step and the first weights, made before the clock starts: data
        # preprocessors write into the data samples.
        reset()
        batch_copy = copy.deepcopy(data)
        if key_start is not None:
            keyed(batch_copy, key_start)
        return timed(lambda: model.train_step(batch_copy, optim_wrapper))

    def cache_step(fill: bool) -> float:
        # Filling: new keys every time (all misses); reading: the same keys (all hits).
        if fill:
            next_key[0] += batch
        return step(models['cache'], optims['cache'], resets['cache'],
                    next_key[0] if fill else 0)

    def teacher_forward(model) -> float:
        with torch.no_grad():
            return timed(lambda: model.teacher_provider.compute(prep['inputs'],
                                                                prep['data_samples']))

    tasks: Dict[str, Callable[[], float]] = {
        'student step': lambda: step(student, student_optim, resets['fp32'])}
    for rt, model in models.items():
        if rt != 'cache':
            tasks[f'distill step [{rt}]'] = \
                lambda m=model, o=optims[rt], r=resets[rt]: step(m, o, r)
            tasks[f'teacher forward [{rt}]'] = lambda m=model: teacher_forward(m)
    tasks['distill step [cache, filling]'] = lambda: cache_step(True)
    tasks['distill step [cache, full]'] = lambda: cache_step(False)
    # The warm-up round also runs the bf16 deviation check and fills the cache's first entries.
    times = interleaved_medians(tasks, reps)
    medians = {k: median(v) for k, v in times.items()}
    deviation = {rt: m.teacher_deviation for rt, m in models.items() if rt != 'cache'}
    return dict(config=osp.relpath(config, REPO_ROOT), batch=batch, size=list(size),
                reps=reps, median_s=medians, times_s=times, deviation=deviation)


def is_safe(deviation: Optional[dict]) -> bool:
    """Within SAFE_REL_DIFF of fp32 and SAFE_ARGMAX argmax agreement on every recorder."""
    if not deviation:  # no deviation measured: the runtime does not change outputs
        return True
    for dev in deviation.values():
        if dev['rel_diff'] is not None and dev['rel_diff'] > SAFE_REL_DIFF:
            return False
        if dev.get('argmax_agreement') is not None and dev['argmax_agreement'] < SAFE_ARGMAX:
            return False
    return True


def pair_rows(name: str, result: dict) -> List[list]:
    med = result['median_s']
    student = med['student step']
    plain_teacher = med['teacher forward [fp32]']
    rows = [[name, 'student alone', f'{student:.3f}', '1.00', '', '']]
    for rt in RUNTIMES:
        step = med[f'distill step [{rt}]']
        teacher = med[f'teacher forward [{rt}]']
        rows.append([name, f'teacher {rt}', f'{step:.3f}', f'{step / student:.2f}',
                     f'{teacher:.3f} ({plain_teacher / teacher:.2f}x)',
                     'yes' if is_safe(result['deviation'].get(rt)) else 'no'])
    for phase in ('filling', 'full'):
        step = med[f'distill step [cache, {phase}]']
        rows.append([name, f'cache, {phase}', f'{step:.3f}', f'{step / student:.2f}', '',
                     'fp16 store'])
    return rows


def best_safe_speedup(result: dict) -> tuple:
    med = result['median_s']
    plain = med['teacher forward [fp32]']
    best = max((plain / med[f'teacher forward [{rt}]'], rt) for rt in RUNTIMES
               if rt != 'fp32' and is_safe(result['deviation'].get(rt)))
    return best


def metric_part(args: argparse.Namespace) -> dict:
    """Fashion-MNIST KD with the plain, bf16 and cached teacher (same seeds)."""
    prepare_data(args.data_root)
    ckpt, teacher = teacher_checkpoint(args)
    runs_dir = osp.join(osp.dirname(osp.abspath(args.results)), 'teacher_cost_runs')
    values: Dict[str, Dict[int, float]] = {}
    times: Dict[str, Dict[int, float]] = {}
    for variant, config in METRIC_VARIANTS.items():
        options = VARIANT_OPTIONS.get(variant)
        if variant in CACHE_DTYPES:
            # One cache per teacher and storage type, shared by the seeds (the teacher's
            # outputs do not depend on the student's seed): the first run fills it, the later
            # ones read it.
            dtype = CACHE_DTYPES[variant]
            folder = 'teacher_cache_fashion-mnist' + ('' if dtype == 'fp16' else f'-{dtype}')
            options = dict(model=dict(teacher_cache=dict(
                dir=osp.join(osp.dirname(ckpt), folder), dtype=dtype)))
        for seed in args.seeds:
            result = train_student(variant, config, seed, args, ckpt, runs_dir,
                                   options=options)
            values.setdefault(variant, {})[seed] = result['metrics']['accuracy/top1']
            times.setdefault(variant, {})[seed] = result.get('train_time_s')
    means, spread = seed_stats(values)
    return dict(top1=values, mean=means, spread=spread, train_time_s=times,
                teacher_top1=teacher['metrics']['accuracy/top1'])


def main() -> None:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.teacher_cost',
                                     description=__doc__.split('\n')[0])
    add_arguments(parser, 'teacher_cost.json')
    parser.add_argument('--pairs', nargs='+', default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument('--reps', type=int, default=5)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--retime', nargs='*', default=None, choices=list(PAIRS),
                        help='measure the timing of these pairs (all if none given) again '
                        'even where a result is kept')
    parser.add_argument('--skip-metric', action='store_true',
                        help='timing only (no Fashion-MNIST training)')
    parser.add_argument('--metric-threads', type=int, default=None,
                        help='threads of the Fashion-MNIST training (default: --threads); '
                        'the accuracy part, unlike the timing, may share the machine')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    summary = dict(machine=dict(cpu=platform.processor() or platform.machine(),
                                threads=args.threads, torch=torch.__version__,
                                device='cpu'),
                   pairs={})
    runs_dir = osp.join(osp.dirname(osp.abspath(args.results)), 'teacher_cost_runs')
    os.makedirs(runs_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as cache_root:
        for name in args.pairs:
            # Each pair's timing is kept (a later invocation, e.g. after an interrupted
            # Fashion-MNIST part, reuses it); --retime measures again.
            path = osp.join(runs_dir, f'timing_{name}_{args.threads}threads_{args.reps}reps.json')
            retime = args.retime is not None and (not args.retime or name in args.retime)
            if osp.isfile(path) and not retime:
                with open(path) as f:
                    summary['pairs'][name] = json.load(f)
                continue
            summary['pairs'][name] = time_pair(name, args.reps, cache_root)
            with open(path + '.part', 'w') as f:
                json.dump(summary['pairs'][name], f, indent=1)
            os.replace(path + '.part', path)
            print(f'[teacher_cost] {name} done', flush=True)
    rows = [row for name in args.pairs for row in pair_rows(name, summary['pairs'][name])]
    print(f'\nPer-step time, median of {args.reps} (CPU, {args.threads} threads, torch '
          f'{torch.__version__}, random weights)\n')
    print(markdown_table(['pair', 'variant', 'step s', 'x student', 'teacher forward s',
                          'safe'], rows))
    first = args.pairs[0]
    speedup, which = best_safe_speedup(summary['pairs'][first])
    summary.update(best_safe=dict(pair=first, runtime=which, teacher_speedup=speedup))
    delta = float('nan')
    if not args.skip_metric:
        torch.set_num_threads(args.metric_threads or args.threads)
        metric = metric_part(args)
        summary['fashion_mnist'] = metric
        rows = [[v, f'{metric["mean"][v]:.2f}',
                 ' / '.join(f'{metric["top1"][v][s]:.2f}' for s in args.seeds)]
                for v in METRIC_VARIANTS]
        print(f'\nFashion-MNIST test top-1 (KD, seeds {list(args.seeds)}; teacher '
              f'{metric["teacher_top1"]:.2f}; seed spread {metric["spread"]:.2f})\n')
        print(markdown_table(['teacher', 'top-1 mean', 'per seed'], rows))
        variant = 'kd-teacher-bf16' if 'bf16' in which else 'kd-teacher-cache'
        delta = metric['mean'][variant] - metric['mean']['kd']
        summary['metric_delta'] = dict(variant=variant, top1=delta)
    summary['teacher_speedup'] = speedup
    os.makedirs(osp.dirname(osp.abspath(args.results)), exist_ok=True)
    with open(args.results + '.part', 'w') as f:
        json.dump(summary, f, indent=1)
    os.replace(args.results + '.part', args.results)
    print(f'teacher_speedup={speedup:.2f} metric_delta={delta:+.2f}')


if __name__ == '__main__':
    main()
