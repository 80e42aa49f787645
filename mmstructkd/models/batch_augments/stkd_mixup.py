"""STKD's virtual samples: mixup of a batch with a permutation of itself (arXiv 2103.10047).

Registered in mmpretrain's ``BATCH_AUGMENTS``, not in an mmstructkd registry: mmpretrain's
``RandomBatchAugment`` (what ``ClsDataPreprocessor(batch_augments=...)`` builds) looks its entries
up in that registry only, which is a root registry without an mmstructkd child, so a config under
``default_scope='mmpretrain'`` names it plainly: ``dict(type='STKDMixup')``. Importing this module
therefore needs mmpretrain (``mmstructkd.models.batch_augments`` imports it only when installed).
"""
from typing import Tuple

import numpy as np
import torch
from mmpretrain.registry import BATCH_AUGMENTS
from torch import Tensor

from mmstructkd.utils.model_checks import STKD_MIXUP_HINT
from .mix_record import ADD_AUGMENT_HINT, MixRecord, attach_record, is_hard_label


@BATCH_AUGMENTS.register_module()
class STKDMixup:
    """Mix a batch with a permutation of itself and record how, for ``STKDLoss``.

    One lam ~ Beta(alpha, alpha) and one permutation per batch (as mmpretrain's ``Mixup``):
    ``x~_i = lam * x_i + (1 - lam) * x_perm(i)`` and ``y~_i = lam * y_i + (1 - lam) * y_perm(i)``.
    The data preprocessor sets ``y~`` as each sample's ``gt_score``, so the student's
    ``CrossEntropyLoss`` computes ``lam * CE(y_i) + (1 - lam) * CE(y_perm(i))``. Every
    ``gt_score`` also carries the record (``gt_score.stkd_mix``, see ``mix_record``). Used as the
    student's batch augment inside a distiller, the mixing happens once per step and teacher and
    student see the same virtual batch. The preprocessor applies batch augments only when
    training: validation and testing see clean images.

    Args:
        alpha (float): Beta(alpha, alpha) parameter; 1.0 draws lam uniformly. Defaults to 1.0.
        clean_ratio (float): Fraction of the batch kept clean (its first ``round(clean_ratio *
            N)`` samples; their partners are drawn from the whole batch), so that ``STKDLoss``
            can also distil on clean samples. The batch size cannot change: the preprocessor
            pairs the returned scores with its N data samples. Defaults to 0.0 (all virtual, the
            paper's setting).
    """

    def __init__(self, alpha: float = 1.0, clean_ratio: float = 0.0) -> None:
        if not alpha > 0:
            raise ValueError(f'STKDMixup: alpha must be positive, got {alpha}')
        if not 0.0 <= clean_ratio < 1.0:
            raise ValueError(f'STKDMixup: clean_ratio must be in [0, 1), got {clean_ratio}')
        self.alpha = float(alpha)
        self.clean_ratio = float(clean_ratio)

    def mix(self, inputs: Tensor, scores: Tensor) -> Tuple[Tensor, Tensor, MixRecord]:
        """Mix a batch.

        Args:
            inputs (Tensor): shape (N, ...), the normalised images.
            scores (Tensor): shape (N, C), one-hot labels.

        Returns:
            tuple[Tensor, Tensor, MixRecord]: Mixed inputs (N, ...), mixed scores (N, C) and the
            record.
        """
        n = inputs.shape[0]
        lam = float(np.random.beta(self.alpha, self.alpha))  # numpy: seeded by mmengine
        perm = torch.randperm(n).to(inputs.device)
        virtual = torch.arange(n, device=inputs.device) >= round(self.clean_ratio * n)
        mixed_inputs = torch.where(virtual.view((n, ) + (1, ) * (inputs.dim() - 1)),
                                   lam * inputs + (1 - lam) * inputs[perm], inputs)
        mixed_scores = torch.where(virtual[:, None], lam * scores + (1 - lam) * scores[perm],
                                   scores)
        return mixed_inputs, mixed_scores, MixRecord(lam, perm, virtual)

    def __call__(self, batch_inputs: Tensor, batch_score: Tensor) -> Tuple[Tensor, Tensor]:
        """Mix the batch; the returned scores carry the record (``ClsDataPreprocessor`` API).

        Args:
            batch_inputs (Tensor): shape (N, C, H, W).
            batch_score (Tensor): shape (N, num_classes), one-hot.

        Returns:
            tuple[Tensor, Tensor]: Mixed inputs (N, C, H, W) and mixed scores (N, num_classes).
        """
        if not isinstance(batch_inputs, Tensor) or not isinstance(batch_score, Tensor):
            # What a segmentation / detection preprocessor passes: (inputs, data samples).
            raise TypeError(
                f'STKDMixup got ({type(batch_inputs).__name__}, '
                f'{type(batch_score).__name__}), not (images, one-hot scores): it is called '
                'by a data preprocessor other than mmpretrain\'s ClsDataPreprocessor. '
                f'{STKD_MIXUP_HINT}.')
        if batch_score.dim() != 2 or batch_score.shape[0] != batch_inputs.shape[0]:
            raise ValueError(f'STKDMixup: expected one-hot scores of shape (N, num_classes) '
                             f'with N={batch_inputs.shape[0]}, got {tuple(batch_score.shape)}')
        scores = batch_score.float()
        if not is_hard_label(scores):
            # Soft labels here mean this batch was mixed before: its data samples already had
            # a mixed gt_score when the preprocessor ran (it stacks an existing gt_score).
            raise RuntimeError(
                'STKDMixup: the labels of this batch are already mixed (soft gt_score), so '
                'mixing it would mix twice. Run the data preprocessor once per loaded batch (it '
                "sets gt_score on data['data_samples'] in place) and keep one mixing batch "
                'augment: ' + ADD_AUGMENT_HINT + '.')
        inputs, scores, record = self.mix(batch_inputs, scores)
        return inputs, attach_record(scores, record)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(alpha={self.alpha}, clean_ratio={self.clean_ratio})'
