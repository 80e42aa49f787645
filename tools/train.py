"""Train a model, or distil one, from a config (the CLI of mmdet's tools/train.py).

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [CKPT]]
                                 [--cfg-options k=v ...] [--launcher pytorch]

The runner is a ``mmstructkd.SafeRunner``: checkpoints are loaded with ``weights_only=True``
only, written atomically with every rank's random state, and ``--resume`` continues exactly
(the config of a resumed run is the one given here; the one stored in the checkpoint is never
executed). ``--resume`` without a path falls back to the newest intact checkpoint of the work
dir when the latest one is truncated.
"""
import argparse

from mmstructkd.utils.launch import (add_common_args, build_runner, finish_launch,
                                     load_cli_config)
from mmstructkd.utils.pretrained import check_pretrained


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train (or distil) a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='enable automatically scaling LR')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint; without a path, from the latest checkpoint '
        'in the work dir')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_cli_config(args)
    # Before anything is built: a missing ImageNet file is named with the command that makes it.
    check_pretrained(cfg)

    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print('AMP training is already enabled in your config.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.auto_scale_lr:
        if cfg.get('auto_scale_lr', {}).get('base_batch_size') is None:
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the '
                               'config.')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    build_runner(cfg).train()
    finish_launch()


if __name__ == '__main__':
    main()
