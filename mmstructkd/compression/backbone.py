"""CompressedBackbone: a backbone given as an explicit list of named blocks."""
from typing import List, Optional, Sequence, Tuple

from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmstructkd.registry import MODELS, build_own


@MODELS.register_module()
class CompressedBackbone(BaseBackbone):
    """Runs ``units`` in order; returns the outputs of the units named in ``out_units``.

    This is what ``tools/compress.py`` emits as the student's backbone: stock backbones fix
    their blocks by a few arguments (depth, width), a compressed student picks every block on
    its own. Each unit is a module config with a ``name``; the module is registered under that
    name, so a unit that equals the teacher's (``conv1``, ``layer3``, ...) has the teacher
    backbone's state-dict keys.

    Args:
        units (list[dict]): ``dict(name=..., type=..., **args)`` per unit, input to output
            (types from mmstructkd's registry or its parents: ``ConvModule``, ``Conv2d``,
            ``BN``, ``ReLU``, ``MaxPool2d``, ``InvertedResidualStage``, ``ResidualStage``,
            ``LowRankPointwise``, ...).
        out_units (Sequence[str], optional): Units whose outputs are returned, in unit order.
            Defaults to the last unit.
        norm_eval (bool): Keep the BatchNorm layers in eval mode while training.
        init_cfg (dict | list[dict], optional): Initialisation config.

    Shape:
        (N, C, H, W) -> tuple of one (N, C_i, H_i, W_i) tensor per output unit.
    """

    def __init__(self, units: List[dict], out_units: Optional[Sequence[str]] = None,
                 norm_eval: bool = False,
                 init_cfg: Optional[dict] = [
                     dict(type='Kaiming', layer=['Conv2d']),
                     dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
                 ]) -> None:
        super().__init__(init_cfg)
        if not units:
            raise ValueError('CompressedBackbone needs at least one unit')
        self.unit_names: List[str] = []
        for unit in units:
            unit = dict(unit)
            name = unit.pop('name', None)
            if not name or '.' in name or name in self.unit_names:
                raise ValueError(f'every unit needs a unique name without dots, got {name!r} '
                                 f'(names so far: {self.unit_names})')
            self.add_module(name, build_own(MODELS, unit))
            self.unit_names.append(name)
        self.out_units = tuple(out_units) if out_units else (self.unit_names[-1], )
        unknown = [n for n in self.out_units if n not in self.unit_names]
        if unknown:
            raise ValueError(f'out_units {unknown} are not units; units: {self.unit_names}')
        self.norm_eval = norm_eval

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        outs = []
        for name in self.unit_names:
            x = getattr(self, name)(x)
            if name in self.out_units:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'CompressedBackbone':
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
