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
seed-to-seed difference of any variant). Before that last line, unless ``--no-fit``: each
variant's first-seed student evaluated on the clean images it trained on, beside its test top-1
(an underfitting student cannot gain from mixup's regularisation).

    python -m benchmarks.stkd_fashion_mnist [--seeds 0 1 2] [--epochs 15] [--subset 5000] \\
        [--teacher-epochs 3] [--views V]

Any budget but the small one (5000 images, 15 epochs, teacher 3 epochs) writes
``stkd_fashion_mnist_<budget>.json`` and keeps its own runs apart (``fashion_mnist.budget_tag``);
the same-seed differences against vanilla KD and the student alone are printed and stored
(``paired``). With ``--views V`` every variant trains on the same replayable views; vanilla KD
reads its teacher from the cache, the mixup-based variants (STKD, STKD half clean) cannot: their
batch is mixed after the dataset, so they run the teacher every step.
"""
import argparse
import os.path as osp

from benchmarks.lib.common import REPO_ROOT, markdown_table, save_summary
from benchmarks.lib.fashion_mnist import (KD_CONFIG, STUDENT_CONFIG, add_arguments, compare,
                                          train_subset_top1)

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
    parser = argparse.ArgumentParser(prog='python -m benchmarks.stkd_fashion_mnist',
                                     description=__doc__.split('\n')[0])
    add_arguments(parser, 'stkd_fashion_mnist.json', budget_named=True)
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument('--no-fit', action='store_true',
                        help='skip the fit check (each variant\'s first-seed student on its '
                        'clean training images)')
    args = parser.parse_args()
    summary = compare(args, VARIANTS, method='stkd', baseline='kd',
                      last_key='top1_gain_over_kd')
    if args.no_fit or summary is None:  # --teacher-only: nothing else was run
        return
    # Why mixup-based variants can lose at this scale: does the student fit its training set?
    seed = args.seeds[0]
    runs_dir = getattr(args, 'runs_dir', None) or osp.splitext(args.results)[0] + '_runs'
    # a --probe variant (VARIANT@NAME, added by compare) trains its base variant's config
    fit = {v: train_subset_top1(v, VARIANTS[v.partition('@')[0]], seed, args, runs_dir)
           for v in args.variants}
    test = {r['variant']: r['value'] for r in summary['runs'] if r['seed'] == seed}
    print(f'\nFit (seed {seed}): top-1 on the {args.subset or 60000} clean training images vs '
          'the 10000 test images\n')
    print(markdown_table(['variant', 'train-subset top-1', 'test top-1', 'gap'],
                         [[v, f'{fit[v]:.2f}', f'{test[v]:.2f}', f'{fit[v] - test[v]:+.2f}']
                          for v in args.variants]))
    summary['fit'] = dict(seed=seed, train_subset_top1={v: round(x, 2) for v, x in fit.items()})
    save_summary(args, summary)  # not with --no-summary (one lane's runs of a shared grid)
    print(f'top1_gain_over_kd={summary["gain"]:+.2f} spread={summary["spread"]:.2f}')


if __name__ == '__main__':
    main()
