"""Search spaces: for a teacher unit, the cheaper blocks that may replace it.

A search space is a callable registered in ``SEARCH_SPACES``: given a unit's module config it
returns candidate module configs, each with the unit's input and output shapes. The
teacher's own block is always candidate 0 (so the selection may keep it). Which space serves
which unit comes from ``compression.search_space``: ``dict(<unit type>=space config, ...)``
with ``per_unit=dict(<unit name>=space config)`` overriding single units.
"""
import copy
from typing import Dict, List, Optional, Sequence

from mmstructkd.registry import SEARCH_SPACES, build_own
from .splitting import BackboneSplit

#: The space each unit type gets when the compression config names none for it.
DEFAULT_SPACES = dict(
    InvertedResidualStage=dict(type='InvertedResidualSpace'),
    ResidualStage=dict(type='ResidualSpace'),
    ConvModule=dict(type='PointwiseSpace'),
)


def _blocks(n: int, min_blocks: int) -> List[int]:
    """Block counts from n down to min(min_blocks, n)."""
    return list(range(n, min(max(min_blocks, 1), n) - 1, -1))


def _dedup(candidates: List[dict]) -> List[dict]:
    seen, out = [], []
    for cand in candidates:
        if cand not in seen:
            seen.append(cand)
            out.append(cand)
    return out


@SEARCH_SPACES.register_module()
class KeepSpace:
    """Only the teacher's block: the unit is never replaced."""

    def __call__(self, spec: dict) -> List[dict]:
        return [copy.deepcopy(spec)]


@SEARCH_SPACES.register_module()
class InvertedResidualSpace:
    """MobileNetV2 stages: fewer repeats x smaller expansion (1 = depthwise-separable).

    Args:
        expand_ratios (Sequence[float]): Expansion ratios to try; those above the teacher's
            are skipped. Defaults to (6, 4, 2, 1).
        min_blocks (int): Fewest blocks a stage may keep. Defaults to 1.
    """

    def __init__(self, expand_ratios: Sequence[float] = (6, 4, 2, 1),
                 min_blocks: int = 1) -> None:
        self.expand_ratios = tuple(expand_ratios)
        self.min_blocks = min_blocks

    def __call__(self, spec: dict) -> List[dict]:
        candidates = [copy.deepcopy(spec)]
        for ratio in self.expand_ratios:
            if ratio > spec['expand_ratio']:
                continue
            for n in _blocks(spec['num_blocks'], self.min_blocks):
                candidates.append(dict(copy.deepcopy(spec), expand_ratio=ratio, num_blocks=n))
        return _dedup(candidates)


@SEARCH_SPACES.register_module()
class ResidualSpace:
    """ResNet stages: fewer repeats of the teacher's block, narrower bottleneck blocks, and
    depthwise-separable stages (inverted residuals).

    Args:
        bottleneck_expansions (Sequence[int]): ``Bottleneck`` blocks with inner channels
            out_channels / expansion (only expansions that divide out_channels and, for a
            Bottleneck teacher, are larger than its own). Defaults to (4, 8).
        separable_expand_ratios (Sequence[float]): ``InvertedResidualStage`` candidates with
            these expansions (1: depthwise 3x3 + pointwise 1x1). Defaults to (1, 2).
        min_blocks (int): Fewest blocks a stage may keep. Defaults to 1.
        act_cfg (dict): Activation of the separable candidates (ResNets use ReLU).
    """

    def __init__(self, bottleneck_expansions: Sequence[int] = (4, 8),
                 separable_expand_ratios: Sequence[float] = (1, 2), min_blocks: int = 1,
                 act_cfg: dict = dict(type='ReLU')) -> None:
        self.bottleneck_expansions = tuple(bottleneck_expansions)
        self.separable_expand_ratios = tuple(separable_expand_ratios)
        self.min_blocks = min_blocks
        self.act_cfg = act_cfg

    def __call__(self, spec: dict) -> List[dict]:
        candidates = [copy.deepcopy(spec)]
        counts = _blocks(spec['num_blocks'], self.min_blocks)
        for n in counts[1:]:
            candidates.append(dict(copy.deepcopy(spec), num_blocks=n))
        out = spec['out_channels']
        teacher_expansion = spec['expansion'] if spec['block'] == 'Bottleneck' else 1
        for expansion in self.bottleneck_expansions:
            if out % expansion or expansion <= teacher_expansion:
                continue
            for n in counts:
                candidates.append(dict(copy.deepcopy(spec), block='Bottleneck',
                                       expansion=expansion, num_blocks=n))
        if spec.get('dilation', 1) == 1 and spec['stride'] in (1, 2):
            for ratio in self.separable_expand_ratios:
                for n in counts:
                    candidates.append(dict(
                        type='InvertedResidualStage', in_channels=spec['in_channels'],
                        out_channels=out, num_blocks=n, stride=spec['stride'],
                        expand_ratio=ratio, conv_cfg=copy.deepcopy(spec.get('conv_cfg')),
                        norm_cfg=copy.deepcopy(spec.get('norm_cfg', dict(type='BN'))),
                        act_cfg=copy.deepcopy(self.act_cfg)))
        return _dedup(candidates)


