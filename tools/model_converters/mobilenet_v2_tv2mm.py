"""Convert torchvision's ImageNet MobileNetV2 checkpoint for OpenMMLab's MobileNetV2.

    python tools/model_converters/mobilenet_v2_tv2mm.py mobilenet_v2-b0353104.pth out.pth \
        [--with-head] [--layout mmseg|mmpretrain|mmdet]

The output is ``dict(state_dict=...)`` with ``backbone.*`` keys: use it as
``init_cfg=dict(type='Pretrained', checkpoint='out.pth')`` of the whole model (mmseg also
accepts ``backbone.init_cfg`` with ``prefix='backbone.'``).
"""
import argparse

import torch

from mmstructkd.utils.mobilenet_v2_converter import convert_torchvision_mobilenet_v2


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help="torchvision's mobilenet_v2 .pth")
    parser.add_argument('dst', help='output .pth')
    parser.add_argument('--with-head', action='store_true', help='keep the ImageNet classifier')
    parser.add_argument('--layout', default='mmseg', choices=['mmseg', 'mmpretrain', 'mmdet'],
                        help="whose MobileNetV2 loads it (mmdet names a block's convs)")
    args = parser.parse_args()
    state = torch.load(args.src, map_location='cpu', weights_only=True)
    converted = convert_torchvision_mobilenet_v2(state, with_head=args.with_head,
                                                 layout=args.layout)
    torch.save(dict(state_dict=converted), args.dst)
    print(f'{len(converted)} tensors written to {args.dst}')


if __name__ == '__main__':
    main()
