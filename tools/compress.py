"""Compress an MMPretrain classifier block by block under a FLOPs or parameter budget.

    python tools/compress.py CONFIG --checkpoint CKPT (--flops-budget B | --params-budget B)
                             [--work-dir DIR] [--cfg-options k=v ...] [--skip-finetune]
                             [--skip-baseline] [--skip-teacher-eval]

B: at most 1 is a fraction of the teacher (0.5), above 1 an absolute count (3e8, 300M).
Writes to the work dir: ``student.py`` (a normal MMPretrain config, with
``custom_imports=dict(imports=['mmstructkd'])``), ``student.pth`` (its KD fine-tuned weights,
strict), ``student_blockwise.pth`` (before the fine-tune), ``kd.py`` (the fine-tune config),
``report.json`` / ``report.md`` (per block: teacher block, chosen block, FLOPs and params
before/after, block-wise error; top-1 of teacher, student, and the student trained alone).
Settings of the search, the block-wise training and the fine-tune: the config's
``compression`` section (see configs/blockwise/ and mmstructkd/compression/compressor.py).
"""
import argparse
import json
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from mmstructkd.compression import BlockwiseCompressor, build_classifier, to_markdown, top1_of
from mmstructkd.engine import SafeRunner
from mmstructkd.utils import extract_student_state_dict


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Block-wise KD compression under a budget')
    parser.add_argument('config', help='the teacher classifier config')
    parser.add_argument('--checkpoint', required=True, help='the teacher checkpoint')
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument('--flops-budget', help='FLOPs budget: fraction (<= 1) or count')
    budget.add_argument('--params-budget', help='parameter budget: fraction (<= 1) or count')
    parser.add_argument('--work-dir', help='output folder (default work_dirs/compress/<config>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config (the teacher config; the student '
                        'and KD configs inherit them), e.g. compression.block_training.iters=50 '
                        'train_cfg.max_epochs=5')
    parser.add_argument('--search-cache', help='block-wise results file (default '
                        '<work-dir>/blockwise_search.pth; reused when its candidates match)')
    parser.add_argument('--skip-finetune', action='store_true',
                        help='stop after emitting the configs and the block-wise checkpoint')
    parser.add_argument('--skip-baseline', action='store_true',
                        help='do not train the same student without distillation')
    parser.add_argument('--skip-teacher-eval', action='store_true',
                        help='do not evaluate the teacher')
    return parser.parse_args(argv)


def _runner(config: str, work_dir: str, **options) -> Runner:
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.experiment_name = osp.basename(work_dir)  # the Runner appends a timestamp
    cfg.merge_from_dict(options)
    return SafeRunner.from_cfg(cfg)  # loads (teacher load_from) through the safe loader


def _train_and_validate(config: str, work_dir: str) -> tuple:
    runner = _runner(config, work_dir)
    runner.train()
    metrics = runner.val()
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    return model, {k: float(v) for k, v in metrics.items()}


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    work_dir = args.work_dir or osp.join(
        'work_dirs', 'compress', osp.splitext(osp.basename(args.config))[0])
    os.makedirs(work_dir, exist_ok=True)
    kind, budget = ('flops', args.flops_budget) if args.flops_budget is not None \
        else ('params', args.params_budget)

    compressor = BlockwiseCompressor(cfg, args.checkpoint, config_path=args.config)
    # An impossible budget is refused now, not after the whole block-wise search.
    compressor.check_budget(kind, budget)
    compressor.search(cache=args.search_cache or osp.join(work_dir, 'blockwise_search.pth'))
    selection = compressor.select(kind, budget)
    emitted = compressor.emit(selection, work_dir)
    report = emitted['report']

    if not args.skip_teacher_eval:
        metrics = _runner(emitted['teacher'], osp.join(work_dir, 'teacher_eval'),
                          load_from=osp.abspath(args.checkpoint)).val()
        report['teacher']['top1'] = top1_of(metrics)
    if not args.skip_finetune:
        distiller, metrics = _train_and_validate(emitted['kd'], osp.join(work_dir, 'finetune'))
        state = extract_student_state_dict(distiller.state_dict())
        student = build_classifier(Config.fromfile(emitted['student']))
        student.load_state_dict(state, strict=True)
        torch.save(dict(state_dict=state, meta=dict(source='KD fine-tune', metrics=metrics)),
                   osp.join(work_dir, 'student.pth'))
        report['student']['top1'] = top1_of(metrics)
    if not args.skip_baseline:
        _, metrics = _train_and_validate(emitted['student'], osp.join(work_dir, 'student_alone'))
        report['student_without_distillation'] = dict(top1=top1_of(metrics))
    if report['teacher'].get('top1') is not None and report['student'].get('top1') is not None:
        report['top1_delta'] = report['student']['top1'] - report['teacher']['top1']

    with open(osp.join(work_dir, 'report.json'), 'w') as f:
        json.dump(report, f, indent=2)
    markdown = to_markdown(report)
    with open(osp.join(work_dir, 'report.md'), 'w') as f:
        f.write(markdown)
    print(markdown)
    print(f'student config: {emitted["student"]}')
    checkpoint = 'student.pth' if not args.skip_finetune else 'student_blockwise.pth'
    print(f'student checkpoint: {osp.abspath(osp.join(work_dir, checkpoint))}')
    return report


if __name__ == '__main__':
    main()
