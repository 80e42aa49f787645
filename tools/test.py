"""Test a model from a config and a checkpoint (the CLI of mmdet's tools/test.py).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
                                           [--cfg-options k=v ...] [--launcher pytorch]

CONFIG is a distiller config (its student is tested) with a distiller checkpoint, or the
student's stock config with a checkpoint written by tools/export_student.py. CHECKPOINT is a
path or a URL (downloaded to the torch hub cache); either is loaded with ``weights_only=True``
through mmstructkd's safe loader.
"""
import argparse
import os.path as osp

from mmengine.evaluator import DumpResults

from mmstructkd.utils.launch import (add_common_args, build_runner, finish_launch,
                                     load_cli_config)
from mmstructkd.utils.safe_load import is_url


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a (distilled) model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', type=str,
                        help='dump predictions to a pickle file (.pkl) for offline evaluation')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError('--out must be a .pkl or .pickle file')
    if not osp.isfile(args.checkpoint) and not is_url(args.checkpoint):
        raise FileNotFoundError(f'checkpoint "{args.checkpoint}" does not exist.')
    cfg = load_cli_config(args)
    cfg.load_from = args.checkpoint
    runner = build_runner(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    runner.test()
    finish_launch()


if __name__ == '__main__':
    main()
