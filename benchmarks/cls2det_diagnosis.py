"""Where can classifier-to-detector KD help on BCCD? Two checks of finished runs; nothing trains.

1. **The teacher's targets.** The crop classifier on BCCD's val crops (its own test pipeline):
   per class, top-1 and, for several temperatures tau, the mean probability of the top class and
   the mean entropy of ``softmax(t / tau)``. Recognition KD distils exactly these distributions:
   a teacher that is one-hot at the configured tau passes on nothing but the labels.
2. **The detector's recognition.** For each detector run given (its work dir), on the val
   images: of the ground-truth cells it finds (a box of any class with IoU >= 0.5), how many
   its best-scoring such box labels with the right class, per class; and how many it finds at
   all. Recognition KD can win back only the wrongly labelled ones; the rest of the mAP is lost
   to missed cells, loose boxes and spurious ones.

Writes ``results/cls2det_diagnosis.json`` and prints both tables.

    python -m benchmarks.cls2det_diagnosis work_dirs/benchmarks/bccd/<run> [...] \\
        [--teacher benchmarks/results/cls2det_bccd_runs/cls_teacher_8e.pth] [--taus 1 2 4]
"""
import argparse
import json
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmstructkd  # noqa: F401 (registers the distillers)
from benchmarks.bccd_test_split import CLASSES, final_student_weights, student_test_config
from benchmarks.cls2det_bccd import TEACHER_CONFIG
from benchmarks.lib.bccd import DATA_ROOT, WORK_ROOT
from benchmarks.lib.common import REPO_ROOT, markdown_table, write_json
from mmstructkd.engine import SafeRunner as Runner
from mmstructkd.utils import build_model_from_spec
from mmstructkd.utils import load_model_checkpoint as load_checkpoint


def target_stats(logits: torch.Tensor, labels: torch.Tensor, taus: Sequence[float],
                 num_classes: int) -> Dict[int, dict]:
    """Per class (by label): ``top1`` (%), and per tau ``p_top`` (mean of the largest
    probability of ``softmax(logits / tau)``) and ``entropy`` (mean, nats).

    Args:
        logits (Tensor): shape (N, C).
        labels (Tensor): shape (N,), true classes.
        taus (Sequence[float]): Temperatures.
        num_classes (int): C.
    """
    stats = {}
    for c in range(num_classes):
        rows = logits[labels == c]
        if len(rows) == 0:
            continue
        entry = dict(count=len(rows),
                     top1=float((rows.argmax(1) == c).float().mean() * 100))
        for tau in taus:
            p = F.softmax(rows / tau, dim=1)
            entry[f'tau{tau:g}'] = dict(
                p_top=float(p.max(1).values.mean()),
                entropy=float(-(torch.xlogy(p, p)).sum(1).mean()))
        stats[c] = entry
    return stats


