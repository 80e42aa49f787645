"""Class-weighted cross-entropy for segmentation heads (for training class-balanced teachers)."""
from typing import Optional, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from mmstructkd.registry import MODELS


@MODELS.register_module()
class WeightedCrossEntropyLoss(nn.Module):
    """Cross-entropy with one weight per class, averaged as ``torch``'s weighted mean.

    ``loss = loss_weight * sum_p w_{y_p} CE_p / sum_p w_{y_p}`` over the pixels whose label is
    not ``ignore_index``. mmseg 1.2.2's ``CrossEntropyLoss(class_weight=...)`` cannot be used
    for this: with an ignored label (255) it indexes the weights with it and fails. It is a
    drop-in ``loss_decode`` of mmseg's decode heads (same call, ``loss_name``).

    Args:
        class_weight (Sequence[float]): One weight per class.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        loss_name (str): Name of the loss in the logs. Defaults to ``'loss_ce'``.
    """

    def __init__(self, class_weight: Sequence[float], loss_weight: float = 1.0,
                 loss_name: str = 'loss_ce') -> None:
        super().__init__()
        if not class_weight or any(w < 0 for w in class_weight):
            raise ValueError('WeightedCrossEntropyLoss: class_weight must be a non-empty list of '
                             f'non-negative weights, got {class_weight!r}')
        self.class_weight = [float(w) for w in class_weight]
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def forward(self, cls_score: Tensor, label: Tensor, weight: Optional[Tensor] = None,
                ignore_index: int = 255, **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            cls_score (Tensor): Logits, shape (N, C, H, W).
            label (Tensor): Labels, shape (N, H, W).
            weight (Tensor, optional): Per-pixel weights (e.g. from a pixel sampler), (N, H, W).
            ignore_index (int): Label left out. Defaults to 255.

        Returns:
            Tensor: The weighted scalar loss.
        """
        if cls_score.shape[1] != len(self.class_weight):
            raise ValueError(f'WeightedCrossEntropyLoss: {len(self.class_weight)} class weights '
                             f'for {cls_score.shape[1]} classes; give one weight per class.')
        class_weight = cls_score.new_tensor(self.class_weight)
        per_pixel = F.cross_entropy(cls_score, label, weight=class_weight, reduction='none',
                                    ignore_index=ignore_index)  # w_y * CE, 0 where ignored
        valid = label != ignore_index
        pixel_weight = class_weight[label.clamp(0, len(self.class_weight) - 1)] * valid
        if weight is not None:
            per_pixel = per_pixel * weight
            pixel_weight = pixel_weight * weight
        return self.loss_weight * per_pixel.sum() / pixel_weight.sum().clamp(min=1e-12)
