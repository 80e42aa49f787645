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


#: How the per-pixel terms are reduced (see :class:`PixelWiseLoss`).
NORMALIZATIONS = ('pixels', 'image_area')


@MODELS.register_module()
class PixelWiseLoss(nn.Module):
    """Per-pixel divergence from the teacher's to the student's class distributions.

    ``q = softmax(logits / tau)`` over classes (or, for sigmoid heads such as FCOS, the
    per-class binary distributions, their divergences summed over classes). Per pixel, the
    ``divergence`` is ``KL(q_t || q_s)`` (the paper) or the cross-entropy ``-sum q_t log q_s``
    (the official code: the KL plus the teacher's entropy, so the same gradient, another value).
    The per-pixel terms are reduced by ``normalize``:

    - ``'pixels'``: their mean over the (non-ignored) pixels of the batch: the paper's
      ``1/(W'H') sum_pixels KL`` for one image, averaged over the batch;
    - ``'image_area'``: their sum over the batch and the pixels divided by ``H*W`` (the official
      code): N times the mean for a batch of N, so ``loss_weight`` 10 weighs N times more.

    ``loss = loss_weight * tau^2 * reduce(divergence)``. A student map of another size is
    resized (bilinear) to the teacher's.

    Args:
        tau (float): Temperature (the paper and the official code use 1). Defaults to 1.0.
        loss_weight (float): lambda_pi (10 in the paper and the official code). Defaults to 1.0.
        activation (str): ``'softmax'`` (segmentation heads) or ``'sigmoid'`` (per-class
            sigmoid heads). Defaults to ``'softmax'``.
        ignore_index (int, optional): Pixels whose ground-truth label is this value (read from
            ``data_samples[i].gt_sem_seg``) are left out. None uses every pixel, as the
            official code. Defaults to 255.
        divergence (str): ``'kl'`` (paper) or ``'ce'`` (official). Defaults to ``'kl'``.
        normalize (str): ``'pixels'`` (paper) or ``'image_area'`` (official). Defaults to
            ``'pixels'``.
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0, activation: str = 'softmax',
                 ignore_index: Optional[int] = 255, divergence: str = 'kl',
                 normalize: str = 'pixels') -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'PixelWiseLoss: tau must be positive, got {tau}')
        if activation not in ('softmax', 'sigmoid'):
            raise ValueError(f'PixelWiseLoss: activation must be "softmax" or "sigmoid", got '
                             f'{activation!r}')
        if divergence not in ('kl', 'ce'):
            raise ValueError(f'PixelWiseLoss: divergence must be "kl" (paper) or "ce" '
                             f'(official code), got {divergence!r}')
        if normalize not in NORMALIZATIONS:
            raise ValueError(f'PixelWiseLoss: normalize must be "pixels" (paper) or '
                             f'"image_area" (official code), got {normalize!r}')
        self.tau = tau
        self.loss_weight = loss_weight
        self.activation = activation
        self.ignore_index = ignore_index
        self.divergence = divergence
        self.normalize = normalize

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
        per_pixel = kl_per_position(preds_S, preds_T, self.tau, self.activation,
                                    self.divergence)  # (N, H, W)
        mask = None
        if self.ignore_index is not None:
            mask = ignore_mask_from_samples(data_samples, per_pixel.shape[-2:],
                                            self.ignore_index)
        if mask is not None:
            per_pixel = per_pixel * mask
            # All-ignored batches give 0, not NaN.
            count = mask.sum().clamp(min=1)
        else:
            count = per_pixel.numel()
        if self.normalize == 'image_area':
            count = per_pixel.shape[-2] * per_pixel.shape[-1]
        return self.loss_weight * self.tau**2 * per_pixel.sum() / count

    def extra_repr(self) -> str:
        return (f'tau={self.tau}, loss_weight={self.loss_weight}, divergence={self.divergence}, '
                f'normalize={self.normalize}, ignore_index={self.ignore_index}')
