"""ReviewKD on Fashion-MNIST: does reviewing the stages beat the student alone and logit KD?

Trains the shared teacher once (``configs/baselines/resnet18-w32_...``, all 60000 training
images), then the student (``configs/baselines/resnet18-w8_...``) four ways with the same
schedule, training subset and seeds: alone, with logit KD (``configs/kd/``), with ReviewKD
(``configs/reviewkd/``: four stages and the embedding, HCL) and with ReviewKD plus logit KD
(``reviewkd-kd``). The teacher, the student alone and logit KD are shared with the other
Fashion-MNIST benchmarks (``fashion_mnist.compare``).

Every run is a normal mmengine Runner on its config: a finished run is reused from its result
file (committed), an interrupted one resumes from its last checkpoint. Prints a table of test
top-1 (mean over seeds, each seed, training time), writes
``benchmarks/results/reviewkd_fashion_mnist.json`` and, last, ``top1_gain=+X.XX spread=Y.YY``
(ReviewKD mean minus the student alone; the largest seed-to-seed difference of any variant).

    python -m benchmarks.reviewkd_fashion_mnist [--seeds 0 1 2] [--epochs 15] [--subset 5000] \\
        [--views V] [--variants student kd reviewkd reviewkd-kd]

Any budget but the small one (5000 images, 15 epochs, teacher 3 epochs) writes
``reviewkd_fashion_mnist_<budget>.json`` and keeps its own runs apart
(``fashion_mnist.budget_tag``); the same-seed differences against logit KD and the student
alone are printed and stored (``paired``). With ``--views V`` every variant trains on the same
replayable views and logit KD reads its teacher from the cache; ReviewKD and ReviewKD + KD
could, but run the teacher every step by default: their cached stage maps (about 97 KB per view
in fp16) are slower to read back on this CPU than the teacher is to run
(``fashion_mnist.CACHE_VARIANTS``; ``--cache-variants kd reviewkd reviewkd-kd`` turns it on).
"""
import argparse
import os.path as osp

from benchmarks.lib.common import REPO_ROOT
from benchmarks.lib.fashion_mnist import KD_CONFIG, STUDENT_CONFIG, add_arguments, compare

VARIANTS = {
    'student': STUDENT_CONFIG,
    'kd': KD_CONFIG,
    'reviewkd': osp.join(REPO_ROOT, 'configs', 'reviewkd',
                         'reviewkd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py'),
    # ReviewKD's HCL plus logit KD (tau 4, weight 1, as the kd variant)
    'reviewkd-kd': osp.join(REPO_ROOT, 'configs', 'reviewkd',
                            'reviewkd-kd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py'),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.reviewkd_fashion_mnist',
                                     description=__doc__.split('\n')[0])
    add_arguments(parser, 'reviewkd_fashion_mnist.json', budget_named=True)
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    compare(parser.parse_args(), VARIANTS, method='reviewkd', baseline='student',
            last_key='top1_gain')


if __name__ == '__main__':
    main()
