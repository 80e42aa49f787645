"""Stages that turn the batch's data samples into tensors for the losses."""
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import Tensor

from mmstructkd.models.batch_augments.mix_record import get_mix_record
from mmstructkd.registry import MODELS
from .base_stage import DistillStage, StepInputs


def stack_seg_labels(data_samples: Optional[Sequence[Any]]) -> Tensor:
    """The ``gt_sem_seg`` label maps of mmseg data samples, shape (N, H, W).

    Args:
        data_samples (Sequence): mmseg ``SegDataSample`` s (or anything with
            ``gt_sem_seg.data`` of shape (1, H, W)).

    Returns:
        Tensor: shape (N, H, W), long.
    """
    if not data_samples or not all(hasattr(s, 'gt_sem_seg') for s in data_samples):
        raise ValueError('SegLabels: the batch\'s data samples carry no gt_sem_seg (an mmseg '
                         'segmentation batch is needed); remove the stage, or the ignore_index '
                         'of the loss that reads it.')
    return torch.stack([s.gt_sem_seg.data.reshape(s.gt_sem_seg.data.shape[-2:])
                        for s in data_samples]).long()


@MODELS.register_module()
class SegLabels(DistillStage):
    """Outputs ``gt_sem_seg``: the batch's segmentation labels, shape (N, H, W), e.g. for the
    ignored pixels of ``PixelWiseLoss(ignore_index=255)``."""

    OUTPUTS = ('gt_sem_seg', )

    def forward(self, step: StepInputs) -> Dict[str, Tensor]:
        return dict(gt_sem_seg=stack_seg_labels(step.data_samples))


def mix_outputs(data_samples: Optional[List[Any]], who: str) -> Dict[str, Any]:
    """The STKD mixing record of a batch as tensors (see :class:`STKDMixRecord`)."""
    record = get_mix_record(data_samples, who)
    return dict(virtual=record.virtual, perm=record.perm, lam=record.lam)


@MODELS.register_module()
class STKDMixRecord(DistillStage):
    """Outputs how ``STKDMixup`` mixed this batch, read off its data samples: ``virtual``
    (N,) bool, the mixed samples; ``perm`` (N,) long, each one's partner; ``lam`` (float).

    Errors name the fix when the batch was not mixed by ``STKDMixup`` (no batch augment,
    another mixing augment beside it, samples out of batch order).
    """

    OUTPUTS = ('virtual', 'perm', 'lam')

    def forward(self, step: StepInputs) -> Dict[str, Any]:
        return mix_outputs(step.data_samples, 'STKDMixRecord')
