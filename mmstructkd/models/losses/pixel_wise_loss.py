"""Pixel-wise distillation of structured KD (Liu et al., TPAMI 2020, Sec. 3.1)."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from mmstructkd.registry import MODELS
from .utils import as_float, check_same_channels, kl_per_position, resize_to


def valid_pixel_mask(gt_sem_seg: Tensor, size: tuple, ignore_index: int) -> Tensor:
    """Valid-pixel mask (N, H, W) from label maps (N, H', W'), resized with nearest neighbour
    to the score map's ``size``."""
    labels = F.interpolate(gt_sem_seg[:, None].float(), size=size, mode='nearest')[:, 0]
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
        ignore_index (int, optional): Pixels whose ground-truth label is this value are left
            out; the labels come as ``gt_sem_seg``, mapped from the distiller's ``SegLabels``
            stage: ``gt_sem_seg=dict(from_stage=<its name>, output='gt_sem_seg')``. None uses
            every pixel, as the official code. Defaults to 255.
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
                gt_sem_seg: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor): Student score map (logits), shape (N, C, H, W).
            preds_T (Tensor): Teacher score map (logits), shape (N, C, H', W').
            gt_sem_seg (Tensor, optional): Ground-truth labels, shape (N, H'', W''), which give
                the ignored pixels (``ignore_index``); needed unless ``ignore_index`` is None.

        Returns:
            Tensor: The weighted scalar loss.
        """
        preds_S, preds_T = resize_to(as_float(preds_S), as_float(preds_T), 'PixelWiseLoss')
        check_same_channels(preds_S, preds_T, 'PixelWiseLoss')
        per_pixel = kl_per_position(preds_S, preds_T, self.tau, self.activation,
                                    self.divergence)  # (N, H, W)
        mask = None
        if self.ignore_index is not None:
            if gt_sem_seg is None:
                raise ValueError(
                    f'PixelWiseLoss(ignore_index={self.ignore_index}) needs the labels: add '
                    "distill_stages=dict(labels=dict(type='SegLabels')) and map "
                    "gt_sem_seg=dict(from_stage='labels', output='gt_sem_seg') to this loss, "
                    'or set ignore_index=None to use every pixel (the official code).')
            mask = valid_pixel_mask(gt_sem_seg, per_pixel.shape[-2:], self.ignore_index)
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
