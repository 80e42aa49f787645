"""Convert torchvision's ImageNet MobileNetV2 weights to OpenMMLab's MobileNetV2 layout.

torchvision names blocks ``features.<i>``; OpenMMLab's ``MobileNetV2`` s group the 17
inverted-residual blocks into ``layer1..layer7`` (1, 2, 3, 4, 3, 3, 1 blocks) and wrap every
conv + BN into a ``ConvModule`` (``.conv``, ``.bn``). Inside a block, mmseg and mmpretrain number
the convs (``conv.0``, ``conv.1``, ...); mmdet names them (``expand_conv``, ``depthwise_conv``,
``linear_conv``): ``layout`` picks one.
"""
from collections import OrderedDict
from typing import Dict

from torch import Tensor

#: Blocks per layer of MobileNetV2 (the expand ratios are 1 for layer1, 6 elsewhere).
BLOCKS_PER_LAYER = (1, 2, 3, 4, 3, 3, 1)
#: Names of a block's convs (expand 1x1, depthwise 3x3, project 1x1) in each layout; ``None``:
#: numbered in order (``conv.0``, ``conv.1``, ...), absent expand conv included.
CONV_NAMES = {'mmseg': None, 'mmpretrain': None,
              'mmdet': ('expand_conv', 'depthwise_conv', 'linear_conv')}


def _block_names():
    feature = 1
    for layer, blocks in enumerate(BLOCKS_PER_LAYER, start=1):
        for block in range(blocks):
            yield feature, f'layer{layer}.{block}', layer == 1
            feature += 1


def convert_torchvision_mobilenet_v2(state_dict: Dict[str, Tensor], prefix: str = 'backbone.',
                                     with_head: bool = False,
                                     layout: str = 'mmseg') -> 'OrderedDict[str, Tensor]':
    """Rename a torchvision ``mobilenet_v2`` state dict for OpenMMLab's ``MobileNetV2``.

    Args:
        state_dict (dict): torchvision's ``mobilenet_v2`` weights.
        prefix (str): Prepended to every key (``'backbone.'`` for a whole model's checkpoint).
        with_head (bool): Also map ``classifier.1`` to mmpretrain's ``head.fc``.
        layout (str): ``'mmseg'`` / ``'mmpretrain'`` (the same) or ``'mmdet'``: whose
            ``MobileNetV2`` loads the result. Defaults to ``'mmseg'``.

    Returns:
        OrderedDict: The renamed weights (``conv2`` is the final 1x1 conv to 1280 channels,
        which mmpretrain's MobileNetV2 has and mmseg's does not use).
    """
    if layout not in CONV_NAMES:
        raise ValueError(f'layout must be one of {sorted(CONV_NAMES)}, got {layout!r}')
    names = CONV_NAMES[layout]
    rename = {'features.0.0': 'conv1.conv', 'features.0.1': 'conv1.bn',
              'features.18.0': 'conv2.conv', 'features.18.1': 'conv2.bn'}
    for feature, name, no_expand in _block_names():
        src = f'features.{feature}.conv'
        # expand 1x1 (absent when the expand ratio is 1), depthwise 3x3, project 1x1 + BN
        parts = (1, 2) if no_expand else (0, 1, 2)
        for i, part in enumerate(parts):
            dst = f'{name}.conv.{i}' if names is None else f'{name}.{names[part]}'
            if i < len(parts) - 1:
                rename[f'{src}.{i}.0'] = f'{dst}.conv'
                rename[f'{src}.{i}.1'] = f'{dst}.bn'
            else:  # the projection is a bare conv followed by a BN in torchvision
                rename[f'{src}.{i}'] = f'{dst}.conv'
                rename[f'{src}.{i + 1}'] = f'{dst}.bn'
    converted = OrderedDict()
    for key, value in state_dict.items():
        module, _, param = key.rpartition('.')
        if module.startswith('classifier'):
            if with_head:
                converted[f'head.fc.{param}'] = value
            continue
        if module not in rename:
            raise KeyError(f'unexpected key "{key}": is this torchvision\'s mobilenet_v2?')
        converted[f'{prefix}{rename[module]}.{param}'] = value
    return converted
