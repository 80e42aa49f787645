"""Distillation overhead: what a distillation step costs beyond the unavoidable.

The unavoidable cost of a distillation step is one student training step plus one teacher
forward without gradients (eval mode). For every distillation method and one pair per toolbox
(the stock configs, random weights, small inputs), this measures in one run, interleaved, the
median of ``--reps`` repetitions of:

* the student's training step alone (its own data preprocessor, plain SGD),
* the teacher's full forward alone (``mode='tensor'``, eval, ``no_grad``),
* the distillation step (``train_step``: teacher, student, recorders, connectors, losses; the
  holistic method's discriminator step included),

* the method's own modules alone: connectors, distillation losses and (holistic) the critic's
  step, forward and backward, on the tensors one step recorded (the student's as leaves),

and, unless ``--no-memory``, the peak memory of the first three (CPU: peak RSS of a fresh
process that builds the models, student and teacher whatever the task, and runs the task twice;
CUDA: ``max_memory_allocated``). The table gives ``ratio = distill / (student + teacher
forward)`` and ``glue = (distill - student - teacher forward - method modules) / (student +
teacher forward)``: what the distiller's bookkeeping (recorders, hooks, mappings) adds beyond the
work every method must do (``glue_max=X.X%`` over all methods). The last line is the worst ratio
of the methods without trainable or teacher-running work of their own,
``overhead_ratio=X.XX``. Three methods have such work, a network that trains or runs beside the
student, and are reported on their own lines before it: holistic StructKD (the discriminator's
step, ``holistic_ratio``), ReviewKD (its ABF review path is a trained network; at the paper's
ImageNet width of 512 it has about the student ResNet-18's FLOPs, ``reviewkd_ratio``) and
classifier-to-detector KD (the teacher runs on every ground-truth crop and, with gradients, on
every positive's predicted-box crop, ``cls2det_ratio``).

    python -m benchmarks.overhead [--reps 5] [--methods ...] [--no-memory] [--device cuda]
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import subprocess
import sys
from typing import Callable, Dict

import torch
from mmengine.config import Config

from benchmarks.lib.common import REPO_ROOT, markdown_table
from benchmarks.lib.timing import (WeightReset, build_distiller, distiller_optim,
                                   interleaved_medians, median, sgd, timed)
from mmstructkd.models.distillers import StepRecords
from mmstructkd.testing.fake_batch import fake_data

C = osp.join(REPO_ROOT, 'configs')
SEG = (2, (256, 512))
DET = (2, (320, 320))
CLS = (16, (224, 224))
#: method -> (config, (batch, input size)); one pair per toolbox per method.
METHODS = {
    'seg: logit KD (PSPNet R101->R18)':
        (f'{C}/kd/kd_pspnet-r101-d8_pspnet-r18-d8_4xb2-80k_cityscapes-512x1024.py', SEG),
    'seg: StructKD pixel+pair':
        (f'{C}/structkd/structkd_pixel-pair_pspnet-r101-d8_pspnet-r18-d8_4xb2-80k_'
         'cityscapes-512x1024.py', SEG),
    'seg: StructKD pixel+pair+holistic':
        (f'{C}/structkd/structkd_pixel-pair-holistic_pspnet-r101-d8_pspnet-r18-d8_4xb2-80k_'
         'cityscapes-512x1024.py', SEG),
    'det: FitNets (RetinaNet R101->R50)':
        (f'{C}/kd/fitnets_retinanet-r101_retinanet-r50_fpn_1x_coco.py', DET),
    'det: ReviewKD (RetinaNet R101->R50)':
        (f'{C}/reviewkd/reviewkd_retinanet-r101_retinanet-r50_fpn_1x_coco.py', DET),
    'det: classifier-to-detector (RetinaNet R50)':
        (f'{C}/cls2det/cls2det_resnet50-crops_retinanet-r50_fpn_1x_coco.py', DET),
    'cls: logit KD (ResNet-34->18)': (f'{C}/kd/kd_resnet34_resnet18_8xb32_in1k.py', CLS),
    'cls: ReviewKD (ResNet-34->18)':
        (f'{C}/reviewkd/reviewkd_resnet34_resnet18_8xb32_in1k.py', CLS),
    'cls: STKD (ResNet-34->18)': (f'{C}/stkd/stkd_resnet34_resnet18_8xb32_in1k.py', CLS),
}
TASKS = ('student step', 'teacher forward', 'distill step')
#: Timed besides TASKS, not probed for memory: the method's own modules alone.
OWN = 'method modules'
#: Summary key -> the methods (name substring) whose own work goes beyond one teacher forward.
OWN_WORK = {'holistic_ratio': 'holistic', 'cls2det_ratio': 'classifier-to-detector',
            'reviewkd_ratio': 'ReviewKD'}


def make_tasks(method: str, device: str) -> Dict[str, Callable[[], float]]:
    """The three timed tasks of one method, each returning its duration in seconds."""
    config, (batch, size) = METHODS[method]
    cfg = Config.fromfile(config)
    model = build_distiller(cfg, size).to(device)
    num_classes = 4
    data = fake_data(cfg.default_scope, batch, size, 3, num_classes=num_classes)
    student_optim = sgd(model.student)
    optim = distiller_optim(model, cfg)
    teacher_batch = model.data_preprocessor(data, False)

    def teacher_forward() -> None:
        with torch.no_grad():
            inputs = model.teacher_input_adapter(teacher_batch['inputs'])
            model.teacher(inputs, teacher_batch['data_samples'], mode='tensor')

    def method_modules() -> float:
        # Stages + connectors + distillation losses (+ the critic's step) forward and backward
        # on the tensors one step recorded, the student's detached into leaves: what the method
        # itself computes, without the student, the teacher or the distiller's bookkeeping.
        try:
            def run() -> None:
                records = StepRecords(teacher=recorded['teacher'],
                                      student=_leaves(recorded['student']), stages={})
                fetched: dict = {}
                inputs, samples = recorded['inputs'], recorded['data_samples']
                model._run_stages(inputs, samples, records, fetched)
                losses = model._distill_losses(inputs, records, fetched, set())
                total = sum(v.sum() for v in losses.values() if v.requires_grad)
                critic = records.stages.get('critic')
                if critic is not None:  # the adversarial distiller's critic step(s)
                    for _ in range(model.d_steps):
                        d_losses = model(critic, mode='discriminator')
                        total = total + sum(v for k, v in d_losses.items() if 'loss' in k)
                total.backward()
            return timed(run)
        finally:
            model.zero_grad(set_to_none=True)

    recorded = record_step(model, data)
    reset = WeightReset(model)

    def step(module, optim_wrapper) -> float:
        # A fresh copy per step and the first weights, made before the clock starts: data
        # preprocessors write into the data samples (mmpretrain's sets gt_score; STKD's mixup
        # refuses mixed labels).
        reset()
        batch_copy = copy.deepcopy(data)
        return timed(lambda: module.train_step(batch_copy, optim_wrapper))

    return {
        'student step': lambda: step(model.student, student_optim),
        'teacher forward': lambda: timed(teacher_forward),
        'distill step': lambda: step(model, optim),
        OWN: method_modules,
    }


def record_step(model, data: dict) -> dict:
    """What one distillation step's recorders hold (student with gradients, teacher without),
    and the preprocessed batch it ran on."""
    batch = model.data_preprocessor(copy.deepcopy(data), True)
    inputs, samples = batch['inputs'], batch['data_samples']
    teacher = model.teacher_provider.compute(inputs, samples)
    try:
        with model.student_recorders.recording():
            model.student(inputs, samples, mode='loss')  # some recorders watch the loss methods
        student = model.student_recorders.buffers()
    finally:
        model.student_recorders.reset()
    return dict(student=student, teacher=teacher, inputs=inputs, data_samples=samples)


def _leaves(buffers: dict) -> dict:
    """Recorded student tensors as fresh leaves that require grad (backward stops there)."""
    def leaf(x):
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            return x.detach().requires_grad_()
        if isinstance(x, dict):
            return {k: leaf(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(leaf(i) for i in x)
        return x
    return {name: [leaf(item) for item in items] for name, items in buffers.items()}


def peak_memory_mb(method: str, task: str, device: str) -> float:
    """Peak memory of ``task``: on CUDA in this process, on CPU in a fresh one (peak RSS)."""
    if device == 'cuda':
        tasks = make_tasks(method, device)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        tasks[task]()
        tasks[task]()
        return torch.cuda.max_memory_allocated() / 2**20
    out = subprocess.run([sys.executable, '-m', 'benchmarks.overhead', '--child', method, task],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    if out.returncode != 0:
        raise RuntimeError(f'memory probe of {method} / {task} failed:\n{out.stderr[-3000:]}')
    return float(out.stdout.strip().splitlines()[-1])


def child(method: str, task: str) -> None:
    """Entry point of the CPU memory probe: run ``task`` twice, print peak RSS in MiB."""
    run = make_tasks(method, 'cpu')[task]
    run()
    run()
    # VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across fork + execve, so a child
    # would report its parent's peak whenever that is higher.
    with open('/proc/self/status') as f:
        peak_kib = next(int(line.split()[1]) for line in f if line.startswith('VmHWM:'))
    print(peak_kib / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.overhead',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--reps', type=int, default=5)
    parser.add_argument('--methods', nargs='+', default=None,
                        help='substrings of the method names to run (default: all)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--no-memory', action='store_true')
    parser.add_argument('--results', default=osp.join(REPO_ROOT, 'benchmarks', 'results',
                                                      'overhead.json'))
    parser.add_argument('--child', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    methods = [m for m in METHODS if osp.isfile(METHODS[m][0])
               and (args.methods is None or any(s in m for s in args.methods))]
    rows, results = [], {}
    for method in methods:
        tasks = make_tasks(method, args.device)
        times = interleaved_medians(tasks, args.reps)
        med = {k: median(v) for k, v in times.items()}
        unavoidable = med['student step'] + med['teacher forward']
        ratio = med['distill step'] / unavoidable
        # What the distiller adds beyond student, teacher and the method's own modules.
        glue = (med['distill step'] - unavoidable - med[OWN]) / unavoidable
        memory = {} if args.no_memory else {
            task: peak_memory_mb(method, task, args.device) for task in TASKS}
        results[method] = dict(config=osp.relpath(METHODS[method][0], REPO_ROOT),
                               batch=METHODS[method][1][0], size=list(METHODS[method][1][1]),
                               median_s=med, times_s=times, ratio=ratio, glue=glue,
                               peak_memory_mb=memory)
        rows.append([method] + [f'{med[t]:.3f}' for t in TASKS + (OWN, )] +
                    [f'{ratio:.2f}', f'{glue:+.1%}'] +
                    [f'{memory[t]:.0f}' if memory else '' for t in TASKS])
        print(f'[overhead] {method}: ratio {ratio:.2f}', flush=True)
        del tasks
    print(f'\nDistillation overhead, median of {args.reps} interleaved repetitions '
          f'({args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}, '
          'random weights)\n')
    print(markdown_table(['method', 'student step s', 'teacher fwd s', 'distill step s',
                          'method modules s', 'ratio', 'glue', 'student MiB', 'teacher MiB',
                          'distill MiB'], rows))
    own_work = {key: {m: r['ratio'] for m, r in results.items() if pattern in m}
                for key, pattern in OWN_WORK.items()}
    others = {m: r['ratio'] for m, r in results.items()
              if not any(p in m for p in OWN_WORK.values())}
    summary = dict(machine=dict(cpu=platform.processor() or platform.machine(),
                                device=args.device, threads=torch.get_num_threads(),
                                torch=torch.__version__),
                   reps=args.reps, methods=results,
                   overhead_ratio=max(others.values()) if others else None,
                   glue_max=max(r['glue'] for r in results.values()) if results else None,
                   **{key: max(r.values()) if r else None for key, r in own_work.items()})
    os.makedirs(osp.dirname(osp.abspath(args.results)), exist_ok=True)
    with open(args.results + '.part', 'w') as f:
        json.dump(summary, f, indent=1)
    os.replace(args.results + '.part', args.results)
    if results:
        print(f'glue_max={summary["glue_max"]:+.1%}')
    for key, ratios in own_work.items():
        if ratios:
            print(f'{key}={summary[key]:.2f}')
    if others:
        print(f'overhead_ratio={summary["overhead_ratio"]:.2f}')


if __name__ == '__main__':
    main()