def box_iou_xywh(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of COCO boxes ``(x, y, w, h)``: shape (len(a), len(b))."""
    a = torch.cat([a[:, :2], a[:, :2] + a[:, 2:]], 1)
    b = torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1)
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def recognition_of_found(gts: List[dict], dets: List[dict], iou_thr: float = 0.5) -> dict:
    """Per ground-truth category: ``total``, ``found`` (a detection of any class overlaps it
    with IoU >= ``iou_thr``) and ``correct`` (the highest-scoring such detection has its class).

    Args:
        gts (list[dict]): COCO annotations (``image_id``, ``bbox`` xywh, ``category_id``).
        dets (list[dict]): COCO results (``image_id``, ``bbox``, ``category_id``, ``score``).
        iou_thr (float): Overlap that counts as finding the cell. Defaults to 0.5.
    """
    by_image = defaultdict(list)
    for d in dets:
        by_image[d['image_id']].append(d)
    counts = defaultdict(lambda: dict(total=0, found=0, correct=0))
    for g in gts:
        entry = counts[g['category_id']]
        entry['total'] += 1
        cands = by_image.get(g['image_id'], [])
        if not cands:
            continue
        iou = box_iou_xywh(torch.tensor([g['bbox']], dtype=torch.float),
                           torch.tensor([d['bbox'] for d in cands], dtype=torch.float))[0]
        hits = [d for d, x in zip(cands, iou.tolist()) if x >= iou_thr]
        if hits:
            entry['found'] += 1
            best = max(hits, key=lambda d: d['score'])
            entry['correct'] += int(best['category_id'] == g['category_id'])
    return dict(counts)


@torch.no_grad()
def teacher_logits(ckpt: str, crops: str) -> tuple:
    """The crop classifier's logits and labels on the val crops."""
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(TEACHER_CONFIG)
    cfg.val_dataloader.dataset.data_root = osp.join(crops, '')
    cfg.val_dataloader.update(num_workers=0, persistent_workers=False)
    # built as the distillers build their teacher (the config's top-level data_preprocessor,
    # i.e. its normalisation, belongs to the model)
    model = build_model_from_spec(dict(cfg_path=TEACHER_CONFIG, pretrained=False),
                                  'teacher').eval()
    load_checkpoint(model, ckpt, map_location='cpu', logger='silent')
    logits, labels = [], []
    for batch in Runner.build_dataloader(cfg.val_dataloader):
        data = model.data_preprocessor(batch, False)
        logits.append(model(data['inputs'], mode='tensor'))
        labels += [int(s.gt_label) for s in data['data_samples']]
    return torch.cat(logits), torch.tensor(labels)


def detector_recognition(run_dir: str, data_root: str) -> dict:
    """Val predictions of a finished run's final student; :func:`recognition_of_found`."""
    configs = [f for f in sorted(os.listdir(run_dir)) if f.endswith('.py')]
    if not configs:
        raise FileNotFoundError(f'{run_dir}: no config copy; pass the work dir of a finished '
                                'BCCD detector run.')
    config = osp.join(run_dir, configs[0])
    epochs = Config.fromfile(config).train_cfg.max_epochs
    out = osp.join(run_dir, 'diagnosis')
    cfg = student_test_config(config, final_student_weights(run_dir, epochs), data_root, out,
                              split='val')
    cfg.test_evaluator.outfile_prefix = osp.join(out, 'val')
    init_default_scope('mmdet')
    metrics = Runner.from_cfg(cfg).test()
    with open(cfg.test_evaluator.ann_file) as f:
        gt = json.load(f)
    with open(osp.join(out, 'val.bbox.json')) as f:
        dets = json.load(f)
    names = {c['id']: c['name'] for c in gt['categories']}
    counts = recognition_of_found(gt['annotations'], dets)
    return dict(bbox_mAP=float(metrics['coco/bbox_mAP']) * 100,
                per_class={names[c]: v for c, v in sorted(counts.items())})


def main() -> None:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.cls2det_diagnosis',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='*', help='work dirs of finished BCCD detector runs')
    # the teacher every distilled run of the benchmark distilled from: its kept weights
    parser.add_argument('--teacher', default=osp.join(REPO_ROOT, 'benchmarks', 'results',
                                                      'cls2det_bccd_runs', 'cls_teacher_8e.pth'))
    parser.add_argument('--crops', default=osp.join(WORK_ROOT, 'bccd_crops'))
    parser.add_argument('--data-root', default=DATA_ROOT)
    parser.add_argument('--taus', type=float, nargs='+', default=[1.0, 2.0, 4.0])
    parser.add_argument('--results', default=osp.join(REPO_ROOT, 'benchmarks', 'results',
                                                      'cls2det_diagnosis.json'))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', os.cpu_count() or 1)))
    for path in (args.teacher, args.crops):
        if not osp.exists(path):
            raise FileNotFoundError(f'{path} is missing: run python -m benchmarks.cls2det_bccd '
                                    '--teacher-only (builds the crops, trains the teacher) or '
                                    'pass --teacher / --crops.')

    logits, labels = teacher_logits(args.teacher, args.crops)
    stats = target_stats(logits, labels, args.taus, len(CLASSES))
    print(f'Teacher targets on the {len(labels)} val crops: top-1, and per tau the mean top '
          'probability / mean entropy (nats; uniform over 3 classes: 1.10)')
    print(markdown_table(
        ['class', 'crops', 'top-1 %'] + [f'tau {t:g}: p_top / entropy' for t in args.taus],
        [[CLASSES[c], s['count'], s['top1']] +
         [f"{s[f'tau{t:g}']['p_top']:.4f} / {s[f'tau{t:g}']['entropy']:.4f}"
          for t in args.taus] for c, s in stats.items()]))

    runs = {osp.basename(r.rstrip('/')): detector_recognition(r, args.data_root)
            for r in args.runs}
    if runs:
        print('Detectors on the val images: cells found (a box of any class, IoU >= 0.5) and, '
              'of those, labelled right by the best-scoring box')
        rows = []
        for name, r in runs.items():
            for cls, c in r['per_class'].items():
                rows.append([name, f"{r['bbox_mAP']:.1f}", cls, c['total'],
                             100.0 * c['found'] / max(c['total'], 1),
                             100.0 * c['correct'] / max(c['found'], 1)])
        print(markdown_table(['run', 'bbox mAP', 'class', 'cells', 'found %', 'right class %'],
                             rows))
    write_json(args.results, dict(
        teacher=dict(checkpoint=osp.relpath(args.teacher, REPO_ROOT),
                     per_class={CLASSES[c]: s for c, s in stats.items()}),
        detectors=runs))


if __name__ == '__main__':
    main()