@SEARCH_SPACES.register_module()
class PointwiseSpace:
    """1x1 ``ConvModule`` units (MobileNetV2's ``conv2``): low-rank factorisations.

    Args:
        rank_ratios (Sequence[float]): Rank = round(ratio x min(C_in, C_out)), at least 8.
            Defaults to (0.5, 0.25, 0.125).
    """

    def __init__(self, rank_ratios: Sequence[float] = (0.5, 0.25, 0.125)) -> None:
        self.rank_ratios = tuple(rank_ratios)

    def __call__(self, spec: dict) -> List[dict]:
        if spec.get('kernel_size', 1) != 1 or spec.get('stride', 1) != 1:
            return [copy.deepcopy(spec)]  # only pointwise convs are factorised
        candidates = [copy.deepcopy(spec)]
        for ratio in self.rank_ratios:
            rank = max(8, int(round(ratio * min(spec['in_channels'], spec['out_channels']))))
            candidates.append(dict(
                type='LowRankPointwise', in_channels=spec['in_channels'],
                out_channels=spec['out_channels'], rank=rank,
                conv_cfg=copy.deepcopy(spec.get('conv_cfg')),
                norm_cfg=copy.deepcopy(spec.get('norm_cfg', dict(type='BN'))),
                act_cfg=copy.deepcopy(spec.get('act_cfg'))))
        return _dedup(candidates)


def build_candidates(split: BackboneSplit,
                     search_space: Optional[Dict[str, dict]] = None) -> Dict[str, List[dict]]:
    """Candidate module configs of every searchable unit (the teacher's block first).

    Args:
        split (BackboneSplit): The teacher backbone's units.
        search_space (dict, optional): ``<unit type>=space config`` entries (override
            :data:`DEFAULT_SPACES`) and ``per_unit=dict(<unit name>=space config)``.

    Returns:
        dict[str, list[dict]]: Unit name -> candidate configs (without ``name``).
    """
    spaces = dict(DEFAULT_SPACES)
    search_space = dict(search_space or {})
    per_unit = dict(search_space.pop('per_unit', {}) or {})
    spaces.update(search_space)
    unknown = sorted(set(per_unit) - set(split.searchable_names))
    if unknown:
        raise KeyError(f'search_space.per_unit names {unknown}, which are not searchable units '
                       f'of this {split.backbone_type}: {split.searchable_names}')
    candidates = {}
    for name in split.searchable_names:
        spec = split.unit(name).spec
        cfg = per_unit.get(name, spaces.get(spec['type']))
        if cfg is None:
            raise KeyError(f'no search space for unit {name!r} of type {spec["type"]!r}: add '
                           f'search_space=dict({spec["type"]}=dict(type=...)) to the compression '
                           f'config (registered spaces: {sorted(SEARCH_SPACES.module_dict)})')
        space = build_own(SEARCH_SPACES, cfg)
        found = space(copy.deepcopy(spec))
        if not found or found[0] != spec:
            raise ValueError(f'search space {type(space).__name__} must return the teacher '
                             f'block of unit {name!r} first')
        candidates[name] = found
    return candidates
