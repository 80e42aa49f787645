"""Splitting a teacher backbone into units: fixed ones (the stem) and searchable blocks.

A splitter reads a built stock backbone and writes it as :class:`CompressedBackbone` units with
the same names, so that ``CompressedBackbone(units)`` computes the same function with the same
state-dict keys (the tests check both). Block-wise compression then replaces searchable units
one by one; every replacement keeps its unit's input and output shapes, so any combination of
replacements composes.
"""
import copy
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from mmcv.cnn import ConvModule
from torch import nn

#: Backbone class name -> function (backbone module) -> BackboneSplit.
SPLITTERS: Dict[str, Callable[[nn.Module], 'BackboneSplit']] = {}


@dataclass
class Unit:
    """One named unit of a backbone: its module config and whether it may be replaced."""
    name: str
    spec: dict
    searchable: bool


@dataclass
class BackboneSplit:
    """A backbone written as units (see :class:`CompressedBackbone`)."""
    backbone_type: str
    units: List[Unit]
    out_units: Tuple[str, ...]
    norm_eval: bool = False
    searchable_names: List[str] = field(init=False)

    def __post_init__(self) -> None:
        self.searchable_names = [u.name for u in self.units if u.searchable]

    def unit(self, name: str) -> Unit:
        """The unit called ``name``."""
        for unit in self.units:
            if unit.name == name:
                return unit
        raise KeyError(f'no unit {name!r}; units: {[u.name for u in self.units]}')

    def backbone_cfg(self, replacements: Optional[Dict[str, dict]] = None) -> dict:
        """``CompressedBackbone`` config of this split, units in ``replacements`` (name ->
        module config without ``name``) replaced."""
        replacements = replacements or {}
        unknown = sorted(set(replacements) - set(self.searchable_names))
        if unknown:
            raise KeyError(f'cannot replace {unknown}: the searchable units are '
                           f'{self.searchable_names}')
        units = [dict(name=u.name, **copy.deepcopy(replacements.get(u.name, u.spec)))
                 for u in self.units]
        return dict(type='mmstructkd.CompressedBackbone', units=units,
                    out_units=list(self.out_units), norm_eval=self.norm_eval)


def register_splitter(*names: str) -> Callable:
    """Register a splitter for backbones whose class is called one of ``names``."""
    def wrap(fn: Callable[[nn.Module], BackboneSplit]) -> Callable:
        for name in names:
            SPLITTERS[name] = fn
        return fn
    return wrap


def split_backbone(backbone: nn.Module) -> BackboneSplit:
    """Split a built backbone into units.

    Raises:
        TypeError: for a backbone class without a splitter (the message names it and the
            supported ones).
    """
    name = type(backbone).__name__
    if name not in SPLITTERS:
        raise TypeError(
            f'block-wise compression cannot split a {name} backbone into blocks: supported '
            f'backbones are {", ".join(sorted(SPLITTERS))}. Use one of them, or register a '
            'splitter for it with mmstructkd.compression.register_splitter.')
    return SPLITTERS[name](backbone)


def _clean(cfg: Optional[dict]) -> Optional[dict]:
    return None if cfg is None else copy.deepcopy(dict(cfg))


def _conv_module_spec(module: ConvModule, conv_cfg, norm_cfg, act_cfg) -> dict:
    conv = module.conv
    return dict(type='ConvModule', in_channels=conv.in_channels, out_channels=conv.out_channels,
                kernel_size=conv.kernel_size[0], stride=conv.stride[0], padding=conv.padding[0],
                conv_cfg=_clean(conv_cfg), norm_cfg=_clean(norm_cfg), act_cfg=_clean(act_cfg))


@register_splitter('MobileNetV2')
def split_mobilenet_v2(backbone: nn.Module) -> BackboneSplit:
    """MobileNetV2: stem ``conv1`` (fixed), ``layer1``..``layer7`` (stages of inverted
    residuals) and the final 1x1 ``conv2`` (searchable)."""
    cfgs = dict(conv_cfg=backbone.conv_cfg, norm_cfg=backbone.norm_cfg,
                act_cfg=backbone.act_cfg)
    units = [Unit('conv1', _conv_module_spec(backbone.conv1, **cfgs), searchable=False)]
    for name in backbone.layers:
        layer = getattr(backbone, name)
        if isinstance(layer, ConvModule):  # conv2
            units.append(Unit(name, _conv_module_spec(layer, **cfgs), searchable=True))
            continue
        first = layer[0]
        convs = first.conv
        in_channels = convs[0].conv.in_channels
        hidden = convs[0].conv.out_channels if len(convs) == 3 else in_channels
        ratio = hidden / in_channels
        units.append(Unit(name, dict(
            type='InvertedResidualStage', in_channels=in_channels,
            out_channels=convs[-1].conv.out_channels, num_blocks=len(layer), stride=first.stride,
            expand_ratio=int(ratio) if ratio == int(ratio) else ratio,
            conv_cfg=_clean(cfgs['conv_cfg']), norm_cfg=_clean(cfgs['norm_cfg']),
            act_cfg=_clean(cfgs['act_cfg'])), searchable=True))
    out_units = tuple(backbone.layers[i] for i in sorted(backbone.out_indices))
    return BackboneSplit('MobileNetV2', units, out_units, norm_eval=backbone.norm_eval)


@register_splitter('ResNet', 'ResNet_CIFAR')
def split_resnet(backbone: nn.Module) -> BackboneSplit:
    """ResNet / ResNet_CIFAR: the stem (``conv1``, its norm, ``relu`` and, for ResNet,
    ``maxpool``; fixed) and the residual stages ``layer1``..``layerN`` (searchable)."""
    kind = type(backbone).__name__
    if backbone.deep_stem:
        raise TypeError(f'block-wise compression splits {kind} only with deep_stem=False (the '
                        'plain 7x7 / 3x3 stem).')
    conv = backbone.conv1
    conv_type = (backbone.conv_cfg or {}).get('type', 'Conv2d')
    norm_cfg = dict(backbone.norm_cfg)
    norm_cfg.pop('requires_grad', None)
    units = [
        Unit('conv1', dict(type=conv_type, in_channels=conv.in_channels,
                           out_channels=conv.out_channels, kernel_size=conv.kernel_size[0],
                           stride=conv.stride[0], padding=conv.padding[0], bias=False),
             searchable=False),
        Unit(backbone.norm1_name, dict(norm_cfg, num_features=conv.out_channels),
             searchable=False),
        Unit('relu', dict(type='ReLU', inplace=True), searchable=False),
    ]
    if kind == 'ResNet':  # ResNet_CIFAR does not pool after its stem
        units.append(Unit('maxpool', dict(type='MaxPool2d', kernel_size=3, stride=2,
                                          padding=1), searchable=False))
    for name in backbone.res_layers:
        layer = getattr(backbone, name)
        first = layer[0]
        units.append(Unit(name, dict(
            type='ResidualStage', block=type(first).__name__, in_channels=first.in_channels,
            out_channels=first.out_channels, num_blocks=len(layer), stride=first.stride,
            expansion=first.expansion, dilation=first.dilation, style=backbone.style,
            avg_down=backbone.avg_down, conv_cfg=_clean(backbone.conv_cfg),
            norm_cfg=_clean(backbone.norm_cfg)), searchable=True))
    out_units = tuple(backbone.res_layers[i] for i in sorted(backbone.out_indices))
    return BackboneSplit(kind, units, out_units, norm_eval=backbone.norm_eval)
