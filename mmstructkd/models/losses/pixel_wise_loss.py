"""Pixel-wise distillation of structured KD (Liu et al., TPAMI 2020, Sec. 3.1)."""
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmstructkd.registry import MODELS
from .utils import as_float, check_same_channels, kl_per_position, resize_to


def ignore_mask_from_samples(data_samples: Optional[List], size: tuple,
                             ignore_index: int) -> Optional[Tensor]:
    """Valid-pixel mask (N, H, W) from ``gt_sem_seg`` of mmseg data samples, or None.

    The label map is resized with nearest neighbour to the score map's ``size``.
    """
    if not data_samples or not hasattr(data_samples[0], 'gt_sem_seg'):
        return None
    labels = torch.stack([s.gt_sem_seg.data for s in data_samples]).float()  # (N, 1, H, W)
    labels = F.interpolate(labels, size=size, mode='nearest')[:, 0]
    return labels != ignore_index


@MODELS.register_module()
class PixelWiseLoss(nn.Module):
    """Per-pixel KL divergence from the teacher's to the student's class distributions.

    ``loss = loss_weight * tau^2 * mean_pixels KL(q_t || q_s)`` with ``q = softmax(logits / tau)``
    over classes (or, for sigmoid heads such as FCOS, the per-class binary KL summed over
    classes). The paper writes the sum of KL terms over pixels divided by W'H'; its reference
    code minimises the cross-entropy with the teacher's soft labels, which differs from the KL
    by the teacher's entropy only (same gradient). A student map of another size is resized
    (bilinear) to the teacher's.

    Args:
        tau (float): Temperature (the paper uses 1). Defaults to 1.0.
        loss_weight (float): lambda_pi (the paper uses 10). Defaults to 1.0.
        activation (str): ``'softmax'`` (segmentation heads) or ``'sigmoid'`` (per-class
            sigmoid heads). Defaults to ``'softmax'``.
        ignore_index (int, optional): Pixels whose ground-truth label is this value (read from
            ``data_samples[i].gt_sem_seg``) are left out. None uses every pixel.
            Defaults to 255.
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0, activation: str = 'softmax',
                 ignore_index: Optional[int] = 255) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'PixelWiseLoss: tau must be positive, got {tau}')
        if activation not in ('softmax', 'sigmoid'):
            raise ValueError(f'PixelWiseLoss: activation must be "softmax" or "sigmoid", got '
                             f'{activation!r}')
        self.tau = tau
        self.loss_weight = loss_weight
        self.activation = activation
        self.ignore_index = ignore_index

    def forward(self, preds_S: Tensor, preds_T: Tensor,
                data_samples: Optional[List] = None) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor): Student score map (logits), shape (N, C, H, W).
            preds_T (Tensor): Teacher score map (logits), shape (N, C, H', W').
            data_samples (list, optional): mmseg data samples; their ``gt_sem_seg`` gives the
                ignored pixels. Filled in by the distiller.

        Returns:
            Tensor: The weighted scalar loss.
        """
        preds_S, preds_T = resize_to(as_float(preds_S), as_float(preds_T), 'PixelWiseLoss')
        check_same_channels(preds_S, preds_T, 'PixelWiseLoss')
        kl = kl_per_position(preds_S, preds_T, self.tau, self.activation)  # (N, H, W)
        mask = None
        if self.ignore_index is not None:
            mask = ignore_mask_from_samples(data_samples, kl.shape[-2:], self.ignore_index)
        if mask is not None:
            # Sum over valid pixels / their count; all-ignored batches give 0, not NaN.
            kl = (kl * mask).sum() / mask.sum().clamp(min=1)
        else:
            kl = kl.mean()
        return self.loss_weight * self.tau**2 * kl
