"""ReviewKD on BCCD detection: does reviewing the FPN levels beat the slim student alone?

Trains the shared teacher once (``configs/baselines/retinanet_mobilenetv2_fpn128-gn_...``:
RetinaNet, ImageNet MobileNetV2, 128-wide FPN and GN head), then the slim student (same
family at half the width, from scratch, 64-wide FPN, one-conv head) alone and with ReviewKD on
the five FPN levels (``configs/reviewkd/reviewkd_retinanet-mnv2-fpn128-gn_...``), same schedule
and seeds.

Every run is a normal mmengine Runner on its config: a finished run is reused from its result
file (committed), an interrupted one resumes from its last checkpoint. Prints a table of val
bbox mAP (x100; mean over seeds, each seed, training time), writes
``benchmarks/results/reviewkd_bccd.json`` and, last, ``bbox_mAP_gain=+X.XX spread=Y.YY``
(ReviewKD mean minus the student alone, mAP x100; the largest seed-to-seed difference).

    python -m benchmarks.reviewkd_bccd [--seeds 0 1 2] [--epochs 24]

Seeds other than 0 1 2 write their own summary, ``reviewkd_bccd_<n>seeds.json`` for seeds
0..n-1 (``reviewkd_bccd_seeds<a-b-..>.json`` otherwise), from the same runs
(``reviewkd_bccd_runs/``, ``bccd_runs/``): ``--seeds 0 1 2 3 4`` reuses the three finished
seeds, trains seeds 3 and 4 (the teacher first, from its config, if its checkpoint is not on
this machine) and reports the gain and the spread over five seeds, with the same-seed
differences against the student alone (``paired``), while ``reviewkd_bccd.json`` keeps the
three-seed summary.

The ablation with the connector at the student's lr (the paper's setting; the config gives it
10x, see the config) runs on request: ``--variants reviewkd-connector-lr1 --seeds 0``.
"""
import argparse
import os.path as osp

from benchmarks.lib.bccd import (METRIC, STUDENT_CONFIG, add_arguments, header,
                                 teacher_checkpoint, train_student)
from benchmarks.lib.common import REPO_ROOT, compare

_REVIEWKD = osp.join(REPO_ROOT, 'configs', 'reviewkd',
                     'reviewkd_retinanet-mnv2-fpn128-gn_retinanet-mnv2-w0.5-fpn64-slim_'
                     '1xb8-24e_bccd-320x240')
VARIANTS = {
    'student': STUDENT_CONFIG,
    'reviewkd': f'{_REVIEWKD}.py',
    # ablation, not run by default: the connector at the student's lr (the paper's setting)
    'reviewkd-connector-lr1': f'{_REVIEWKD}_connector-lr1.py',
}
DEFAULT_VARIANTS = ['student', 'reviewkd']


def main() -> None:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.reviewkd_bccd',
                                     description=__doc__.split('\n')[0])
    add_arguments(parser, 'reviewkd_bccd.json')
    parser.add_argument('--variants', nargs='+', default=DEFAULT_VARIANTS,
                        choices=list(VARIANTS))
    args = parser.parse_args()
    seeds_summary(args)
    compare(args, VARIANTS, method='reviewkd', baseline='student', last_key='bbox_mAP_gain',
            metric=METRIC, metric_name='bbox mAP', train_teacher=teacher_checkpoint,
            train_student=train_student, header=header(args),
            settings=dict(seeds=list(args.seeds), epochs=args.epochs,
                          teacher_epochs=args.teacher_epochs), scale=100.0,
            paired_with=['student'])


#: The three seeds of the first summary (``reviewkd_bccd.json``).
FIRST_SEEDS = [0, 1, 2]


def seeds_summary(args: argparse.Namespace) -> None:
    """Seeds other than 0 1 2 with ``--results`` named ``reviewkd_bccd.json`` (the default, or
    that name in another folder, e.g. a checkout's own results from a frozen copy of the code):
    the summary is named after the seeds beside it and the runs stay in the
    ``reviewkd_bccd_runs`` beside it (finished seeds are reused)."""
    if osp.basename(args.results) != 'reviewkd_bccd.json' or sorted(args.seeds) == FIRST_SEEDS:
        return
    seeds = sorted(args.seeds)
    tag = (f'{len(seeds)}seeds' if seeds == list(range(len(seeds)))
           else 'seeds' + '-'.join(map(str, seeds)))
    stem = osp.splitext(osp.abspath(args.results))[0]
    args.runs_dir = stem + '_runs'
    args.results = f'{stem}_{tag}.json'


if __name__ == '__main__':
    main()
