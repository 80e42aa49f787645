"""STKD on Fashion-MNIST: does distilling on mixup virtual samples beat vanilla KD?

Trains the shared teacher once (``configs/baselines/resnet18-w32_...``, all 60000 training
images), then the student (``configs/baselines/resnet18-w8_...``) five ways with the same
schedule, training subset and seeds: alone, with vanilla KD (``configs/kd/``), with mixup alone
(no teacher), with STKD (``configs/stkd/``) and with STKD on half-clean batches (``stkd-clean``,
an option). The teacher, the student alone and vanilla KD are
shared with the other Fashion-MNIST benchmarks (``fashion_mnist.compare``).

Every run is a normal mmengine Runner on its config (``common.run_config``): a finished run is
reused from its result file (committed), an interrupted one resumes from its last checkpoint.
Prints a table of test top-1 (mean over seeds, each seed, training time), writes
``benchmarks/results/stkd_fashion_mnist.json`` and, last,
``top1_gain_over_kd=+X.XX spread=Y.YY`` (STKD mean minus vanilla KD mean; the largest
seed-to-seed difference of any variant).

    python benchmarks/stkd_fashion_mnist.py [--seeds 0 1 2] [--epochs 15] [--subset 5000] \\
        [--teacher-epochs 3]
"""
import argparse
import os.path as osp

# isort: split
# benchmarks/ helpers (this script's folder is on sys.path)
from common import REPO_ROOT
from fashion_mnist import KD_CONFIG, STUDENT_CONFIG, add_arguments, compare

CONFIGS = osp.join(REPO_ROOT, 'configs', 'stkd')
VARIANTS = {  # variant -> config (the same student, schedule and data in all)
    'student': STUDENT_CONFIG,
    'kd': KD_CONFIG,
    'mixup': osp.join(CONFIGS, 'mixup_resnet18-w8_1xb128-15e_fashion-mnist.py'),
    'stkd': osp.join(CONFIGS, 'stkd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py'),
    # An option, not the paper's setting: half of each batch clean and distilled as well.
    'stkd-clean': osp.join(CONFIGS,
                           'stkd-clean_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py'),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_arguments(parser, 'stkd_fashion_mnist.json')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    compare(parser.parse_args(), VARIANTS, method='stkd', baseline='kd',
            last_key='top1_gain_over_kd')


if __name__ == '__main__':
    main()
