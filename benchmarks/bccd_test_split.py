"""Held-out check of a BCCD benchmark: its finished runs evaluated on BCCD's test split.

The BCCD benchmarks (``reviewkd_bccd.py``, ``cls2det_bccd.py``) validate on the 87 val images
after training; nothing in their configs was chosen on the 72 test images. This evaluates the
final student weights of every run listed in a benchmark's summary JSON on the test split and
prints the same table (mean over seeds, each seed) plus per-class AP, and writes
``<summary>_test.json`` (``gain``: the summary's headline variant minus its baseline, the
headline being the variant its val numbers chose, ``best_variant``, where it names one, else its
``method``; ``gains`` of every variant; ``spread``).

    python -m benchmarks.bccd_test_split benchmarks/results/reviewkd_bccd.json

The runs' work dirs (``--work-dir``, the benchmarks' default) must hold their last checkpoint:
``epoch_<E>_student.pth`` of a distiller (``StudentCheckpointHook``), ``epoch_<E>.pth`` of a
detector trained alone. Each run's test metrics are also written beside its result file
(``<summary>_runs/test_split/<run>.json``, committed with it, recording the run's val metrics):
checkpoints are not committed and a later session may be on a new machine, so a run tested once
is not trained again to be tested; a kept file whose val metrics differ from the summary's (the
run was retrained) is not reused. A shared run (the student alone) whose work dir is gone takes
its test metrics from another BCCD benchmark's ``*_test.json`` that has them.
"""
import argparse
import glob
import json
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.config import Config

from benchmarks.lib.bccd import DATA_ROOT, METRIC, SHARED_VARIANTS, WORK_ROOT
from benchmarks.lib.common import REPO_ROOT, markdown_table, seed_stats, write_json
from mmstructkd.engine import SafeRunner as Runner

CLASSES = ('RBC', 'WBC', 'Platelets')


def final_student_weights(work_dir: str, epochs: int) -> str:
    """The run's last student checkpoint, or an error that names the run and the fix."""
    for name in (f'epoch_{epochs}_student.pth', f'epoch_{epochs}.pth'):
        path = osp.join(work_dir, name)
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'{work_dir} has neither epoch_{epochs}_student.pth nor epoch_{epochs}.pth: the run is '
        'not finished here (or its checkpoints were removed); rerun its benchmark, or pass '
        '--work-dir where its checkpoints are.')


def student_test_config(run_config: str, checkpoint: str, data_root: str, work_dir: str,
                        split: str = 'test') -> Config:
    """The run's detector alone (the student of a distiller), set to test ``checkpoint`` on
    ``split`` of BCCD."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, run_config))
    if 'student' in cfg.model:  # a distiller: its student was saved alone
        cfg.model = cfg.model.student
    cfg.custom_hooks = []  # the distillers' hooks need the distiller
    data_root = osp.join(data_root, '')
    ann = f'annotations/instances_{split}.json'
    cfg.test_dataloader.dataset.update(data_root=data_root, ann_file=ann)
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.test_evaluator.ann_file = osp.join(data_root, ann)
    cfg.load_from = checkpoint
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'  # the tables below are the output
    return cfg


def shared_test_metrics(results_dir: str, summary: str) -> dict:
    """Test metrics of the runs every BCCD benchmark shares (the student alone), by
    ``(variant, seed)``, from the other benchmarks' ``*_test.json`` in ``results_dir``: results
    are committed, checkpoints are not, so a shared run tested once needs no retraining."""
    own = osp.splitext(osp.abspath(summary))[0] + '_test.json'
    found = {}
    for path in sorted(glob.glob(osp.join(results_dir, '*_test.json'))):
        if osp.abspath(path) == own:
            continue
        with open(path) as f:
            for run in json.load(f).get('runs', []):
                # other benchmarks' test splits (CamVid's) have a 'student' too: only BCCD
                # detector metrics count
                if run['variant'] in SHARED_VARIANTS and METRIC in run.get('metrics', {}):
                    found.setdefault((run['variant'], run['seed']), run['metrics'])
    return found


def kept_test_metrics_path(summary: str, run_name: str) -> str:
    """Where a run's test metrics are kept, beside its result file."""
    return osp.join(osp.splitext(summary)[0] + '_runs', 'test_split', f'{run_name}.json')


