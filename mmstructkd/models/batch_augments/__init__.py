"""Batch augmentations for distillation (applied by the student's data preprocessor)."""
from importlib.util import find_spec

from .mix_record import MixRecord, SampleMix, get_mix_record

__all__ = ['MixRecord', 'SampleMix', 'get_mix_record']

# STKDMixup registers itself in mmpretrain's BATCH_AUGMENTS, so it needs mmpretrain; mmstructkd
# must still import without it (segmentation / detection only). find_spec rather than
# try/except ImportError: a broken mmpretrain install should fail loudly, not silently.
if find_spec('mmpretrain') is not None:
    from .stkd_mixup import STKDMixup  # noqa: F401
    __all__ += ['STKDMixup']
