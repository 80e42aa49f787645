"""Block-wise KD compression under a FLOPs / parameter budget (Ahmed et al., ICPR 2020).

``split_backbone`` writes a teacher backbone as units, ``build_candidates`` lists cheaper
blocks per unit (``SEARCH_SPACES``), ``BlockwiseTrainer`` trains them to reproduce their teacher
unit, ``select_candidates`` picks one per unit under the budget, and ``BlockwiseCompressor``
runs these steps and emits a ``CompressedBackbone`` student plus its KD fine-tune config.
"""
from .backbone import CompressedBackbone
from .block_trainer import BlockwiseTrainer, CandidateResult, build_candidate
from .blocks import InvertedResidualStage, LowRankPointwise, ResidualStage
from .complexity import complexity, model_complexity
from .compressor import (DEFAULT_SETTINGS, BlockwiseCompressor, build_classifier,
                         compression_settings, parse_budget)
from .emission import kd_config, student_config
from .report import describe, to_markdown, top1_of
from .search_space import (InvertedResidualSpace, KeepSpace, PointwiseSpace, ResidualSpace,
                           build_candidates)
from .selection import select_candidates
from .splitting import BackboneSplit, Unit, register_splitter, split_backbone

__all__ = [
    'CompressedBackbone', 'BlockwiseTrainer', 'CandidateResult', 'build_candidate',
    'InvertedResidualStage', 'LowRankPointwise', 'ResidualStage', 'complexity',
    'model_complexity', 'DEFAULT_SETTINGS', 'BlockwiseCompressor', 'build_classifier',
    'compression_settings', 'parse_budget', 'kd_config', 'student_config', 'describe',
    'to_markdown', 'top1_of', 'InvertedResidualSpace', 'KeepSpace', 'PointwiseSpace',
    'ResidualSpace', 'build_candidates', 'select_candidates', 'BackboneSplit', 'Unit',
    'register_splitter', 'split_backbone'
]
