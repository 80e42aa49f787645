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

    python benchmarks/reviewkd_bccd.py [--seeds 0 1 2] [--epochs 24]

The ablation with the connector at the student's lr (the paper's setting; the config gives it
10x, see the config) runs on request: ``--variants reviewkd-connector-lr1 --seeds 0``.
"""
import argparse
import os.path as osp

# isort: split
# benchmarks/ helpers (this script's folder is on sys.path)
from bccd import METRIC, STUDENT_CONFIG, add_arguments, header, teacher_checkpoint, train_student
from common import REPO_ROOT, compare

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
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_arguments(parser, 'reviewkd_bccd.json')
    parser.add_argument('--variants', nargs='+', default=DEFAULT_VARIANTS,
                        choices=list(VARIANTS))
    args = parser.parse_args()
    compare(args, VARIANTS, method='reviewkd', baseline='student', last_key='bbox_mAP_gain',
            metric=METRIC, metric_name='bbox mAP', train_teacher=teacher_checkpoint,
            train_student=train_student, header=header(args),
            settings=dict(seeds=list(args.seeds), epochs=args.epochs,
                          teacher_epochs=args.teacher_epochs), scale=100.0)


if __name__ == '__main__':
    main()
