"""How hard each StructKD / CWD term pushes the CamVid student, next to its task loss.

A diagnostic of the CamVid benchmark (``benchmarks/structkd_camvid.py``, issue #21): for each
distilled variant, the student as it starts (ImageNet backbone, new head) and, where the
benchmark's work dir still holds it, as it ends (the run's last checkpoint: student, teacher
and critic), on the same few training batches:

- each loss term's value;
- the norm of its gradient with respect to the student's parameters, and that norm over the
  task cross-entropy's (how much of the SGD step the term is);
- the cosine between the term's gradient and the cross-entropy's (does it pull the same way).

The teacher is the one the summary's runs were trained with (its kept weights, found in
``structkd_camvid_runs/`` by the sha256 the summary records); the critic of the holistic
variant at its start is untrained, so its adversarial term there says nothing (it is listed,
marked). Writes ``benchmarks/results/structkd_camvid_gradients.json``.

    python -m benchmarks.structkd_camvid_gradients [--batches 4] [--seed 0] \\
        [--work-dir ~/.cache/mmstructkd/benchmarks/structkd_camvid]
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from benchmarks.lib.common import REPO_ROOT, imagenet_mobilenet_v2, sha256_of
from benchmarks.structkd_camvid import (CONFIGS, RESULTS, VARIANTS, add_path_arguments,
                                        kept_teacher, run_name, variant_setup)
from mmstructkd.models.distillers.adversarial_distiller import AdversarialDistiller
from mmstructkd.registry import MODELS
from mmstructkd.utils.checkpoint import load_model_checkpoint
from mmstructkd.utils.config_resolution import resolve_config
from mmstructkd.utils.safe_load import scoped_checkpoint_loader

#: The task loss every term is compared with.
TASK = 'student.decode.loss_ce'


def parse_args():
    parser = argparse.ArgumentParser(prog='python -m benchmarks.structkd_camvid_gradients',
                                     description=__doc__.split('\n')[0])
    add_path_arguments(parser)
    distilled = [v for v in VARIANTS if v != 'student']
    parser.add_argument('--variants', nargs='+', default=distilled, choices=distilled)
    parser.add_argument('--seed', type=int, default=0, help='which run of each variant')
    parser.add_argument('--student-iters', type=int, default=1200)
    parser.add_argument('--num-views', type=int, default=8)
    parser.add_argument('--batches', type=int, default=4, help='training batches of 8 images')
    parser.add_argument('--summary', default=RESULTS,
                        help="the benchmark's summary JSON: its teacher, whose students' last "
                        'checkpoints are measured')
    parser.add_argument('--results', default=osp.join(REPO_ROOT, 'benchmarks', 'results',
                                                      'structkd_camvid_gradients.json'))
    return parser.parse_args()


def build(variant: str, args, teacher_ckpt: str, pretrained: str):
    """The distiller of a benchmark variant and its training dataset."""
    config, overrides = variant_setup(variant)
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    if overrides:
        cfg.merge_from_dict(overrides)
    cfg.model.teacher_ckpt = teacher_ckpt
    cfg.model.student.backbone.init_cfg.checkpoint = pretrained
    cfg.train_dataloader.dataset.data_root = args.data_root
    cfg = resolve_config(cfg, verbose=False)
    DefaultScope.get_instance(f'gradients-{variant}', scope_name=cfg.default_scope)
    model = MODELS.build(cfg.model)
    with scoped_checkpoint_loader():
        model.init_weights()  # ImageNet backbone for the student, the kept teacher
    from mmseg.registry import DATASETS
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return model, dataset


def batches(dataset, count: int, seed: int) -> List[dict]:
    """``count`` batches of 8 training images (with their augmentation), the same on every
    call."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    order = np.random.RandomState(seed).permutation(len(dataset))[:8 * count]
    return [pseudo_collate([dataset[int(i)] for i in order[8 * b:8 * (b + 1)]])
            for b in range(count)]


