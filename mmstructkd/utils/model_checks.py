"""Checks of a built model that catch misconfigurations before the first training step."""
from typing import Any, Iterable

from torch import nn

#: Where STKDMixup belongs (it mixes images and one-hot ``gt_score`` of ClsDataSample).
STKD_MIXUP_HINT = (
    "STKDMixup is an mmpretrain batch augment: it mixes the images and the one-hot gt_score "
    "of ClsDataSample, and only mmpretrain's ClsDataPreprocessor builds and calls it that way. "
    "Put it in the student's ClsDataPreprocessor: data_preprocessor=dict(type="
    "'ClsDataPreprocessor', ..., batch_augments=dict(augments=[dict(type='STKDMixup', "
    "alpha=1.0)])), in an mmpretrain classifier")


def _entries(batch_augments: Any) -> Iterable[Any]:
    if isinstance(batch_augments, dict):
        return [batch_augments]
    if isinstance(batch_augments, (list, tuple, nn.ModuleList)):
        return list(batch_augments)
    return [batch_augments]


def _is_stkd_mixup(entry: Any) -> bool:
    if isinstance(entry, dict):
        kind = entry.get('type')
        name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
        return name.split('.')[-1] == 'STKDMixup'
    return type(entry).__name__ == 'STKDMixup'


def check_batch_augment_placement(model: nn.Module) -> None:
    """Refuse ``STKDMixup`` in the ``batch_augments`` of a data preprocessor other than
    mmpretrain's ``ClsDataPreprocessor`` (mmseg's keeps the config and fails deep inside its
    forward with "'list' object is not callable"; mmdet's cannot build it)."""
    for name, module in model.named_modules():
        augments = getattr(module, 'batch_augments', None)
        if augments is None or type(module).__name__ == 'ClsDataPreprocessor':
            continue
        if type(augments).__name__ == 'RandomBatchAugment':  # mmpretrain's own wrapper
            continue
        if any(_is_stkd_mixup(entry) for entry in _entries(augments)):
            raise ValueError(f'{type(module).__name__} ("{name or "data_preprocessor"}") has '
                             f'STKDMixup in its batch_augments. {STKD_MIXUP_HINT}.')