def kept_test_metrics(summary: str, run: dict) -> Optional[dict]:
    """The run's kept test metrics, if they were measured on the weights that gave the
    summary's val metrics (the same val metrics); None otherwise."""
    path = kept_test_metrics_path(summary, run['name'])
    if not osp.isfile(path):
        return None
    with open(path) as f:
        kept = json.load(f)
    return kept['test_metrics'] if kept.get('val_metrics') == run['metrics'] else None


def headline_variant(summary: dict) -> str:
    """The variant whose gain the test split reports: the one the summary's val numbers chose
    (``best_variant``) where it names one, else its ``method``. Test checks that choice; it
    never makes one."""
    return summary.get('best_variant') or summary['method']


def main() -> None:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.bccd_test_split',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('summary', help="a BCCD benchmark's summary JSON")
    parser.add_argument('--data-root', default=DATA_ROOT)
    parser.add_argument('--work-dir', default=WORK_ROOT)
    args = parser.parse_args()
    with open(args.summary) as f:
        summary = json.load(f)
    epochs = summary['settings']['epochs']
    shared = shared_test_metrics(osp.dirname(osp.abspath(args.summary)), args.summary)
    metrics = {}
    names = {(run['variant'], run['seed']): run['name'] for run in summary['runs']}
    for run in summary['runs']:
        work_dir = osp.join(args.work_dir, run['name'])
        if run['variant'] in SHARED_VARIANTS and (run['variant'], run['seed']) in shared and \
                not osp.isdir(work_dir):
            # a shared run evaluated by another BCCD benchmark; its checkpoints are gone here
            metrics[(run['variant'], run['seed'])] = shared[(run['variant'], run['seed'])]
            continue
        kept = kept_test_metrics(args.summary, run)
        if kept is None:
            checkpoint = final_student_weights(work_dir, epochs)
            cfg = student_test_config(run['config'], checkpoint, args.data_root,
                                      osp.join(args.work_dir, 'test_split', run['name']))
            kept = {k: float(v) for k, v in Runner.from_cfg(cfg).test().items()}
            write_json(kept_test_metrics_path(args.summary, run['name']),
                       dict(name=run['name'], split='test', val_metrics=run['metrics'],
                            test_metrics=kept))
        metrics[(run['variant'], run['seed'])] = kept

    variants = list(dict.fromkeys(v for v, _ in metrics))
    seeds = sorted({s for _, s in metrics})
    values = {v: {s: metrics[(v, s)][METRIC] * 100 for s in seeds if (v, s) in metrics}
              for v in variants}
    mean, spread = seed_stats(values)
    method, baseline = headline_variant(summary), summary['baseline']
    gain = mean[method] - mean[baseline] if {method, baseline} <= set(mean) else float('nan')
    gains = {v: round(mean[v] - mean[baseline], 2) for v in mean
             if v != baseline and baseline in mean}
    per_class = {v: {c: float(np.mean([metrics[(v, s)][f'coco/{c}_precision'] * 100
                                       for s in values[v]])) for c in CLASSES}
                 for v in variants}
    print(f'BCCD test bbox mAP x100 (72 images, never used to choose anything); '
          f'runs of {osp.basename(args.summary)}')
    if not summary.get('complete'):
        print('PARTIAL: the summary lists the runs finished so far (written by --report)')
    print(markdown_table(['variant', 'bbox mAP (mean)'] + [f'seed {s}' for s in seeds],
                         [[v, mean[v]] + [values[v].get(s, '-') for s in seeds]
                          for v in variants]))
    print(markdown_table(['variant'] + [f'{c} AP' for c in CLASSES],
                         [[v] + [per_class[v][c] for c in CLASSES] for v in variants]))
    write_json(osp.splitext(args.summary)[0] + '_test.json', dict(
        split='test', gain=None if gain != gain else round(gain, 2), spread=round(spread, 2),
        method=method, baseline=baseline, gains=gains,
        mean={v: round(m, 2) for v, m in mean.items()},
        per_class={v: {c: round(x, 2) for c, x in pc.items()} for v, pc in per_class.items()},
        runs=[dict(variant=v, seed=s, name=names[(v, s)], metrics=m)
              for (v, s), m in metrics.items()]))
    print(f'test_bbox_mAP_gain={gain:+.2f} spread={spread:.2f}')


if __name__ == '__main__':
    main()