def term_gradients(model, data: List[dict]) -> Dict[str, dict]:
    """Per loss term: value, gradient norm over the student's parameters, ratio to the task
    loss's norm and cosine with it, each averaged over the batches."""
    params = [p for p in model.student.parameters() if p.requires_grad]
    model.train()
    rows: Dict[str, Dict[str, list]] = {}
    for batch in data:
        inputs = model.data_preprocessor(batch, True)
        if isinstance(model, AdversarialDistiller):
            losses, _ = model(**inputs, mode='generator')
        else:
            losses = model(**inputs, mode='loss')
        terms = {k: v for k, v in losses.items() if 'loss' in k}
        if TASK not in terms:
            raise KeyError(f'no task loss {TASK} among {sorted(terms)}')
        grads = {}
        for name, value in terms.items():
            g = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
            grads[name] = torch.cat([(x if x is not None else torch.zeros_like(p)).flatten()
                                     for x, p in zip(g, params)])
        task = grads[TASK]
        for name, g in grads.items():
            row = rows.setdefault(name, dict(value=[], grad_norm=[], ratio=[], cosine=[]))
            row['value'].append(float(terms[name].detach()))
            row['grad_norm'].append(float(g.norm()))
            row['ratio'].append(float(g.norm() / task.norm()))
            row['cosine'].append(float(torch.nn.functional.cosine_similarity(g, task, dim=0)))
    return {name: {k: round(float(np.mean(v)), 5) for k, v in row.items()}
            for name, row in rows.items()}


def main():
    args = parse_args()
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', os.cpu_count() or 1)))
    with open(args.summary) as f:
        teacher = kept_teacher(args.summary, json.load(f))
    pretrained = imagenet_mobilenet_v2(
        osp.join(args.work_dir, 'pretrain', 'mobilenet_v2_imagenet_mm.pth'))
    out = dict(teacher=osp.basename(teacher), teacher_sha256=sha256_of(teacher),
               seed=args.seed, batches=args.batches, task_loss=TASK, variants={})
    if osp.isfile(args.results):  # the variants measured before, with the same set-up, stay
        with open(args.results) as f:
            before = json.load(f)
        if all(before.get(k) == out[k] for k in ('teacher_sha256', 'seed', 'batches')):
            out['variants'] = before['variants']
    lines = ['| variant | when | term | value | grad norm | / task grad norm | cosine with task |',
             '|---|---|---|---:|---:|---:|---:|']
    for variant in args.variants:
        torch.manual_seed(args.seed)  # every variant starts from the same student head
        model, dataset = build(variant, args, teacher, pretrained)
        data = batches(dataset, args.batches, args.seed)
        points = {'start': None}
        last = osp.join(args.work_dir, run_name(variant, args.student_iters, args.num_views,
                                                args.seed), f'iter_{args.student_iters}.pth')
        if osp.isfile(last):
            points['end'] = last
        out['variants'][variant] = {}
        for when, checkpoint in points.items():
            if checkpoint is not None:
                load_model_checkpoint(model, checkpoint, strict=True)
            torch.manual_seed(args.seed)  # the same critic penalty draws, dropout masks
            rows = term_gradients(model, data)
            out['variants'][variant][when] = dict(checkpoint=checkpoint and osp.basename(
                osp.dirname(checkpoint)) + '/' + osp.basename(checkpoint), terms=rows)
            for term, r in rows.items():
                note = ' (untrained critic)' if term.endswith('loss_adv') and when == 'start' \
                    else ''
                lines.append(f'| {variant} | {when} | {term}{note} | {r["value"]:.4g} | '
                             f'{r["grad_norm"]:.4g} | {r["ratio"]:.3g} | {r["cosine"]:+.3f} |')
    print('\n'.join(lines))
    os.makedirs(osp.dirname(args.results), exist_ok=True)
    with open(args.results, 'w') as f:
        json.dump(out, f, indent=2)


if __name__ == '__main__':
    main()
