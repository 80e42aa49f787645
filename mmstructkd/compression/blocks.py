"""Blocks a compressed backbone is made of, each buildable from a config.

A teacher stage and its cheaper replacements are all one of these types, so a student is a
list of configs (see :class:`~mmstructkd.compression.CompressedBackbone`). The stages wrap
mmpretrain's own blocks (``InvertedResidual``, ``BasicBlock``, ``Bottleneck``) in the same
``nn.Sequential`` layout as mmpretrain's backbones: a stage that equals the teacher's has the
teacher's state-dict keys, so the teacher's weights load into it unchanged.
"""
from typing import Optional

from mmcv.cnn import ConvModule
from mmpretrain.models.backbones.mobilenet_v2 import InvertedResidual
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck, ResLayer
from torch import nn

from mmstructkd.registry import MODELS

#: Residual blocks a :class:`ResidualStage` can stack, by name.
RESIDUAL_BLOCKS = {'BasicBlock': BasicBlock, 'Bottleneck': Bottleneck}

# ResNet's stem pools with a bare nn.MaxPool2d, which no OpenMMLab registry knows.
MODELS.register_module('MaxPool2d', module=nn.MaxPool2d)


@MODELS.register_module()
class InvertedResidualStage(nn.Sequential):
    """``num_blocks`` MobileNetV2 inverted-residual blocks (mmpretrain's ``InvertedResidual``).

    The first block changes the channels and applies the stride; the others keep the shape
    (and have the identity shortcut). ``expand_ratio=1`` makes every block a
    depthwise-separable conv (depthwise 3x3 + linear pointwise 1x1).

    Args:
        in_channels (int): Input channels C_in.
        out_channels (int): Output channels C_out.
        num_blocks (int): Blocks in the stage (>= 1).
        stride (int): Stride of the first block (1 or 2).
        expand_ratio (float): Hidden channels of a block = round(its input channels x ratio).
        conv_cfg (dict, optional): Convolution config. Defaults to None (``nn.Conv2d``).
        norm_cfg (dict): Normalisation config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation config. Defaults to ``dict(type='ReLU6')``.

    Shape:
        (N, C_in, H, W) -> (N, C_out, H / stride, W / stride)
    """

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, stride: int = 1,
                 expand_ratio: float = 6, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU6')) -> None:
        if num_blocks < 1:
            raise ValueError(f'InvertedResidualStage needs num_blocks >= 1, got {num_blocks}')
        blocks = [InvertedResidual(in_channels if i == 0 else out_channels, out_channels,
                                   stride if i == 0 else 1, expand_ratio=expand_ratio,
                                   conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
                  for i in range(num_blocks)]
        super().__init__(*blocks)


@MODELS.register_module()
class ResidualStage(ResLayer):
    """A ResNet stage: mmpretrain's ``ResLayer`` with the block type given by name.

    Args:
        block (str): ``'BasicBlock'`` (two 3x3 convs) or ``'Bottleneck'`` (1x1, 3x3, 1x1).
        in_channels (int): Input channels C_in.
        out_channels (int): Output channels C_out.
        num_blocks (int): Blocks in the stage (>= 1).
        stride (int): Stride of the first block.
        expansion (int, optional): out_channels / inner channels of a block (must be 1 for
            ``BasicBlock``; 4 in a stock ``Bottleneck`` stage, larger is narrower).
        **kwargs: Passed to every block (``dilation``, ``style``, ``conv_cfg``, ``norm_cfg``,
            ...) and ``avg_down`` to the shortcut.

    Shape:
        (N, C_in, H, W) -> (N, C_out, H / stride, W / stride)
    """

    def __init__(self, block: str, in_channels: int, out_channels: int, num_blocks: int,
                 stride: int = 1, expansion: Optional[int] = None, **kwargs) -> None:
        if block not in RESIDUAL_BLOCKS:
            raise ValueError(f'ResidualStage: unknown block {block!r}; known blocks: '
                             f'{sorted(RESIDUAL_BLOCKS)}')
        if num_blocks < 1:
            raise ValueError(f'ResidualStage needs num_blocks >= 1, got {num_blocks}')
        super().__init__(RESIDUAL_BLOCKS[block], num_blocks, in_channels, out_channels,
                         expansion=expansion, stride=stride, **kwargs)


@MODELS.register_module()
class LowRankPointwise(nn.Sequential):
    """A 1x1 ConvModule factorised through ``rank`` channels: linear 1x1 to ``rank`` (+ norm),
    then 1x1 to ``out_channels`` with norm and activation (as the conv it replaces).

    Args:
        in_channels (int): Input channels C_in.
        out_channels (int): Output channels C_out.
        rank (int): Channels in between; costs rank x (C_in + C_out) weights instead of
            C_in x C_out.
        conv_cfg (dict, optional): Convolution config.
        norm_cfg (dict): Normalisation config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation after the second conv. Defaults to ``dict(type='ReLU6')``.

    Shape:
        (N, C_in, H, W) -> (N, C_out, H, W)
    """

    def __init__(self, in_channels: int, out_channels: int, rank: int,
                 conv_cfg: Optional[dict] = None, norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU6')) -> None:
        super().__init__(
            ConvModule(in_channels, rank, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                       act_cfg=None),
            ConvModule(rank, out_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                       act_cfg=act_cfg))
